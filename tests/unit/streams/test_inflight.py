"""Stage 2's in-flight bytes: when stage 1 must wait, and that a release wakes it."""

from __future__ import annotations

import asyncio

from hypothesis import given
from hypothesis import strategies as st

from streams.inflight import InFlight


def test_under_the_bound_stage1_goes_on() -> None:
    gate = InFlight(100)
    gate.take(60)
    gate.queued = lambda: 40
    assert not gate.over()
    gate.take(1)
    assert gate.over()


def test_bytes_waiting_in_fausts_buffer_count() -> None:
    gate = InFlight(100)
    gate.queued = lambda: 101
    assert gate.over()


def test_no_bound_never_waits() -> None:
    gate = InFlight(0)
    gate.take(10**12)
    assert not gate.over()


@given(st.lists(st.integers(0, 1000), max_size=30))
def test_released_batches_bring_it_back_to_zero(sizes: list[int]) -> None:
    gate = InFlight(1)
    for n in sizes:
        gate.take(n)
    for n in sizes:
        gate.release(n)
    assert gate.held == 0 and not gate.over()


async def test_a_release_wakes_a_waiting_stage1_at_once() -> None:
    gate = InFlight(10)
    gate.take(50)
    assert gate.over()
    loop = asyncio.get_running_loop()
    began = loop.time()
    waiter = asyncio.create_task(gate.wait_room(30.0))
    await asyncio.sleep(0.05)
    assert not waiter.done()  # still over: it waits
    gate.release(50)
    await asyncio.wait_for(waiter, 5)
    assert loop.time() - began < 5 and not gate.over()


async def test_the_wait_ends_after_its_timeout_when_nothing_is_released() -> None:
    gate = InFlight(10)
    gate.take(50)
    assert gate.over()
    await asyncio.wait_for(gate.wait_room(0.05), 5)
    assert gate.over()
