"""The one shape of every error the service answers: ``{"error": {"type", "message", "details"}}``."""

from __future__ import annotations

import json

from fastapi.responses import JSONResponse
from starlette.types import Send


def error_body(kind: str, message: str, details: list[dict[str, str]] | None = None) -> dict:
    return {"error": {"type": kind, "message": message, "details": details or []}}


def error_response(status: int, kind: str, message: str, details: list[dict[str, str]] | None = None) -> JSONResponse:
    """For exception handlers and routes."""
    return JSONResponse(error_body(kind, message, details), status)


async def send_error(
    send: Send, status: int, kind: str, message: str, extra_headers: list[tuple[bytes, bytes]] | None = None
) -> None:
    """For ASGI middleware (and bare ASGI callables) that answer before the app runs."""
    body = json.dumps(error_body(kind, message)).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    headers += extra_headers or []
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
