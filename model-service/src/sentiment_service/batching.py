"""Micro-batching: concurrent requests share one model call.

Each request puts its texts on a queue and awaits a future. One consumer task takes the first
waiting request, then keeps taking requests until the batch holds ``max_size`` texts or
``max_wait_s`` has passed since it started (with ``max_wait_s = 0`` it takes only what is already
queued, so an idle server adds no latency). A request's texts always stay in one batch; a request
that would overflow the batch waits for the next one, so no model call exceeds ``max_size`` texts
unless a single request alone is larger.

The model call runs on the event loop thread: scoring is pure Python and holds the GIL anyway,
so a thread pool would only add hand-off cost.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Generic, TypeVar

log = logging.getLogger(__name__)

Result = TypeVar("Result")


@dataclass(slots=True)
class _Pending(Generic[Result]):
    texts: Sequence[str]
    future: asyncio.Future[list[Result]]


class BatcherClosed(RuntimeError):
    """The batcher is stopping or stopped and takes no new work."""


class MicroBatcher(Generic[Result]):
    def __init__(
        self,
        score: Callable[[list[str]], list[Result]],
        max_size: int,
        max_wait_s: float,
        on_batch: Callable[[list[str], list[Result]], None] | None = None,
    ) -> None:
        if max_size < 1:
            raise ValueError("max_size must be at least 1")
        if max_wait_s < 0:
            raise ValueError("max_wait_s must not be negative")
        self._score = score
        self._max_size = max_size
        self._max_wait_s = max_wait_s
        self._on_batch = on_batch
        self._queue: asyncio.Queue[_Pending[Result]] = asyncio.Queue()
        self._carry: _Pending[Result] | None = None
        self._task: asyncio.Task[None] | None = None
        self._closing = False

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run(), name="micro-batcher")

    async def stop(self) -> None:
        """Finish every request already submitted, then stop the consumer."""
        self._closing = True
        if self._task is None:
            return
        await self._queue.join()
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task
        self._task = None

    async def submit(self, texts: Sequence[str]) -> list[Result]:
        """Score ``texts`` in some upcoming batch; results come back in input order."""
        if self._closing or self._task is None:
            raise BatcherClosed("the model is not accepting work")
        future: asyncio.Future[list[Result]] = asyncio.get_running_loop().create_future()
        self._queue.put_nowait(_Pending(texts, future))
        return await future

    async def _next(self, timeout: float | None) -> _Pending[Result] | None:
        if self._carry is not None:
            pending, self._carry = self._carry, None
            return pending
        if timeout is None:
            return await self._queue.get()
        if timeout <= 0:
            try:
                return self._queue.get_nowait()
            except asyncio.QueueEmpty:
                return None
        try:
            return await asyncio.wait_for(self._queue.get(), timeout)
        except TimeoutError:
            return None

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            first = await self._next(timeout=None)
            batch = [first]
            size = len(first.texts)
            deadline = loop.time() + self._max_wait_s
            while size < self._max_size:
                pending = await self._next(timeout=deadline - loop.time())
                if pending is None:
                    break
                if size + len(pending.texts) > self._max_size:
                    self._carry = pending
                    break
                batch.append(pending)
                size += len(pending.texts)
            self._dispatch(batch)

    def _dispatch(self, batch: list[_Pending[Result]]) -> None:
        texts = [text for pending in batch for text in pending.texts]
        try:
            results = self._score(texts)
            if self._on_batch is not None:
                self._on_batch(texts, results)
        except Exception as exc:
            log.exception("model call failed for a batch of %d texts", len(texts))
            for pending in batch:
                if not pending.future.done():
                    pending.future.set_exception(exc)
        else:
            start = 0
            for pending in batch:
                end = start + len(pending.texts)
                if not pending.future.done():  # the client may have gone away
                    pending.future.set_result(results[start:end])
                start = end
        finally:
            for _ in batch:
                self._queue.task_done()
