"""Shared fixtures: a trained model (trained once per session if `make model` has not run),
and a real uvicorn process of the service on a free loopback port."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from sentiment_training.train import train

SERVICE_DIR = Path(__file__).resolve().parents[1]
DEFAULT_ARTIFACTS = SERVICE_DIR / "artifacts"
DATA_CACHE = SERVICE_DIR / ".cache" / "data"


@pytest.fixture(scope="session")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The model `make model` trained, or one trained now into a temporary directory."""
    if (DEFAULT_ARTIFACTS / "model_card.json").exists() and (DEFAULT_ARTIFACTS / "pipeline.joblib").exists():
        return DEFAULT_ARTIFACTS
    out = tmp_path_factory.mktemp("artifacts")
    train(out, DATA_CACHE)
    return out


@pytest.fixture(scope="session")
def card(model_dir: Path) -> dict:
    return json.loads((model_dir / "model_card.json").read_text())


@pytest.fixture(scope="session")
def heldout(model_dir: Path) -> list[dict]:
    return [json.loads(line) for line in (model_dir / "heldout.jsonl").read_text().splitlines()]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class Server:
    process: subprocess.Popen
    base_url: str
    log_path: Path

    def client(self, **kwargs) -> httpx.Client:
        return httpx.Client(base_url=self.base_url, timeout=10, **kwargs)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def stop(self, timeout: float = 30) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        return self.process.wait(timeout=timeout)


def start_server(model_dir: Path, log_path: Path, wait_ready: bool = True, **env: str) -> Server:
    port = free_port()
    environment = {
        **os.environ,
        "PYTHONPATH": str(SERVICE_DIR / "src"),
        "SENTIMENT_HOST": "127.0.0.1",
        "SENTIMENT_PORT": str(port),
        "SENTIMENT_MODEL_DIR": str(model_dir),
        **env,
    }
    log = log_path.open("w")
    process = subprocess.Popen(
        [sys.executable, "-m", "sentiment_service"], env=environment, stdout=log, stderr=subprocess.STDOUT
    )
    server = Server(process, f"http://127.0.0.1:{port}", log_path)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"server exited with {process.returncode}:\n{server.log()}")
        try:
            response = httpx.get(f"{server.base_url}/health", timeout=1)
            if response.status_code == 200 and (
                not wait_ready or httpx.get(f"{server.base_url}/ready", timeout=1).status_code == 200
            ):
                return server
        except httpx.TransportError:
            pass
        time.sleep(0.05)
    process.kill()
    raise RuntimeError(f"server did not come up:\n{server.log()}")


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
    """A copy of the model whose artifact no longer matches the sha256 in its card."""
    copy = tmp_path / "tampered"
    copy.mkdir()
    for name in ("model.json", "model_card.json"):
        shutil.copy(model_dir / name, copy / name)
    artifact = json.loads((copy / "model.json").read_text())
    artifact["intercept"] += 1.0
    (copy / "model.json").write_text(json.dumps(artifact, sort_keys=True, separators=(",", ":")))
    return copy
