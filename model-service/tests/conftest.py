"""Shared fixtures: a trained model (trained once per session if `make model` has not run),
and a real uvicorn process of the service on a free loopback port."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from svc import DATA_CACHE, DEFAULT_ARTIFACTS, SIGNING_KEY, Server, start_server

from sentiment_training.signing import sign_with_key_file
from sentiment_training.train import train


@pytest.fixture(scope="session")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The model `make model` trained and signed, or one trained and signed now into a temporary directory."""
    if all((DEFAULT_ARTIFACTS / name).exists() for name in ("model_card.json", "pipeline.joblib", "signature.json")):
        return DEFAULT_ARTIFACTS
    out = tmp_path_factory.mktemp("artifacts")
    train(out, DATA_CACHE)
    sign_with_key_file(out, SIGNING_KEY)
    return out


@pytest.fixture(scope="session")
def minilm_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The transformer variant `make model MODEL=minilm` built and signed, or one built and signed now
    (fine-tuning on the CPU: minutes)."""
    built = DEFAULT_ARTIFACTS.with_name("artifacts-minilm")
    if all(
        (built / name).exists() for name in ("model_card.json", "model-fp32.onnx", "heldout.jsonl", "signature.json")
    ):
        return built
    out = tmp_path_factory.mktemp("artifacts-minilm")
    train(out, DATA_CACHE, "minilm")
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
