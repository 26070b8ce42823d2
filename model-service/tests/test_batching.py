"""The micro-batcher: grouping, bounds, ordering, failures and draining."""

from __future__ import annotations

import asyncio

import pytest

from sentiment_service.batching import BatcherClosed, MicroBatcher


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
