"""Helpers of the service tests: a real uvicorn process of the service on a free loopback port."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import httpx

SERVICE_DIR = Path(__file__).resolve().parents[1]
DEFAULT_ARTIFACTS = SERVICE_DIR / "artifacts"
DATA_CACHE = SERVICE_DIR / ".cache" / "data"
# The key `make model` signs with (created on first use, git-ignored): the tests' models are signed by it.
SIGNING_KEY = SERVICE_DIR / ".keys" / "model-signing.key"
TRUSTED_PUBLIC_KEY = SIGNING_KEY.with_suffix(".pub")


def docker_available() -> bool:
    """A Docker engine answers (the container tests and the transformer's trained-stage export need one)."""
    if shutil.which("docker") is None:
        return False
    return subprocess.run(["docker", "info"], capture_output=True, check=False, timeout=30).returncode == 0


def base_image_args() -> list[str]:
    """The Dockerfile's pinned base unless PYTHON_IMAGE names another (our machines' stand-in)."""
    return [f"--build-arg=PYTHON_IMAGE={os.environ['PYTHON_IMAGE']}"] if os.environ.get("PYTHON_IMAGE") else []


def buildx_build(variant: str, *args: str, timeout: float) -> subprocess.CompletedProcess:
    """`docker buildx build` of the service's Dockerfile for a model variant, without attestations (the
    sentiment_app role's command), on the base base_image_args names: the one command line the trained-stage
    export and the container test's image build share, so that they share BuildKit's cache of the training."""
    return subprocess.run(
        [
            "docker",
            "buildx",
            "build",
            "--provenance=false",
            "--sbom=false",
            *base_image_args(),
            f"--build-arg=MODEL={variant}",
            *args,
            str(SERVICE_DIR),
        ],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def export_trained(variant: str, out: Path) -> None:
    """The unsigned artifacts of the image's `trained` stage, written to `out` (BuildKit's local exporter).
    Image builds of the same training inputs take that stage from BuildKit's cache, and so does the next
    export: the tests and the images share one training of each variant."""
    build = buildx_build(variant, "--target=trained-artifacts", f"--output=type=local,dest={out}", timeout=3600)
    if build.returncode != 0:
        raise RuntimeError(f"exporting the trained {variant} model failed:\n{build.stderr[-3000:]}")


def free_port() -> int:
    """A loopback port nothing listens on now (the caller binds it moments later)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class Server:
    process: subprocess.Popen
    base_url: str
    log_path: Path
    probe_url: str

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
    probe_port = env.pop("SENTIMENT_PROBE_PORT", None) or str(free_port())
    environment = {
        **os.environ,
        "PYTHONPATH": str(SERVICE_DIR / "src"),
        "SENTIMENT_HOST": "127.0.0.1",
        "SENTIMENT_PORT": str(port),
        "SENTIMENT_PROBE_PORT": probe_port,
        "SENTIMENT_MODEL_DIR": str(model_dir),
        "SENTIMENT_MODEL_PUBLIC_KEY_FILE": str(TRUSTED_PUBLIC_KEY),
        **env,
    }
    log = log_path.open("w")
    process = subprocess.Popen(
        [sys.executable, "-m", "sentiment_service"], env=environment, stdout=log, stderr=subprocess.STDOUT
    )
    server = Server(process, f"http://127.0.0.1:{port}", log_path, f"http://127.0.0.1:{probe_port}")
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
