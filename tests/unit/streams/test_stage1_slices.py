"""Stage 1 validating on the event loop in slices (``stream.stage1_inline_slice_bytes``).

The slices are an execution detail: whatever the limit, a batch gives the answer the
whole batch gives in the worker thread, a message larger than a slice is validated off
the loop, and the loop runs between two slices.
"""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from geo.index import CommuneIndex, index_from_reference
from ioccore.events.record import Record
from ioccore.events.validate import Validator
from streams.prepare import InMessage, slices
from streams.stage1 import Stage1, Stage1Output
from tests.support.stage1_sends import Sent

TOPIC = "sensor-topic"
AT = (datetime.now(UTC) - timedelta(minutes=1)).isoformat()


@pytest.fixture(scope="module")
def index() -> CommuneIndex:
    return index_from_reference()


def stage(index: CommuneIndex, slice_bytes: int) -> tuple[Stage1, Sent]:
    sent = Sent()
    validator = Validator(max_message_bytes=1_048_576, max_future_skew_s=300)
    return Stage1(validator, index, {TOPIC: "sensor"}, sent,
                  inline_slice_bytes=slice_bytes), sent


def event(e: str, source: str, located: bool) -> dict[str, object]:
    out: dict[str, object] = {
        "schema_version": 1, "event_id": e, "source_id": source, "department": "env",
        "feed": "sensor", "occurred_at": AT,
        "body": {"metric": "pm25", "value": 42.0, "unit": "µg/m³"}}
    if located:
        out["location"] = {"lat": 21.0341, "lon": 105.8372}
    else:
        out["commune_code"] = "00004"
    return out


# one message: a one-event message (keyed), an envelope of a few events, or junk
MESSAGE = st.one_of(
    st.tuples(st.just("one"), st.integers(0, 20), st.booleans()),
    st.tuples(st.just("envelope"), st.lists(st.integers(0, 20), min_size=1, max_size=6),
              st.booleans()),
    st.tuples(st.just("junk"), st.binary(min_size=1, max_size=300), st.just(False)))


def build(specs: Sequence[tuple[str, Any, bool]]) -> list[InMessage]:
    out = []
    for offset, (kind, what, located) in enumerate(specs):
        if kind == "one":
            value = json.dumps(event(f"e{what}", "aq-1", located)).encode()
        elif kind == "envelope":
            value = json.dumps([event(f"e{e}", "aq-1", located) for e in what]).encode()
        else:
            value = what
        out.append(InMessage(TOPIC, 0, offset, b"aq-1", value))
    return out


def answer(out: Stage1Output, sent: Sent) -> tuple[object, ...]:
    """What the batch came to, independent of the order within one stage-1 batch (and of
    the ``geo`` label: the index's per-source cache, shared by both runs, says "cache")."""
    return (out.valid,
            sorted((r.event_id, r.commune_code, r.province_code, r.origin)
                   for r in sent.enriched),
            sorted(repr(d[:9]) for d in sent.dead))


@settings(max_examples=60, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(specs=st.lists(MESSAGE, max_size=25), limit=st.integers(1, 2_000))
def test_any_slicing_gives_the_whole_batchs_answer(
        index: CommuneIndex, specs: list[tuple[str, Any, bool]], limit: int) -> None:
    batch = build(specs)
    whole, whole_sent = stage(index, 0)
    sliced, sliced_sent = stage(index, limit)
    expected = answer(asyncio.run(whole.process(batch)), whole_sent)
    assert answer(asyncio.run(sliced.process(batch)), sliced_sent) == expected


@given(sizes=st.lists(st.integers(0, 50), max_size=40), limit=st.integers(1, 60))
def test_slices_keep_the_order_and_bound_what_runs_on_the_loop(
        sizes: list[int], limit: int) -> None:
    batch = [InMessage(TOPIC, 0, i, None, b"x" * n) for i, n in enumerate(sizes)]
    parts = list(slices(batch, limit))
    assert [m for part, _ in parts for m in part] == batch
    for part, large in parts:
        assert part
        if large:
            assert len(part) == 1 and len(part[0].value or b"") > limit
        else:
            assert sum(len(m.value or b"") for m in part) <= limit


def test_a_message_over_a_slice_is_validated_off_the_loop_and_the_loop_runs_between(
        index: CommuneIndex) -> None:
    """Small messages validate on the loop thread, a large one in a worker thread, and
    a task waiting on the loop gets its turn between slices (Kafka heartbeats, stage 2)."""
    threads: dict[int, int] = {}
    validator = Validator(max_message_bytes=1_048_576, max_future_skew_s=300)

    class Noting:
        def validate(self, value: bytes | None, **kwargs: Any) -> Any:
            threads[len(value or b"")] = threading.get_ident()
            return validator.validate(value, **kwargs)

        def accept_one(self, value: bytes, now: float, expected_feed: str | None
                       ) -> Record | None:
            threads[len(value)] = threading.get_ident()
            return validator.accept_one(value, now, expected_feed)

    small = [InMessage(TOPIC, 0, i, b"aq-1", json.dumps(event(f"s{i}", "aq-1", False))
                       .encode()) for i in range(40)]
    large_value = json.dumps([event(f"l{i}", "aq-2", True) for i in range(40)]).encode()
    large = InMessage(TOPIC, 0, 40, b"aq-2", large_value)
    limit = len(small[0].value or b"") * 5  # eight slices of five, then the large one
    sent = Sent()
    stage1 = Stage1(Noting(), index, {TOPIC: "sensor"}, sent, inline_slice_bytes=limit)

    async def scenario() -> tuple[int, int, Stage1Output]:
        turns = 0
        done = False

        async def other() -> None:
            nonlocal turns
            while not done:
                turns += 1
                await asyncio.sleep(0)

        task = asyncio.create_task(other())
        await asyncio.sleep(0)
        before = turns
        out = await stage1.process([*small, large])
        done = True
        await task
        return turns - before, threading.get_ident(), out

    turns, loop_thread, out = asyncio.run(scenario())
    assert out.valid == 80 and not sent.dead
    assert threads[len(large_value)] != loop_thread
    assert {threads[len(m.value or b"")] for m in small} == {loop_thread}
    assert turns >= 8  # at least once between each two slices and while the thread ran
