"""The micro-batcher: grouping, bounds, ordering, failures and draining."""

from __future__ import annotations

import asyncio
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from sentiment_service.batching import BatcherClosed, MicroBatcher, Overloaded


class Recorder:
    def __init__(self, fail_on: str | None = None) -> None:
        self.calls: list[list[str]] = []
        self.fail_on = fail_on

    def __call__(self, texts: list[str]) -> list[str]:
        self.calls.append(list(texts))
        if self.fail_on in texts:
            raise ValueError("model exploded")
        return [t.upper() for t in texts]


def run(coro):
    return asyncio.run(coro)


def test_concurrent_requests_share_one_model_call() -> None:
    async def scenario():
        score = Recorder()
        batcher = MicroBatcher(score, max_size=32, max_wait_s=0.0)
        batcher.start()
        # All submitted before the consumer runs: one call, results routed back in order.
        results = await asyncio.gather(*(batcher.submit([f"t{i}"]) for i in range(10)))
        await batcher.stop()
        return score, results

    score, results = run(scenario())
    assert results == [[f"T{i}"] for i in range(10)]
    assert score.calls == [[f"t{i}" for i in range(10)]]


def test_batches_never_exceed_max_size_and_requests_are_not_split() -> None:
    async def scenario():
        score = Recorder()
        batcher = MicroBatcher(score, max_size=5, max_wait_s=0.0)
        batcher.start()
        requests = [["a", "b"], ["c", "d"], ["e", "f"], ["g"], ["h", "i", "j", "k"]]
        results = await asyncio.gather(*(batcher.submit(r) for r in requests))
        await batcher.stop()
        return score, requests, results

    score, requests, results = run(scenario())
    assert results == [[t.upper() for t in r] for r in requests]
    assert all(len(call) <= 5 for call in score.calls)
    assert [t for call in score.calls for t in call] == list("abcdefghijk")
    assert score.calls[0] == ["a", "b", "c", "d"]  # ["e", "f"] would overflow: carried to the next batch


def test_a_request_larger_than_max_size_is_scored_alone() -> None:
    async def scenario():
        score = Recorder()
        batcher = MicroBatcher(score, max_size=2, max_wait_s=0.0)
        batcher.start()
        result = await batcher.submit(["a", "b", "c"])
        await batcher.stop()
        return score, result

    score, result = run(scenario())
    assert result == ["A", "B", "C"]
    assert score.calls == [["a", "b", "c"]]


def test_max_wait_collects_late_arrivals() -> None:
    async def scenario(wait_s: float):
        score = Recorder()
        batcher = MicroBatcher(score, max_size=32, max_wait_s=wait_s)
        batcher.start()

        async def late(text: str, delay: float):
            await asyncio.sleep(delay)
            return await batcher.submit([text])

        await asyncio.gather(batcher.submit(["first"]), late("second", 0.01))
        await batcher.stop()
        return score.calls

    assert run(scenario(0.2)) == [["first", "second"]]
    assert run(scenario(0.0)) == [["first"], ["second"]]


def test_model_errors_reach_every_caller_and_the_batcher_survives() -> None:
    async def scenario():
        batcher = MicroBatcher(Recorder(fail_on="boom"), max_size=32, max_wait_s=0.0)
        batcher.start()
        outcomes = await asyncio.gather(batcher.submit(["boom"]), batcher.submit(["ok"]), return_exceptions=True)
        after = await batcher.submit(["still alive"])
        await batcher.stop()
        return outcomes, after

    outcomes, after = run(scenario())
    assert all(isinstance(o, ValueError) for o in outcomes)
    assert after == ["STILL ALIVE"]


def test_stop_finishes_submitted_work_then_refuses_new_work() -> None:
    async def scenario():
        batcher = MicroBatcher(Recorder(), max_size=1, max_wait_s=0.0)
        batcher.start()
        pending = [asyncio.create_task(batcher.submit([f"t{i}"])) for i in range(5)]
        await asyncio.sleep(0)  # let them enqueue
        await batcher.stop()
        done = [task.result() for task in pending]
        with pytest.raises(BatcherClosed):
            await batcher.submit(["late"])
        return done

    assert run(scenario()) == [[f"T{i}"] for i in range(5)]


def test_cancelled_callers_do_not_break_the_batch() -> None:
    async def scenario():
        batcher = MicroBatcher(Recorder(), max_size=32, max_wait_s=0.05)
        batcher.start()
        gone = asyncio.create_task(batcher.submit(["gone"]))
        kept = asyncio.create_task(batcher.submit(["kept"]))
        await asyncio.sleep(0)
        gone.cancel()
        result = await kept
        await batcher.stop()
        return result

    assert run(scenario()) == ["KEPT"]


@pytest.mark.parametrize(("size", "wait"), [(0, 0.0), (1, -1.0)])
def test_invalid_bounds_are_rejected(size: int, wait: float) -> None:
    with pytest.raises(ValueError, match="must"):
        MicroBatcher(Recorder(), max_size=size, max_wait_s=wait)


def test_work_beyond_the_queue_bounds_is_refused_at_once_and_counted_out_when_done() -> None:
    async def scenario():
        score = Recorder()
        batcher = MicroBatcher(score, max_size=4, max_wait_s=0.0, max_queued_texts=3, max_queued_chars=10)
        batcher.start()
        first = asyncio.create_task(batcher.submit(["aa", "bb"]))  # 2 texts, 4 chars: admitted
        await asyncio.sleep(0)
        too_many_texts = batcher.submit(["c", "d"])  # 4 texts > 3
        too_many_chars = batcher.submit(["x" * 7])  # 11 chars > 10
        refusals = []
        for attempt in (too_many_texts, too_many_chars):
            try:
                await attempt
            except Overloaded as exc:
                refusals.append(str(exc))
        results = await first
        queued_after = (batcher.queued_texts, batcher.queued_chars)
        alone = await batcher.submit(["y" * 50])  # nothing waits: even a request over the bound gets in
        await batcher.stop()
        return refusals, results, queued_after, alone

    refusals, results, queued_after, alone = run(scenario())
    assert len(refusals) == 2
    assert "texts" in refusals[0]
    assert "characters" in refusals[1]
    assert results == ["AA", "BB"]
    assert queued_after == (0, 0)
    assert alone == ["Y" * 50]


def test_the_model_runs_on_its_executor_and_the_event_loop_stays_free() -> None:
    def slow_score(texts: list[str]) -> list[str]:
        time.sleep(0.3)  # a long model call (off the loop; sleep releases the GIL as scoring yields it)
        return [t.upper() for t in texts]

    async def scenario():
        with ThreadPoolExecutor(max_workers=1) as executor:
            batcher = MicroBatcher(slow_score, max_size=8, max_wait_s=0.0, executor=executor)
            batcher.start()
            job = asyncio.create_task(batcher.submit(["a"]))
            await asyncio.sleep(0.01)
            ticks = 0
            started = time.monotonic()
            while not job.done():  # the loop keeps running while the model works
                ticks += 1
                await asyncio.sleep(0.01)
            result = await job
            await batcher.stop()
            return ticks, time.monotonic() - started, result

    ticks, elapsed, result = run(scenario())
    assert result == ["A"]
    assert elapsed > 0.2
    assert ticks >= 10
