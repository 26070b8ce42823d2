"""The transformer variant (MiniLM, int8 ONNX): parity with its training-time reference, quality floors
in and out of domain, token-sized batching, artifact integrity, and the service's API and metrics
contract with it loaded. The model is the one `make model MODEL=minilm` built, or one built now."""

from __future__ import annotations

import hashlib
import json
import logging
import shutil
from pathlib import Path

import numpy as np
import pytest
from svc import DATA_CACHE, start_server

from sentiment_service.model import ModelLoadError
from sentiment_service.transformer import GRAPH_FILE, TransformerModel, token_batches
from sentiment_training import data
from sentiment_training.minilm import FP32_GRAPH_FILE, INT8_LABEL_AGREEMENT, MIN_ACCURACY, PARITY_TOLERANCE
from sentiment_training.train import MAX_SERVING_LOSS

pytestmark = pytest.mark.slow

OUT_OF_DOMAIN_FLOOR = 0.84


@pytest.fixture(scope="module")
def model(minilm_dir: Path, minilm_card: dict) -> TransformerModel:
    return TransformerModel.load(minilm_dir, minilm_card, threads=2, batch_tokens=4096)


@pytest.fixture(scope="module")
def minilm_heldout(minilm_dir: Path) -> list[dict]:
    return [json.loads(line) for line in (minilm_dir / "heldout.jsonl").read_text().splitlines()]


def _fp32(minilm_dir: Path, minilm_card: dict, tmp_path: Path) -> TransformerModel:
    """The fp32 graph behind the same manifest machinery: a copy of the artifact that names it."""
    copy = tmp_path / "fp32"
    copy.mkdir()
    for name in ("tokenizer.json", FP32_GRAPH_FILE):
        shutil.copy(minilm_dir / name, copy / name)
    manifest = json.loads((minilm_dir / "model.json").read_text())
    manifest["graph"] = {"file": FP32_GRAPH_FILE, "sha256": minilm_card["fp32_graph"]["sha256"]}
    raw = json.dumps(manifest, sort_keys=True, separators=(",", ":")).encode()
    (copy / "model.json").write_bytes(raw)
    sha = hashlib.sha256(raw).hexdigest()
    return TransformerModel.load(
        copy, {"artifact": {"sha256": sha}, "model_version": sha[:12]}, threads=2, batch_tokens=4096
    )


def test_fp32_graph_reproduces_the_training_forward_pass_on_every_heldout_text(
    minilm_dir, minilm_card, minilm_heldout, tmp_path
) -> None:
    fp32 = _fp32(minilm_dir, minilm_card, tmp_path)
    served = np.array(fp32.predict_proba([row["text"] for row in minilm_heldout]))
    reference = np.array([row["p_reference"] for row in minilm_heldout])
    assert np.max(np.abs(served - reference)) <= PARITY_TOLERANCE


def test_int8_graph_stays_within_a_point_of_the_reference(model, minilm_heldout) -> None:
    served = np.array(model.predict_proba([row["text"] for row in minilm_heldout]))
    reference = np.array([row["p_reference"] for row in minilm_heldout])
    labels = np.array([row["label"] == "positive" for row in minilm_heldout])
    accuracy_int8 = float(((served >= 0.5) == labels).mean())
    accuracy_fp32 = float(((reference >= 0.5) == labels).mean())
    assert accuracy_int8 >= MIN_ACCURACY, accuracy_int8
    assert accuracy_fp32 - accuracy_int8 <= MAX_SERVING_LOSS
    assert float(((served >= 0.5) == (reference >= 0.5)).mean()) >= INT8_LABEL_AGREEMENT  # text by text


def test_card_reports_quality_in_and_out_of_domain(minilm_card) -> None:
    assert minilm_card["model_name"] == "sentiment-minilm-int8"
    assert minilm_card["metrics_heldout"]["accuracy"] >= MIN_ACCURACY
    out_of_domain = minilm_card["metrics_out_of_domain"]
    assert {"tweets", "news", "product_reviews", "bank_reviews", "imdb_reviews"} <= set(out_of_domain)
    assert max(m["accuracy"] for m in out_of_domain.values()) >= OUT_OF_DOMAIN_FLOOR


