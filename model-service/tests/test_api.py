"""HTTP tests against a real uvicorn process of the service."""

from __future__ import annotations

import asyncio
import json
import random
import re
import signal
import time

import httpx
import pytest
from svc import start_server


def test_health(client) -> None:
    response = client.get("/health")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


def test_ready_reports_the_model_version(client, card) -> None:
    response = client.get("/ready")
    assert response.status_code == 200
    assert response.json()["status"] == "ready"
    assert response.json()["model_version"] == card["model_version"]


def test_model_endpoint_shows_the_card(client, card) -> None:
    body = client.get("/model").json()
    assert body["model_version"] == card["model_version"]
    assert body["metrics_heldout"]["accuracy"] >= 0.78
    assert body["artifact"]["sha256"] == card["artifact"]["sha256"]


def test_predict_one_text(client, card) -> None:
    response = client.post("/predict", json={"text": "A wonderful, warm and funny film."})
    assert response.status_code == 200
    body = response.json()
    assert set(body) == {"label", "score", "confidence", "model_version"}
    assert body["label"] == "positive"
    assert 0.5 < body["score"] <= 1.0
    assert body["confidence"] == pytest.approx(max(body["score"], 1 - body["score"]))
    assert body["model_version"] == card["model_version"]


def test_batch_answers_in_order_and_matches_single_predictions(client, heldout) -> None:
    texts = [row["text"] for row in heldout[:64]]
    response = client.post("/predict", json={"texts": texts})
    assert response.status_code == 200
    batch = response.json()["predictions"]
    assert len(batch) == 64
    singles = [client.post("/predict", json={"text": t}).json() for t in texts[:10]]
    assert [p["score"] for p in batch[:10]] == [p["score"] for p in singles]
    assert {p["label"] for p in batch} == {"positive", "negative"}


def test_text_at_the_length_limit_is_accepted(client) -> None:
    assert client.post("/predict", json={"text": "good " * 1000}).status_code == 200  # 5000 characters


def chunked(body: bytes, size: int = 65536):
    for start in range(0, len(body), size):
        yield body[start : start + size]


BAD_REQUESTS = {
    "empty text": ({"json": {"text": ""}}, 422),
    "whitespace-only text": ({"json": {"text": " \t\n "}}, 422),
    "text over the limit": ({"json": {"text": "a" * 5001}}, 422),
    "number instead of text": ({"json": {"text": 5}}, 422),
    "list instead of text": ({"json": {"text": ["a"]}}, 422),
    "null text": ({"json": {"text": None}}, 422),
    "neither text nor texts": ({"json": {}}, 422),
    "both text and texts": ({"json": {"text": "a", "texts": ["b"]}}, 422),
    "unknown field": ({"json": {"text": "fine", "lang": "en"}}, 422),
    "empty texts": ({"json": {"texts": []}}, 422),
    "too many texts": ({"json": {"texts": ["ok"] * 65}}, 422),
    "non-string in texts": ({"json": {"texts": ["ok", 3]}}, 422),
    "blank item in texts": ({"json": {"texts": ["ok", "  "]}}, 422),
    "top-level array": ({"json": ["a", "b"]}, 422),
    "top-level string": ({"json": "just text"}, 422),
    "empty body": ({"content": b"", "headers": {"content-type": "application/json"}}, 422),
    "invalid JSON": ({"content": b'{"text": ', "headers": {"content-type": "application/json"}}, 400),
    "not UTF-8": ({"content": b'{"text": "\xff\xfe"}', "headers": {"content-type": "application/json"}}, 400),
    "deeply nested JSON": ({"content": b"[" * 100_000, "headers": {"content-type": "application/json"}}, 400),
    "form-encoded body": (
        {"content": b"text=hello", "headers": {"content-type": "application/x-www-form-urlencoded"}},
        415,
    ),
    "body over the limit": ({"json": {"texts": ["x" * 5000] * 100}}, 413),
    "chunked body over the limit": (
        {
            "content": chunked(json.dumps({"text": "y" * 500_000}).encode()),
            "headers": {"content-type": "application/json"},
        },
        413,
    ),
}


@pytest.mark.parametrize("case", list(BAD_REQUESTS), ids=list(BAD_REQUESTS))
def test_bad_input_gets_a_clear_4xx_json_error(client, case: str) -> None:
    kwargs, expected_status = BAD_REQUESTS[case]
    response = client.post("/predict", **kwargs)
    assert response.status_code == expected_status, response.text
    error = response.json()["error"]
    assert error["type"]
    assert error["message"]
    assert client.get("/health").status_code == 200  # still alive


def test_validation_errors_point_at_the_field(client) -> None:
    response = client.post("/predict", json={"texts": ["ok", "", 7]})
    details = response.json()["error"]["details"]
    assert {d["location"] for d in details} == {"texts.1", "texts.2"}


def test_unknown_route_and_wrong_method(client) -> None:
    assert client.get("/nope").status_code == 404
    assert client.get("/nope").json()["error"]["type"] == "not_found"
    assert client.get("/predict").status_code == 405
    assert client.get("/predict").json()["error"]["type"] == "method_not_allowed"


