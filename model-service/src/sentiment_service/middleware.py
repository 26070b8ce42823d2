"""Pure ASGI middleware (no BaseHTTPMiddleware: it costs a task per request)."""

from __future__ import annotations

import time
from collections.abc import Iterable

from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from .errors import send_error
from .metrics import ServiceMetrics

JSON_TYPES = ("application/json",)


class BodyTooLarge(HTTPException):
    def __init__(self, limit: int) -> None:
        super().__init__(413, f"request body exceeds {limit} bytes")


class RequestGuardMiddleware:
    """Rejects oversized bodies (413) and non-JSON bodies (415) before anything parses them.

    A declared Content-Length over the limit is refused without reading; a chunked body is
    counted while it streams and refused as soon as it passes the limit.
    """

    def __init__(self, app: ASGIApp, max_body_bytes: int) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] not in ("POST", "PUT", "PATCH"):
            await self.app(scope, receive, send)
            return
        content_length = None
        content_type = None
        for name, value in scope["headers"]:
            if name == b"content-length":
                content_length = value
            elif name == b"content-type":
                content_type = value
        if content_type is not None:
            media_type = content_type.split(b";", 1)[0].strip().lower().decode("latin-1")
            if media_type not in JSON_TYPES and not media_type.endswith("+json"):
                await send_error(send, 415, "unsupported_media_type", "send the body as application/json")
                return
        if content_length is not None:
            try:
                declared = int(content_length)
            except ValueError:
                await send_error(send, 400, "bad_request", "Content-Length is not a number")
                return
            if declared > self.max_body_bytes:
                await send_error(send, 413, "body_too_large", f"request body exceeds {self.max_body_bytes} bytes")
                return
        received = 0
        limit = self.max_body_bytes

        async def counting_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise BodyTooLarge(limit)
            return message

        await self.app(scope, counting_receive, send)


class HttpMetricsMiddleware:
    """Counts requests by route and status, times them, and tracks requests in flight.

    ``routes`` are the app's own paths (create_app passes its router's): any other path shares the
    label ``unmatched``, so a scanner cannot create one series per path it tries.
    """

    def __init__(self, app: ASGIApp, metrics: ServiceMetrics, routes: Iterable[str]) -> None:
        self.app = app
        self.metrics = metrics
        self.routes = frozenset(routes)

    def route_label(self, path: str) -> str:
        return path if path in self.routes else "unmatched"

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        route = self.route_label(scope["path"])
        method = scope["method"]
        status = 500  # if the app dies before answering, that is what the client sees
        started = time.perf_counter()

        async def recording_send(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        in_flight = self.metrics.http_in_flight
        in_flight.inc()
        try:
            await self.app(scope, receive, recording_send)
        finally:
            in_flight.dec()
            self.metrics.http_requests.labels(method=method, route=route, status=str(status)).inc()
            self.metrics.http_duration.labels(method=method, route=route).observe(time.perf_counter() - started)