def test_out_of_domain_floor_on_bank_reviews_scored_now(model) -> None:
    bank = data.review_domains(DATA_CACHE)["bank_reviews"]
    p = np.array(model.predict_proba(bank.texts))
    accuracy = float(((p >= 0.5) == np.array([label == "positive" for label in bank.labels])).mean())
    assert accuracy >= OUT_OF_DOMAIN_FLOOR, accuracy


def test_padding_and_batch_company_barely_move_a_score(model, minilm_dir, minilm_card, tmp_path) -> None:
    """The fp32 graph is exact under padding; the int8 one quantizes activations with one scale per call,
    so a text's batch-mates move its probability a little (measured: 5e-4 here), never its label."""
    text = "A gorgeous, heartfelt film that never once rings false."
    company = ["Awful.", text, "an interminable, joyless slog through every cliche the genre has to offer " * 8]
    fp32 = _fp32(minilm_dir, minilm_card, tmp_path)
    assert abs(fp32.predict_proba([text])[0] - fp32.predict_proba(company)[1]) < 1e-5
    assert abs(model.predict_proba([text])[0] - model.predict_proba(company)[1]) < 0.01


@pytest.mark.parametrize("budget", [128, 512, 4096])
def test_token_batches_respect_the_budget_and_cover_every_text(budget) -> None:
    lengths = [3, 60, 7, 128, 128, 2, 40, 40, 40, 90, 5]
    groups = token_batches(lengths, budget)
    assert sorted(i for group in groups for i in group) == list(range(len(lengths)))
    for group in groups:
        widest = max(lengths[i] for i in group)
        assert len(group) == 1 or len(group) * widest <= budget


def test_obvious_sentences_get_the_obvious_label(model) -> None:
    positive, negative = model.score_batch(["An absolute delight from start to finish.", "A dull, lifeless mess."])
    assert positive.label == "positive"
    assert positive.confidence > 0.8
    assert negative.label == "negative"
    assert negative.confidence > 0.8


def test_a_swapped_graph_is_refused(minilm_dir, minilm_card, tmp_path) -> None:
    copy = tmp_path / "swapped"
    shutil.copytree(minilm_dir, copy)
    shutil.copy(copy / FP32_GRAPH_FILE, copy / GRAPH_FILE)  # a valid graph, but not the one signed for
    with pytest.raises(ModelLoadError, match="sha256"):
        TransformerModel.load(copy, minilm_card, threads=1, batch_tokens=4096)


def test_service_serves_the_transformer_with_the_same_contract(minilm_dir, minilm_card, tmp_path) -> None:
    server = start_server(minilm_dir, tmp_path / "server.log", SENTIMENT_MODEL_THREADS="2")
    try:
        with server.client() as http:
            info = http.get("/model").json()
            assert info["model_name"] == "sentiment-minilm-int8"
            assert info["model_version"] == minilm_card["model_version"]
            one = http.post("/predict", json={"text": "A warm, funny and beautifully acted film."}).json()
            assert one["label"] == "positive"
            assert one["model_version"] == minilm_card["model_version"]
            many = http.post("/predict", json={"texts": ["Loved it.", "Hated every minute."]}).json()
            assert [p["label"] for p in many["predictions"]] == ["positive", "negative"]
            assert http.post("/predict", json={"text": ""}).status_code == 422
            metrics = http.get("/metrics").text
            version = minilm_card["model_version"]
            assert f'model_info{{device="cpu",model_name="sentiment-minilm-int8",model_version="{version}"}} 1.0' in (
                metrics
            )
            assert f'prediction_count_total{{label="positive",model_version="{version}"}} 2.0' in metrics
            assert f'model_drift_score{{method="psi",model_version="{version}",target="unknown_tokens"}}' in metrics
    finally:
        server.stop()
    assert "MiniLM int8 on CPUExecutionProvider" in server.log()
    assert "Application shutdown complete" in server.log()


def test_a_gpu_request_without_a_gpu_falls_back_to_the_cpu_and_says_so(minilm_dir, minilm_card, caplog) -> None:
    with caplog.at_level(logging.WARNING, logger="sentiment_service.transformer"):
        model = TransformerModel.load(minilm_dir, minilm_card, threads=1, batch_tokens=1024, device="cuda")
    assert model.execution_provider == "CPUExecutionProvider"
    assert "a GPU was asked for" in caplog.text
    assert model.predict_proba(["A delight."])[0] > 0.5
