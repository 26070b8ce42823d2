"""The canary's golden-set gate (a Flagger pre-rollout webhook), against real services on loopback ports.

The gate scores the held-out split through a candidate's /predict: an honest model scores exactly its card,
a model trained on inverted labels (confident, wrong, and with a healthy-looking card of its own) is refused.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from svc import DATA_CACHE, SIGNING_KEY, Server, free_port, start_server

from sentiment_service.acceptance import GateSettings, create_gate_app, load_golden_set
from sentiment_training.signing import sign_with_key_file
from sentiment_training.train import train


def webhook(candidate: str, **metadata: str) -> dict:
    """The body Flagger POSTs (metadata is a string map)."""
    return {
        "name": "sentiment-service",
        "namespace": "sentiment",
        "phase": "Progressing",
        "metadata": {"candidate": candidate, **metadata},
    }


@pytest.fixture(scope="module")
def gate(model_dir: Path) -> Iterator[TestClient]:
    golden = load_golden_set(model_dir / "heldout.jsonl")
    with TestClient(create_gate_app(GateSettings(request_timeout_s=30), golden)) as client:
        yield client


@pytest.fixture(scope="module")
def inverted_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """A TF-IDF model trained on swapped labels: the drill the golden set exists for."""
    out = tmp_path_factory.mktemp("inverted")
    train(out, DATA_CACHE, "tfidf", invert_labels=True)
    sign_with_key_file(out, SIGNING_KEY)
    running = start_server(out, tmp_path_factory.mktemp("inverted-log") / "server.log")
    yield running
    running.stop()


@pytest.fixture
def card_server() -> Iterator[str]:
    """A stand-in reference that claims a held-out accuracy no model here reaches."""

    class Card(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = json.dumps({"model_version": "claims-0.99", "metrics_heldout": {"accuracy": 0.99}}).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *_: object) -> None:
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Card)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()


def test_an_honest_candidate_scores_its_card_and_passes(gate: TestClient, server: Server, card: dict) -> None:
    answer = gate.post("/gate", json=webhook(server.base_url, reference=server.base_url, tolerance="0.02"))
    assert answer.status_code == 200, answer.text
    result = answer.json()
    assert result["passed"] is True
    # The golden set is the held-out split the card was measured on: the same model scores exactly its card.
    assert result["accuracy"] == card["metrics_heldout"]["accuracy"]
    assert result["rows"] == card["data"]["test_rows"]
    assert result["bar"] == pytest.approx(card["metrics_heldout"]["accuracy"] - 0.02)
    assert result["candidate_version"] == result["reference_version"] == card["model_version"]


def test_a_model_trained_on_inverted_labels_is_refused(gate: TestClient, inverted_server: Server) -> None:
    with inverted_server.client() as http:
        own_card = http.get("/model").json()
        confident = http.post("/predict", json={"text": "A masterpiece: moving, funny and beautifully acted."}).json()
    # What every other gate sees: a healthy card and confident answers.
    assert own_card["metrics_heldout"]["accuracy"] >= 0.78
    assert confident["confidence"] > 0.8
    assert confident["label"] == "negative"
    answer = gate.post("/gate", json=webhook(inverted_server.base_url, tolerance="0.02"))
    assert answer.status_code == 412, answer.text
    body = answer.json()
    assert body["error"]["type"] == "acceptance_failed"
    assert body["result"]["passed"] is False
    assert body["result"]["accuracy"] < 0.3
    assert "golden-set accuracy" in body["error"]["message"]


def test_the_serving_models_card_sets_the_bar_too(gate: TestClient, server: Server, card_server: str) -> None:
    answer = gate.post("/gate", json=webhook(server.base_url, reference=card_server, tolerance="0.05"))
    assert answer.status_code == 412, answer.text
    assert answer.json()["result"]["bar"] == pytest.approx(0.94)


def test_an_unreachable_candidate_is_a_502_with_a_json_body(gate: TestClient) -> None:
    answer = gate.post("/gate", json=webhook(f"http://127.0.0.1:{free_port()}"))
    assert answer.status_code == 502
    assert answer.json()["error"]["type"] == "model_unreachable"


@pytest.mark.parametrize(
    ("body", "status", "kind"),
    [
        (b"{not json", 400, "invalid_json"),
        (json.dumps({"name": "x", "namespace": "y", "metadata": {}}).encode(), 422, "validation_error"),
        (json.dumps(webhook("ftp://example")).encode(), 422, "validation_error"),
        (json.dumps(webhook("http://x", tolerance="lots")).encode(), 422, "validation_error"),
        (json.dumps(webhook("http://x", tolerance="1.5")).encode(), 422, "validation_error"),
    ],
)
def test_bad_webhook_bodies_get_a_4xx_json_error(gate: TestClient, body: bytes, status: int, kind: str) -> None:
    answer = gate.post("/gate", content=body, headers={"Content-Type": "application/json"})
    assert answer.status_code == status, answer.text
    assert answer.json()["error"]["type"] == kind


def test_health_reports_the_golden_set(gate: TestClient, card: dict) -> None:
    assert gate.get("/health").json() == {"status": "ok", "golden_rows": card["data"]["test_rows"]}
