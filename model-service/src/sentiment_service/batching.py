"""Micro-batching: concurrent requests share one model call.

Each request puts its texts on a queue and awaits a future. One consumer task takes the first
waiting request, then keeps taking requests until the batch holds ``max_size`` texts or
``max_wait_s`` has passed since it started (with ``max_wait_s = 0`` it takes only what is already
queued, so an idle server adds no latency). A request's texts always stay in one batch; a request
that would overflow the batch waits for the next one, so no model call exceeds ``max_size`` texts
unless a single request alone is larger.

The model call runs on ``executor`` (one model thread) when one is given: scoring is pure Python and
holds the GIL, but the interpreter hands the GIL over every few milliseconds, so the event loop keeps
parsing requests and answering ``/health`` and ``/ready`` while a large batch is scored. Batch results
are recorded (``on_batch``) back on the event loop.

Admission control: the texts waiting for the model (queued or being scored) are bounded in number
(``max_queued_texts``: the model's per-text cost) and in characters (``max_queued_chars``: its cost per
character); a request that would exceed either bound is refused at once with :class:`Overloaded` (the
API answers 503 with Retry-After) instead of waiting in an unbounded queue. A request always gets in
when nothing is waiting, so the largest legal request is never refused on an idle server.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Sequence
from concurrent.futures import Executor
from dataclasses import dataclass
from typing import Generic, TypeVar

log = logging.getLogger(__name__)

Result = TypeVar("Result")


@dataclass(slots=True)
class _Pending(Generic[Result]):
    texts: Sequence[str]
    future: asyncio.Future[list[Result]]
    chars: int


class BatcherClosed(RuntimeError):
    """The batcher is stopping or stopped and takes no new work."""


class Overloaded(RuntimeError):
    """Admitting this request would exceed the bound on queued work; the client should retry later."""


class MicroBatcher(Generic[Result]):
    def __init__(
        self,
        score: Callable[[list[str]], list[Result]],
        *,
        max_size: int,
        max_wait_s: float,
        on_batch: Callable[[list[str], list[Result]], None] | None = None,
        max_queued_texts: int | None = None,
        max_queued_chars: int | None = None,
        executor: Executor | None = None,
    ) -> None:
        if max_size < 1:
            raise ValueError("max_size must be at least 1")
        if max_wait_s < 0:
            raise ValueError("max_wait_s must not be negative")
        if (max_queued_texts is not None and max_queued_texts < 1) or (
            max_queued_chars is not None and max_queued_chars < 1
        ):
            raise ValueError("the queue bounds must be at least 1")
        self._score = score
        self._max_size = max_size
        self._max_wait_s = max_wait_s
        self._on_batch = on_batch
        self._max_queued_texts = max_queued_texts
        self._max_queued_chars = max_queued_chars
        self._executor = executor
        self.queued_texts = 0
        self.queued_chars = 0
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
        """Score ``texts`` in some upcoming batch; results come back in input order.

        Raises :class:`Overloaded` at once when the queued work would exceed a bound."""
        if self._closing or self._task is None:
            raise BatcherClosed("the model is not accepting work")
        chars = sum(map(len, texts))
        if self.queued_texts > 0:
            if self._max_queued_texts is not None and self.queued_texts + len(texts) > self._max_queued_texts:
                raise Overloaded(f"{self.queued_texts} texts wait for the model (limit {self._max_queued_texts})")
            if self._max_queued_chars is not None and self.queued_chars + chars > self._max_queued_chars:
                raise Overloaded(f"{self.queued_chars} characters wait for the model (limit {self._max_queued_chars})")
        future: asyncio.Future[list[Result]] = asyncio.get_running_loop().create_future()
        self.queued_texts += len(texts)
        self.queued_chars += chars
        self._queue.put_nowait(_Pending(texts, future, chars))
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
            await self._dispatch(batch)

    async def _dispatch(self, batch: list[_Pending[Result]]) -> None:
        texts = [text for pending in batch for text in pending.texts]
        try:
            if self._executor is None:
                results = self._score(texts)
            else:
                results = await asyncio.get_running_loop().run_in_executor(self._executor, self._score, texts)
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
            for pending in batch:
                self.queued_texts -= len(pending.texts)
                self.queued_chars -= pending.chars
                self._queue.task_done()
