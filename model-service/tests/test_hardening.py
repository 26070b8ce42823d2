"""Overload, shutdown and hostile clients, against a real uvicorn process of the service."""

from __future__ import annotations

import asyncio
import json
import signal
import socket
import time
from pathlib import Path

import httpx
import pytest
from svc import start_server

pytestmark = pytest.mark.slow


def raw_request(body: bytes, path: str = "/predict") -> bytes:
    head = (
        f"POST {path} HTTP/1.1\r\nHost: test\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
    )
    return head.encode() + body


def read_response(sock: socket.socket, timeout: float) -> tuple[int, dict[str, str], bytes]:
    """Status, headers and body of one HTTP/1.1 response with a Content-Length."""
    sock.settimeout(timeout)
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError(f"closed after {len(data)} bytes: {data[:200]!r}")
        data += chunk
    head, body = data.split(b"\r\n\r\n", 1)
    lines = head.decode("latin-1").split("\r\n")
    headers = {k.lower(): v.strip() for k, v in (line.split(":", 1) for line in lines[1:])}
    length = int(headers["content-length"])
    while len(body) < length:
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError(f"body cut at {len(body)} of {length} bytes")
        body += chunk
    return int(lines[0].split()[1]), headers, body


def connect(base_url: str) -> socket.socket:
    host, port = base_url.removeprefix("http://").split(":")
    return socket.create_connection((host, int(port)), timeout=10)


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS")


def test_requests_beyond_the_queue_bound_are_shed_with_retry_after(model_dir, tmp_path) -> None:
    # A tiny queue (one 1,000-character text) and slow batches: concurrent requests overflow it.
    server = start_server(
        model_dir,
        tmp_path / "log",
        SENTIMENT_MAX_BATCH_ITEMS="1",
        SENTIMENT_MAX_TEXT_CHARS="1000",
        SENTIMENT_MAX_BODY_BYTES="4096",
        SENTIMENT_MAX_QUEUED_TEXTS="1",
        SENTIMENT_MAX_QUEUED_CHARS="1000",
        SENTIMENT_BATCH_MAX_WAIT_MS="50",
    )
    try:

        async def burst() -> list[httpx.Response]:
            async with httpx.AsyncClient(base_url=server.base_url, timeout=30) as http:
                return await asyncio.gather(*(http.post("/predict", json={"text": "good " * 150}) for _ in range(40)))

        responses = asyncio.run(burst())
        statuses = [r.status_code for r in responses]
        shed = [r for r in responses if r.status_code == 503]
        assert set(statuses) == {200, 503}, statuses
        assert all(r.headers["retry-after"] == "1" for r in shed)
        assert all(r.json()["error"]["type"] == "overloaded" for r in shed)
        with server.client() as http:
            metrics = http.get("/metrics").text
            assert f"inference_requests_shed_total {float(len(shed))}" in metrics
            # Shed requests are demand too: the HPA's request rate counts them (route /predict, status 503).
            assert f'http_requests_total{{method="POST",route="/predict",status="503"}} {float(len(shed))}' in metrics
            assert http.get("/health").status_code == 200
    finally:
        server.stop()


def test_requests_beyond_the_in_flight_bound_are_shed_and_the_probe_port_keeps_answering(model_dir, tmp_path) -> None:
    # At most 4 /predict requests at once: 64 connections of 64-text batches overflow it.
    server = start_server(model_dir, tmp_path / "log", SENTIMENT_MAX_IN_FLIGHT="4")
    texts = ["a sharp, funny and humane film that never talks down to its audience"] * 64
    probes: list[tuple[int, float]] = []

    async def probe_while_busy(stop: asyncio.Event) -> None:
        async with httpx.AsyncClient(timeout=10) as http:
            while not stop.is_set():
                started = time.perf_counter()
                status = (await http.get(f"{server.probe_url}/ready")).status_code
                probes.append((status, time.perf_counter() - started))
                await asyncio.sleep(0.05)

    async def burst() -> list[httpx.Response]:
        stop = asyncio.Event()
        prober = asyncio.create_task(probe_while_busy(stop))
        limits = httpx.Limits(max_connections=64)
        async with httpx.AsyncClient(base_url=server.base_url, timeout=60, limits=limits) as http:
            responses = await asyncio.gather(*(http.post("/predict", json={"texts": texts}) for _ in range(300)))
        stop.set()
        await prober
        return responses

    try:
        responses = asyncio.run(burst())
        shed = [r for r in responses if r.status_code == 503]
        assert {r.status_code for r in responses} == {200, 503}
        assert all(r.headers["retry-after"] == "1" and r.json()["error"]["type"] == "overloaded" for r in shed)
        assert all(status == 200 for status, _ in probes)
        assert probes
        with server.client() as http:
            metrics = http.get("/metrics").text
        assert f"inference_requests_shed_total {float(len(shed))}" in metrics
        assert f'http_requests_total{{method="POST",route="/predict",status="503"}} {float(len(shed))}' in metrics
        assert "event_loop_lag_seconds " in metrics
        assert "predict_requests_in_flight 0.0" in metrics
    finally:
        server.stop()


