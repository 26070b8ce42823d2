"""The HTTP server: uvicorn with limits for hostile clients and a shutdown that loses no request.

uvicorn (httptools) accepts request heads of any size and waits forever for a head or a body that never
completes. ``GuardedHttpToolsProtocol`` answers 431 once a request head passes ``max_header_bytes``
(counted as bytes arrive, so a 50 MB header never reaches memory whole), and 408 when a head does not
complete within ``request_head_timeout_s`` of the connection or of its first byte, or a body within
``request_body_timeout_s`` of its head; then it closes the connection.

On SIGTERM uvicorn closes its listening socket, which makes the kernel reset every connection still in
the accept queue, then closes every connection that has no request in progress, including those whose
request bytes arrived but were not parsed yet. ``DrainingServer`` first accepts what waits in the accept
queue, then stops accepting, keeps reading until no connection has unread bytes in its socket (at most
``shutdown_drain_s``), and the protocol keeps a connection whose request head has begun to arrive until
that request is answered: every request already sent is parsed, then answered within the graceful timeout.
"""

from __future__ import annotations

import array
import asyncio
import contextlib
import fcntl
import json
import os
import socket
import termios
from typing import Any

import uvicorn
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from .admission import Admission, Admitted
from .errors import error_body
from .settings import Settings

HEAD_END = b"\r\n\r\n"


def _error_response(status: int, reason: bytes, kind: str, message: str) -> bytes:
    body = json.dumps(error_body(kind, message)).encode()
    return b"".join(
        [
            b"HTTP/1.1 %d %s\r\n" % (status, reason),
            b"content-type: application/json\r\ncontent-length: %d\r\nconnection: close\r\n\r\n" % len(body),
            body,
        ]
    )


class GuardedHttpToolsProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol with a request-head size limit and head and body read timeouts."""

    max_header_bytes = 16_384
    head_timeout_s = 10.0
    body_timeout_s = 30.0
    admission: Admission | None = None

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._reading_head = True
        self._head_bytes = 0
        self._head_tail = b""
        self._timer: asyncio.TimerHandle | None = None
        self._close_after_request = False

    # --- timers -----------------------------------------------------------------------------------
    def _arm(self, seconds: float, kind: str) -> None:
        self._disarm()
        self._timer = self.loop.call_later(seconds, self._timed_out, kind)

    def _disarm(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _timed_out(self, kind: str) -> None:
        self._timer = None
        if self.transport.is_closing():
            return
        if self.cycle is not None and not self.cycle.response_complete and self.cycle.response_started:
            self.transport.close()  # too late for a status line: just end it
            return
        self._reject(408, b"Request Timeout", "request_timeout", f"the request {kind} did not arrive in time")

    def _reject(self, status: int, reason: bytes, kind: str, message: str) -> None:
        self._disarm()
        if self.cycle is not None and not self.cycle.response_complete:
            self.cycle.disconnected = True  # the app stops waiting for the rest of the body
            self.cycle.message_event.set()
        self.transport.write(_error_response(status, reason, kind, message))
        self.transport.close()

    # --- protocol ---------------------------------------------------------------------------------
    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm(self.head_timeout_s, "head")

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        # Requests pipelined behind the current one never run now: they are no longer in flight.
        for _, app in self.pipeline:
            if isinstance(app, Admitted):
                app.release()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if self.transport.is_closing():
            return
        if self._reading_head:
            window = self._head_tail + data
            end = window.find(HEAD_END)
            seen = self._head_bytes + (end + len(HEAD_END) - len(self._head_tail) if end >= 0 else len(data))
            if seen > self.max_header_bytes:
                self._reject(
                    431,
                    b"Request Header Fields Too Large",
                    "header_too_large",
                    f"the request head exceeds {self.max_header_bytes} bytes",
                )
                return
            if end >= 0:
                self._reading_head = False
            else:
                self._head_bytes = seen
                self._head_tail = window[-(len(HEAD_END) - 1) :]
        super().data_received(data)

    def on_message_begin(self) -> None:
        super().on_message_begin()
        if self._timer is None:
            self._arm(self.head_timeout_s, "head")

    def on_headers_complete(self) -> None:
        self._reading_head = False
        admission = self.admission
        if admission is None or not self._is_predict():
            super().on_headers_complete()
            return
        # uvicorn runs ``self.app`` for this request: the bare shed reply, or the API counted in flight.
        api = self.app
        self.app = admission.shed if admission.full() else admission.admit(api)
        try:
            super().on_headers_complete()
        finally:
            self.app = api
        if self._close_after_request and self.cycle is not None:
            self.cycle.keep_alive = False
        if not self.transport.is_closing():
            self._arm(self.body_timeout_s, "body")

    def _is_predict(self) -> bool:
        return self.parser.get_method() == b"POST" and self.url.split(b"?", 1)[0] == b"/predict"

    def on_message_complete(self) -> None:
        self._disarm()
        super().on_message_complete()
        # The next request on this connection starts a new head.
        self._reading_head = True
        self._head_bytes = 0
        self._head_tail = b""

    def shutdown(self) -> None:
        if self._reading_head and self._head_bytes > 0:
            # A request has begun to arrive: answer it, then close (uvicorn would close it now).
            self._close_after_request = True
            return
        super().shutdown()

    def unread_bytes(self) -> int:
        """Bytes that arrived in this connection's socket and were not read yet."""
        sock = self.transport.get_extra_info("socket")
        if sock is None or self.transport.is_closing():
            return 0
        pending = array.array("i", [0])
        try:
            fcntl.ioctl(sock.fileno(), termios.FIONREAD, pending)
        except OSError:
            return 0
        return pending[0]


