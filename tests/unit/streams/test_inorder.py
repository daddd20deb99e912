"""InOrder: acknowledgements in submission order, only after the batch's work is done."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

from hypothesis import given, settings
from hypothesis import strategies as st

from streams.inorder import InOrder


@dataclass
class FakeMessage:
    refcount: int = 0

    def incref(self, n: int = 1) -> None:
        self.refcount += n


@dataclass
class FakeEvent:
    """faust's event as InOrder uses it: ack drops a reference; 0 means acknowledged."""

    n: int
    log: list[int]
    message: FakeMessage = field(default_factory=FakeMessage)

    def take(self) -> None:  # faust's own reference, released by take_events
        self.message.incref()

    def ack(self) -> bool:
        self.message.refcount -= 1
        if self.message.refcount == 0:
            self.log.append(self.n)
            return True
        return False


def batch(first: int, size: int, log: list[int]) -> list[FakeEvent]:
    events = [FakeEvent(first + i, log) for i in range(size)]
    for e in events:
        e.take()
    return events


async def test_acked_only_after_work_and_in_order() -> None:
    acked: list[int] = []
    chain = InOrder("t", depth=2)
    gate = asyncio.Event()
    done: list[str] = []

    async def slow() -> None:
        await gate.wait()
        done.append("a")

    async def fast() -> None:
        done.append("b")

    a, b = batch(0, 3, acked), batch(3, 2, acked)
    await chain.submit(a, slow)
    for e in a:
        e.ack()  # what take_events does when the body returns
    await chain.submit(b, fast)
    for e in b:
        e.ack()
    await asyncio.sleep(0.01)
    assert acked == [] and done == []  # b waits for a; nothing acknowledged yet
    gate.set()
    await chain.drain()
    assert done == ["a", "b"]
    assert acked == [0, 1, 2, 3, 4]


async def test_failed_batch_stays_unacknowledged_later_batches_run() -> None:
    acked: list[int] = []
    chain = InOrder("t", depth=1)

    async def boom() -> None:
        raise RuntimeError("database said no")

    async def fine() -> None:
        return None

    a, b = batch(0, 2, acked), batch(2, 2, acked)
    await chain.submit(a, boom)
    for e in a:
        e.ack()
    await chain.submit(b, fine)
    for e in b:
        e.ack()
    await chain.drain()
    assert acked == [2, 3]
    assert chain.failed == 1
    assert all(e.message.refcount == 1 for e in a)


async def test_depth_bounds_batches_in_flight() -> None:
    chain = InOrder("t", depth=1)
    gate = asyncio.Event()
    acked: list[int] = []

    async def wait() -> None:
        await gate.wait()

    await chain.submit(batch(0, 1, acked), wait)
    second = asyncio.create_task(chain.submit(batch(1, 1, acked), wait))
    await asyncio.sleep(0.01)
    assert not second.done()  # no room until the first batch finished
    gate.set()
    await second
    await chain.drain()
    assert chain.in_flight == 0


@settings(max_examples=60, deadline=None)
@given(sizes=st.lists(st.integers(1, 5), min_size=1, max_size=8),
       delays=st.lists(st.integers(0, 3), min_size=8, max_size=8),
       depth=st.integers(1, 4))
def test_any_timing_gives_submission_order(sizes: list[int], delays: list[int],
                                           depth: int) -> None:
    """However long each batch's work takes, acknowledgements follow submission order
    and each comes after its own batch's work finished."""
    async def go() -> tuple[list[int], list[int]]:
        acked: list[int] = []
        finished: list[int] = []
        chain = InOrder("p", depth=depth)
        first = 0
        for i, size in enumerate(sizes):
            events = batch(first, size, acked)
            last = first + size - 1

            async def work(i: int = i, last: int = last) -> None:
                for _ in range(delays[i]):
                    await asyncio.sleep(0)
                assert acked == [] or acked[-1] < last - (sizes[i] - 1)
                finished.append(last)

            await chain.submit(events, work)
            for e in events:
                e.ack()
            first += size
        await chain.drain()
        return acked, finished

    acked, finished = asyncio.run(go())
    assert acked == list(range(sum(sizes)))
    assert finished == sorted(finished)