def test_random_garbage_never_causes_a_5xx(client) -> None:
    rng = random.Random(1234)
    alphabet = '{}[]":,0123456789.-+eEtruefalsnul \\\n\x00texts' + "é😀"
    for _ in range(300):
        shape = rng.random()
        if shape < 0.4:
            body = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 60))).encode()
        elif shape < 0.7:
            key = rng.choice(["text", "texts", "x"])
            body = json.dumps({key: rng.choice([None, 1, 2.5, [], {}, "", "ok", ["a"], True])}).encode()
        else:
            body = bytes(rng.randrange(256) for _ in range(rng.randint(0, 80)))
        response = client.post("/predict", content=body, headers={"content-type": "application/json"})
        assert 200 <= response.status_code < 500, (body, response.text)
        assert response.headers["content-type"].startswith("application/json")
    assert client.get("/ready").status_code == 200


def test_tampered_model_never_becomes_ready(tampered_model_dir, tmp_path) -> None:
    server = start_server(tampered_model_dir, tmp_path / "log", wait_ready=False)
    try:
        with server.client() as client:
            assert client.get("/health").status_code == 200
            ready = client.get("/ready")
            assert ready.status_code == 503
            assert "model.json is not the file that was signed" in ready.json()["reason"]
            predict = client.post("/predict", json={"text": "fine"})
            assert predict.status_code == 503
            assert predict.json()["error"]["type"] == "not_ready"
            metrics = client.get("/metrics").text
            assert "model_ready 0.0" in metrics
    finally:
        server.stop()
    assert "refusing to become ready" in server.log()


def test_sigterm_finishes_in_flight_requests_then_exits(model_dir, tmp_path) -> None:
    # A long batching wait keeps requests in flight when SIGTERM arrives.
    server = start_server(
        model_dir, tmp_path / "log", SENTIMENT_BATCH_MAX_WAIT_MS="100", SENTIMENT_BATCH_MAX_SIZE="1000"
    )

    async def fire() -> list[int]:
        async with httpx.AsyncClient(base_url=server.base_url, timeout=10) as http:
            tasks = [asyncio.create_task(http.post("/predict", json={"text": f"review {i}"})) for i in range(20)]
            # SIGTERM once all 20 requests reached the server (the 21st in flight is this metrics request).
            metrics = http.build_request("GET", "/metrics")
            while "http_requests_in_flight 21.0" not in (await http.send(metrics)).text:
                assert not any(task.done() for task in tasks), "a request finished before all 20 arrived"
            server.process.send_signal(signal.SIGTERM)
            responses = await asyncio.gather(*tasks)
            return [r.status_code for r in responses]

    started = time.monotonic()
    statuses = asyncio.run(fire())
    assert statuses == [200] * 20
    # uvicorn re-raises the captured SIGTERM once shut down: the usual 143 in Kubernetes.
    assert server.process.wait(timeout=30) in (0, -signal.SIGTERM)
    assert time.monotonic() - started < 10
    assert "stopped" in server.log()
    assert "Finished server process" in server.log()
    with pytest.raises(httpx.TransportError):
        httpx.get(f"{server.base_url}/health", timeout=1)


def test_405_names_the_allowed_methods(client) -> None:
    response = client.get("/predict")
    assert response.status_code == 405
    assert response.headers["allow"] == "POST"
    assert response.json()["error"]["type"] == "method_not_allowed"


def test_a_body_that_is_not_utf8_is_invalid_json(client) -> None:
    response = client.post("/predict", content=b'{"text": "\xff\xfe"}', headers={"content-type": "application/json"})
    assert response.status_code == 400
    assert response.json()["error"]["type"] == "invalid_json"


def test_the_openapi_schema_requires_exactly_one_of_text_and_texts(client) -> None:
    schema = client.get("/openapi.json").json()["components"]["schemas"]["PredictRequest"]
    assert schema["oneOf"] == [{"required": ["text"]}, {"required": ["texts"]}]
    assert schema["additionalProperties"] is False


def test_not_ready_reasons_show_no_paths(tampered_model_dir, tmp_path) -> None:
    server = start_server(tampered_model_dir, tmp_path / "log", wait_ready=False)
    try:
        with server.client() as http:
            body = http.get("/ready").json()
        assert body["status"] == "not_ready"
        assert "not the file that was signed" in body["reason"]
        assert str(tampered_model_dir) not in body["reason"]
    finally:
        server.stop()


def test_docs_load_every_asset_from_the_service_itself(client) -> None:
    page = client.get("/docs")
    assert page.status_code == 200
    urls = re.findall(r"""(?:src|href|url)\s*[:=]\s*['"]([^'"]+)['"]""", page.text)
    assert "/openapi.json" in urls
    assert not [u for u in urls if "://" in u], urls  # no CDN, no other host: works offline
    for asset, kind in (("/docs/swagger-ui-bundle.js", "javascript"), ("/docs/swagger-ui.css", "css")):
        response = client.get(asset)
        assert response.status_code == 200
        assert kind in response.headers["content-type"]
        assert len(response.content) > 10_000
