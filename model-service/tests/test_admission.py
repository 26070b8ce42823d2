"""Event-loop admission (the shed share's controller, the shed reply) and the probe listener's answers."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time

import httpx

from sentiment_service.admission import Admission
from sentiment_service.metrics import ServiceMetrics
from sentiment_service.probes import ProbeServer, ProbeState


def admission(max_in_flight: int = 2) -> Admission:
    return Admission(ServiceMetrics(), max_in_flight, retry_after_s=2)


async def ok_app(scope: dict, receive: object, send: object) -> None:
    await asyncio.sleep(0)


def test_requests_count_in_flight_from_admission_until_they_return() -> None:
    gate = admission(max_in_flight=2)
    first, second = gate.admit(ok_app), gate.admit(ok_app)
    assert gate.in_flight == 2
    assert gate.full()
    asyncio.run(first({}, None, None))
    assert gate.in_flight == 1
    assert not gate.full()
    second.release()  # never ran (its connection closed): released once, however often asked
    second.release()
    assert gate.in_flight == 0


def test_an_app_that_fails_still_leaves_the_count() -> None:
    gate = admission()

    async def broken(scope: dict, receive: object, send: object) -> None:
        raise RuntimeError("boom")

    admitted = gate.admit(broken)
    with contextlib.suppress(RuntimeError):
        asyncio.run(admitted({}, None, None))
    assert gate.in_flight == 0


def test_a_zero_bound_turns_shedding_off() -> None:
    assert not admission(max_in_flight=0).enabled
    assert admission(max_in_flight=1).enabled


def test_the_shed_reply_is_a_503_with_retry_after_and_a_json_body_counted_as_predict_demand() -> None:
    gate = admission()
    sent: list[dict] = []

    async def send(message: dict) -> None:
        sent.append(message)

    async def receive() -> dict:
        return {"type": "http.request", "body": b"", "more_body": False}

    asyncio.run(gate.shed({"type": "http"}, receive, send))
    start, body = sent
    assert start["status"] == 503
    headers = dict(start["headers"])
    assert headers[b"retry-after"] == b"2"
    assert int(headers[b"content-length"]) == len(body["body"])
    assert json.loads(body["body"])["error"]["type"] == "overloaded"
    metrics = gate.metrics
    assert metrics.requests_shed._value.get() == 1
    assert metrics.http_requests.labels("POST", "/predict", "503")._value.get() == 1


def test_the_sampler_measures_the_loop_lag_and_ticks() -> None:
    gate = admission()
    lags: list[float] = []

    async def main() -> None:
        gate.start()
        await asyncio.sleep(0.12)
        time.sleep(0.3)  # block the loop: the sample due meanwhile comes about 0.3 s late
        await asyncio.sleep(0.001)
        lags.append(gate.lag_s)
        await asyncio.sleep(0.12)
        lags.append(gate.lag_s)
        await gate.stop()

    asyncio.run(main())
    assert lags[0] > 0.2
    assert lags[1] < 0.05
    assert gate.seconds_since_tick() < 1


def probe_state(*, stalled_for: float = 0.0, ready: bool = True) -> ProbeState:
    return ProbeState(lambda: stalled_for, lambda: (ready, "abc123" if ready else None, "loading"), loop_stall_s=10)


def test_probe_answers_follow_the_loop_and_the_model() -> None:
    assert probe_state().health() == (200, {"status": "ok"})
    assert probe_state().ready() == (200, {"status": "ready", "model_version": "abc123"})
    assert probe_state(ready=False).ready() == (503, {"status": "not_ready", "reason": "loading"})
    status, body = probe_state(stalled_for=12.5).health()
    assert status == 503
    assert body["status"] == "stalled"
    assert "12.5 s" in body["reason"]
    assert probe_state(stalled_for=12.5).ready()[0] == 503


def test_the_probe_listener_serves_health_and_ready_over_http() -> None:
    server = ProbeServer("127.0.0.1", 0, probe_state(ready=False))
    server.start()
    try:
        base = f"http://127.0.0.1:{server.port}"
        health = httpx.get(f"{base}/health", timeout=5)
        assert health.status_code == 200
        assert health.json() == {"status": "ok"}
        ready = httpx.get(f"{base}/ready", timeout=5)
        assert ready.status_code == 503
        assert ready.json()["status"] == "not_ready"
        missing = httpx.get(f"{base}/predict", timeout=5)
        assert missing.status_code == 404
        assert missing.json()["error"]["type"] == "not_found"
    finally:
        server.stop()
