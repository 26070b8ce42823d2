"""Shared fixtures: a trained model (trained once per session if `make model` has not run),
and a real uvicorn process of the service on a free loopback port."""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from svc import (
    DATA_CACHE,
    DEFAULT_ARTIFACTS,
    SERVICE_DIR,
    SIGNING_KEY,
    Server,
    docker_available,
    export_trained,
    start_server,
)

from sentiment_training.signing import sign_with_key_file
from sentiment_training.train import train

# Trained transformer variants, by training-input digest (see minilm_dir), outside the checkout.
MODEL_CACHE = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "sentiment-platform" / "models"


@pytest.fixture(scope="session")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The model `make model` trained and signed, or one trained and signed now into a temporary directory."""
    if all((DEFAULT_ARTIFACTS / name).exists() for name in ("model_card.json", "pipeline.joblib", "signature.json")):
        return DEFAULT_ARTIFACTS
    out = tmp_path_factory.mktemp("artifacts")
    train(out, DATA_CACHE)
    sign_with_key_file(out, SIGNING_KEY)
    return out


def training_inputs_digest() -> str:
    """sha256 over everything a trained model depends on: the training and service code (data pins
    included) and the locked training dependencies."""
    digest = hashlib.sha256()
    files = sorted([*SERVICE_DIR.glob("training/**/*.py"), *SERVICE_DIR.glob("src/**/*.py")])
    for path in [*files, SERVICE_DIR / "requirements-train.txt"]:
        digest.update(path.relative_to(SERVICE_DIR).as_posix().encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()[:16]


@pytest.fixture(scope="session")
def minilm_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The transformer variant `make model MODEL=minilm` built and signed, else one trained now (fine-tuning
    on the CPU takes minutes) and signed here with this checkout's key. With a Docker engine it is the image
    build's own `trained` stage, exported: the container test's image build reuses it from BuildKit's cache,
    so the variant is trained once. Without one it is trained here, kept unsigned in a cache keyed by the
    digest of the training inputs, so that a later run with the same inputs reuses it."""
    built = DEFAULT_ARTIFACTS.with_name("artifacts-minilm")
    needed = ("model_card.json", "model-fp32.onnx", "heldout.jsonl", "signature.json")
    if all((built / name).exists() for name in needed):
        return built
    out = tmp_path_factory.mktemp("artifacts-minilm")
    if docker_available():
        # Every pytest-xdist worker may export at once: BuildKit runs one training for identical steps.
        export_trained("minilm", out)
        sign_with_key_file(out, SIGNING_KEY)
        return out
    cache = MODEL_CACHE / f"minilm-{training_inputs_digest()}"
    MODEL_CACHE.mkdir(parents=True, exist_ok=True)
    # Every pytest-xdist worker sets a session fixture up: the first trains, the others wait here and copy.
    with (MODEL_CACHE / f"{cache.name}.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not (cache / "model_card.json").exists():
            staging = cache.with_name(cache.name + ".partial")
            shutil.rmtree(staging, ignore_errors=True)
            train(staging, DATA_CACHE, "minilm")
            shutil.rmtree(cache, ignore_errors=True)
            staging.rename(cache)
    shutil.copytree(cache, out, dirs_exist_ok=True)
    sign_with_key_file(out, SIGNING_KEY)
    return out


@pytest.fixture(scope="session")
def minilm_card(minilm_dir: Path) -> dict:
    return json.loads((minilm_dir / "model_card.json").read_text())


@pytest.fixture(scope="session")
def card(model_dir: Path) -> dict:
    return json.loads((model_dir / "model_card.json").read_text())


@pytest.fixture(scope="session")
def heldout(model_dir: Path) -> list[dict]:
    return [json.loads(line) for line in (model_dir / "heldout.jsonl").read_text().splitlines()]


@pytest.fixture(scope="session")
def server(model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    running = start_server(
        model_dir,
        tmp_path_factory.mktemp("server") / "server.log",
        SENTIMENT_MAX_TEXT_CHARS="5000",
        SENTIMENT_MAX_BATCH_ITEMS="64",
        SENTIMENT_MAX_BODY_BYTES="400000",
    )
    yield running
    running.stop()


@pytest.fixture
def client(server: Server) -> Iterator[httpx.Client]:
    with server.client() as http:
        yield http


@pytest.fixture
def tampered_model_dir(model_dir: Path, tmp_path: Path) -> Path:
    """A copy of the model (signature included) whose artifact no longer matches its card or signature."""
    copy = tmp_path / "tampered"
    copy.mkdir()
    for name in ("model.json", "model_card.json", "signature.json"):
        shutil.copy(model_dir / name, copy / name)
    artifact = json.loads((copy / "model.json").read_text())
    artifact["intercept"] += 1.0
    (copy / "model.json").write_text(json.dumps(artifact, sort_keys=True, separators=(",", ":")))
    return copy