def test_the_probe_port_answers_health_and_ready(server) -> None:
    health = httpx.get(f"{server.probe_url}/health", timeout=5)
    ready = httpx.get(f"{server.probe_url}/ready", timeout=5)
    assert health.status_code == 200
    assert health.json() == {"status": "ok"}
    with server.client() as http:
        version = http.get("/model").json()["model_version"]
    assert ready.status_code == 200
    assert ready.json() == {"status": "ready", "model_version": version}


def test_sigterm_answers_every_request_already_sent_even_16_maximum_batches(model_dir, tmp_path) -> None:
    # 16 connections each send a whole maximum-size batch (64 x 5,000 characters), then SIGTERM at once.
    server = start_server(
        model_dir,
        tmp_path / "log",
        SENTIMENT_MAX_QUEUED_CHARS="6000000",
        SENTIMENT_MAX_QUEUED_TEXTS="2048",
        SENTIMENT_GRACEFUL_TIMEOUT_S="120",
    )
    text = ("a quietly moving film with a clumsy middle act " * 110)[:5000]
    body = json.dumps({"texts": [text] * 64}).encode()
    sockets = [connect(server.base_url) for _ in range(16)]
    for sock in sockets:
        sock.sendall(raw_request(body))
    server.process.send_signal(signal.SIGTERM)
    results = []
    for sock in sockets:
        with sock:
            status, _, answer = read_response(sock, timeout=180)
            results.append((status, len(json.loads(answer)["predictions"])))
    assert results == [(200, 64)] * 16
    assert server.process.wait(timeout=60) in (0, -signal.SIGTERM)


def test_a_request_head_over_the_limit_gets_431(server) -> None:
    with connect(server.base_url) as sock:
        sock.sendall(b"GET /health HTTP/1.1\r\nHost: test\r\nX-Padding: " + b"a" * 20_000 + b"\r\n\r\n")
        status, headers, body = read_response(sock, timeout=10)
    assert status == 431
    assert headers["content-type"] == "application/json"
    assert json.loads(body)["error"]["type"] == "header_too_large"


def test_a_head_that_never_completes_gets_408_and_is_closed(model_dir, tmp_path) -> None:
    server = start_server(model_dir, tmp_path / "log", SENTIMENT_REQUEST_HEAD_TIMEOUT_S="1")
    try:
        with connect(server.base_url) as sock:
            sock.sendall(b"GET /health HTTP/1.1\r\nHost: te")  # ... and nothing more
            started = time.monotonic()
            status, _, body = read_response(sock, timeout=10)
            assert status == 408
            assert json.loads(body)["error"]["type"] == "request_timeout"
            assert sock.recv(1) == b""  # closed
            assert time.monotonic() - started < 5
        with connect(server.base_url) as idle:  # connects and never sends a byte
            status, _, _ = read_response(idle, timeout=10)
            assert status == 408
    finally:
        server.stop()


def test_a_body_that_never_completes_gets_408(model_dir, tmp_path) -> None:
    server = start_server(model_dir, tmp_path / "log", SENTIMENT_REQUEST_BODY_TIMEOUT_S="1")
    try:
        with connect(server.base_url) as sock:
            sock.sendall(raw_request(b'{"text": "an unfinished thou')[:-5])  # Content-Length promises 5 more bytes
            status, _, body = read_response(sock, timeout=10)
            assert status == 408
            assert json.loads(body)["error"]["type"] == "request_timeout"
        with server.client() as http:
            assert http.get("/health").status_code == 200
    finally:
        server.stop()


def test_sixteen_unfinished_50mb_headers_keep_memory_bounded(server) -> None:
    pid = server.process.pid
    before = rss_mb(pid)
    sockets = [connect(server.base_url) for _ in range(16)]
    chunk = b"a" * (1 << 20)
    refused = 0
    for sock in sockets:
        sock.sendall(b"GET /health HTTP/1.1\r\nHost: test\r\nX-Huge: ")
        try:
            for _ in range(50):  # 50 MB of one header value, never finished
                sock.sendall(chunk)
        except OSError:
            refused += 1  # the server answered 431 and closed: the rest could not be sent
    peak = rss_mb(pid)
    for sock in sockets:
        sock.close()
    assert refused == 16
    assert peak - before < 50, (before, peak)
    with server.client() as http:
        assert http.get("/health").status_code == 200
