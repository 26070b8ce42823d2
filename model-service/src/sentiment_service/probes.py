"""Kubernetes probes on a port of their own, answered from a thread of their own.

A probe sent to the API port waits in line with the traffic: at 1,024 clients the event loop takes
seconds to reach it, and kubelet would unready or restart a pod exactly when it is busiest. This
listener answers ``GET /health`` and ``GET /ready`` from its own thread, so a probe waits for the GIL
(milliseconds), not for the event loop. It still tells the truth about the event loop: ``/health`` fails
when the loop has not run for ``loop_stall_s`` (a stuck process), ``/ready`` also while the model is not
loaded or the server is shutting down. The API port keeps its own ``/health`` and ``/ready``.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from .errors import error_body

log = logging.getLogger("sentiment_service")

# A probe client that sends nothing is dropped after this long (kubelet sends at once).
READ_TIMEOUT_S = 2.0


class ProbeState:
    """What the probes report, read from the serving side without touching the event loop."""

    def __init__(
        self,
        seconds_since_loop_ran: Callable[[], float],
        model_ready: Callable[[], tuple[bool, str | None, str]],
        loop_stall_s: float,
    ) -> None:
        self.seconds_since_loop_ran = seconds_since_loop_ran
        self.model_ready = model_ready
        self.loop_stall_s = loop_stall_s

    def health(self) -> tuple[int, dict[str, str]]:
        stalled = self.seconds_since_loop_ran()
        if stalled > self.loop_stall_s:
            return 503, {"status": "stalled", "reason": f"the event loop has not run for {stalled:.1f} s"}
        return 200, {"status": "ok"}

    def ready(self) -> tuple[int, dict[str, str]]:
        status, body = self.health()
        if status != 200:
            return 503, {"status": "not_ready", "reason": body["reason"]}
        ready, version, reason = self.model_ready()
        if not ready:
            return 503, {"status": "not_ready", "reason": reason or "model not ready"}
        return 200, {"status": "ready", "model_version": version or ""}


class _Handler(BaseHTTPRequestHandler):
    server: _ProbeHTTPServer
    timeout = READ_TIMEOUT_S
    protocol_version = "HTTP/1.0"  # one probe per connection, as kubelet sends them

    def do_GET(self) -> None:
        routes = {"/health": self.server.state.health, "/ready": self.server.state.ready}
        answer = routes.get(self.path.split("?", 1)[0])
        if answer is None:
            status, body = 404, error_body("not_found", "probes: GET /health or /ready")
        else:
            status, body = answer()
        payload = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, *_: object) -> None:
        return  # kubelet probes every few seconds: no access log


class _ProbeHTTPServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, address: tuple[str, int], state: ProbeState) -> None:
        self.state = state
        super().__init__(address, _Handler)


class ProbeServer:
    """The probe listener's lifecycle: started before the model loads, stopped after the API drains."""

    def __init__(self, host: str, port: int, state: ProbeState) -> None:
        self._server = _ProbeHTTPServer((host, port), state)
        self._thread = threading.Thread(target=self._server.serve_forever, name="probes", daemon=True)

    @property
    def port(self) -> int:
        return self._server.server_address[1]

    def start(self) -> None:
        self._thread.start()
        log.info("probes on port %d: GET /health, GET /ready", self.port)

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)