class DrainingServer(uvicorn.Server):
    """Stops accepting first, keeps reading what is already on its way, then shuts down gracefully."""

    def __init__(self, config: uvicorn.Config, drain_s: float) -> None:
        super().__init__(config)
        self.drain_s = drain_s

    async def _accept_waiting_connections(self) -> None:
        """Take over the connections the kernel completed but nobody accepted yet (closing the listening
        socket would reset them, with their requests already sent)."""
        loop = asyncio.get_running_loop()

        def create_protocol() -> asyncio.Protocol:
            return self.config.http_protocol_class(  # type: ignore[call-arg]
                config=self.config, server_state=self.server_state, app_state=self.lifespan.state
            )

        for server in self.servers:
            for listening in server.sockets:
                with socket.socket(fileno=os.dup(listening.fileno())) as listener:
                    listener.setblocking(False)
                    while True:
                        try:
                            connection, _ = listener.accept()
                        except (BlockingIOError, InterruptedError):
                            break
                        connection.setblocking(False)
                        with contextlib.suppress(OSError):
                            await loop.connect_accepted_socket(create_protocol, connection)

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        await self._accept_waiting_connections()
        for server in self.servers:
            server.close()
        for sock in sockets or []:
            sock.close()
        deadline = asyncio.get_running_loop().time() + self.drain_s
        while asyncio.get_running_loop().time() < deadline and any(
            isinstance(c, GuardedHttpToolsProtocol) and c.unread_bytes() > 0
            for c in list(self.server_state.connections)
        ):
            await asyncio.sleep(0.01)
        await super().shutdown(sockets=sockets)


def protocol_class(settings: Settings, admission: Admission | None = None) -> type[GuardedHttpToolsProtocol]:
    """The guarded protocol with this deployment's limits (and the app's in-flight bound, when it has one)."""
    return type(
        "ConfiguredHttpToolsProtocol",
        (GuardedHttpToolsProtocol,),
        {
            "max_header_bytes": settings.max_header_bytes,
            "head_timeout_s": settings.request_head_timeout_s,
            "body_timeout_s": settings.request_body_timeout_s,
            "admission": admission if admission is not None and admission.enabled else None,
        },
    )
