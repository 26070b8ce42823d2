"""Load shedding at the door: a bound on the ``/predict`` requests a process has admitted and not answered.

The model's queue bound (``batching.py``) sheds when scoring falls behind. With a light model the HTTP
side runs out first: at 1,024 clients about a thousand requests sit inside the process at once, each
waiting its turn on the event loop, while the model's queue stays short. ``Admission`` counts the
``/predict`` requests admitted and not yet answered; beyond ``max_in_flight`` the protocol answers 503
with ``Retry-After`` at once through a bare ASGI callable, before FastAPI parses anything, and counts it
where the HPA and the alerts read it. That bounds the request bodies held in memory; it bounds the wait
of admitted requests only where clients honour ``Retry-After`` (make bench, against hey, which does not
and shares the server's cores: no gain), so it is off unless ``SENTIMENT_MAX_IN_FLIGHT`` sets it.

It also samples the event loop's lag (how late a timer fires): exported as a metric, and how the probe
listener (``probes.py``) knows the loop still runs.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from .errors import send_error
from .metrics import ServiceMetrics

# How often the loop's lag is sampled.
SAMPLE_INTERVAL_S = 0.05

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


class Admission:
    """Admits ``/predict`` requests up to ``max_in_flight`` at once (0: no bound) and samples the loop's lag."""

    def __init__(self, metrics: ServiceMetrics, max_in_flight: int, retry_after_s: int) -> None:
        self.metrics = metrics
        self.max_in_flight = max_in_flight
        self.in_flight = 0
        self.lag_s = 0.0
        self.last_tick = time.monotonic()
        self._task: asyncio.Task[None] | None = None
        self._shed_message = f"the server is answering {max_in_flight} requests already, retry shortly"
        self._retry_after = [(b"retry-after", str(retry_after_s).encode())]
        metrics.loop_lag.set_function(lambda: self.lag_s)
        metrics.predict_in_flight.set_function(lambda: self.in_flight)

    @property
    def enabled(self) -> bool:
        return self.max_in_flight > 0

    def full(self) -> bool:
        return self.in_flight >= self.max_in_flight

    def start(self) -> None:
        self.last_tick = time.monotonic()
        self._task = asyncio.get_running_loop().create_task(self._sample())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    def seconds_since_tick(self) -> float:
        """How long the loop has not run the sampler: a loop stuck for seconds is not alive."""
        return time.monotonic() - self.last_tick

    async def _sample(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            due = loop.time() + SAMPLE_INTERVAL_S
            await asyncio.sleep(SAMPLE_INTERVAL_S)
            self.lag_s = max(0.0, loop.time() - due)
            self.last_tick = time.monotonic()

    def admit(self, app: ASGIApp) -> Admitted:
        """``app`` for one admitted request, counted in flight until it returns (or is released)."""
        return Admitted(self, app)

    async def shed(self, _scope: Scope, _receive: Receive, send: Send) -> None:
        """ASGI app of a shed request: 503 with Retry-After, counted where the HPA and alerts read it."""
        self.metrics.http_requests.labels("POST", "/predict", "503").inc()
        self.metrics.requests_shed.inc()
        await send_error(send, 503, "overloaded", self._shed_message, self._retry_after)


class Admitted:
    """One admitted request's app: counted in flight from admission until it returns. A request that
    never runs (pipelined behind others on a connection that closed) is released by the protocol."""

    def __init__(self, admission: Admission, app: ASGIApp) -> None:
        self._admission = admission
        self._app = app
        self._released = False
        admission.in_flight += 1

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await self._app(scope, receive, send)
        finally:
            self.release()

    def release(self) -> None:
        if not self._released:
            self._released = True
            self._admission.in_flight -= 1
