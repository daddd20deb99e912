"""Stage 1's chain with the real validator and the real commune index (no broker): the
Kafka send is a list, the checks are small in-memory ones."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta

import pytest
from aiokafka.errors import KafkaTimeoutError
from prometheus_client import REGISTRY

from geo.index import CommuneIndex, index_from_reference
from ioccore.events.reasons import Reason
from ioccore.events.record import Record
from ioccore.events.validate import Validator
from ioccore.source_registry import Refusal
from streams.deadletters import DeadLetter
from streams.stage1 import InMessage, Stage1, Stage1Output
from tests.support.stage1_sends import Sent


@pytest.fixture(scope="module")
def index() -> CommuneIndex:
    return index_from_reference()


class RefuseSource:
    """A check refusing one source's events (stands in for ownership or scope)."""

    name = "refuse-source"

    def __init__(self, source: str, reason: Reason = Reason.FORBIDDEN_SOURCE) -> None:
        self.source = source
        self.reason = reason
        self.seen: list[str] = []

    async def refuse(self, records: Sequence[Record]) -> Mapping[int, Refusal]:
        self.seen.extend(r.event_id for r in records)
        return {i: Refusal(self.reason, f"{r.source_id} refused")
                for i, r in enumerate(records) if r.source_id == self.source}

    async def close(self) -> None:
        pass


def make(index: CommuneIndex, *checks: RefuseSource, budget: float | None = None
         ) -> tuple[Stage1, Sent]:
    sent = Sent()
    validator = Validator(max_message_bytes=1_048_576, max_future_skew_s=300)
    return Stage1(validator, index, {"sensor-topic": "sensor"}, sent, checks=checks,
                  message_budget_s=budget), sent


def event(e: str, source: str = "aq-1", department: str = "env") -> dict[str, object]:
    at = (datetime.now(UTC) - timedelta(minutes=1)).isoformat()
    return {"schema_version": 1, "event_id": e, "source_id": source, "department": department,
            "feed": "sensor", "occurred_at": at,
            "location": {"lat": 21.0341, "lon": 105.8372},
            "body": {"metric": "pm25", "value": 42.0, "unit": "µg/m³"}}


def message(offset: int, event_ids: list[str], source: str = "aq-1") -> InMessage:
    events = [event(e, source) for e in event_ids]
    return InMessage("sensor-topic", 0, offset, source.encode(), json.dumps(events).encode())


def run(stage1: Stage1, *messages: InMessage) -> Stage1Output:
    return asyncio.run(stage1.process(list(messages)))


def test_a_redelivered_message_is_processed_again_not_rejected(index: CommuneIndex) -> None:
    stage1, _ = make(index)
    first = run(stage1, message(10, ["a", "b"]))
    assert first.valid == 2 and not first.deadletters
    again = run(stage1, message(10, ["a", "b"]))  # same offset: Kafka re-delivery
    assert again.valid == 2 and not again.deadletters


def test_the_same_event_in_a_new_message_is_a_duplicate(index: CommuneIndex) -> None:
    stage1, sent = make(index)
    run(stage1, message(10, ["a"]))
    out = run(stage1, message(11, ["a", "c"]))
    assert out.valid == 1
    assert [d.reason for d in out.deadletters] == ["duplicate_event_id"]
    dead = out.deadletters[0]
    assert (dead.source_offset, dead.batch_index) == (11, 0)
    assert json.loads(dead.value)["event_id"] == "a"  # the element's own bytes
    assert dead.department == "env"  # the department the event names (a shared topic)
    assert [r.event_id for r in sent.enriched] == ["a", "c"] and len(sent.dead) == 1


def test_duplicates_within_one_message(index: CommuneIndex) -> None:
    stage1, _ = make(index)
    out = run(stage1, message(1, ["a", "b", "a"]))
    assert out.valid == 2
    assert [(d.reason, d.batch_index) for d in out.deadletters] == [("duplicate_event_id", 2)]


def test_events_are_grouped_by_commune_with_province(index: CommuneIndex) -> None:
    stage1, _ = make(index)
    out = run(stage1, message(1, ["x", "y"]),
              InMessage("sensor-topic", 0, 2, b"aq-1", b"not json"))
    assert out.valid == 2 and [d.reason for d in out.deadletters] == ["not_json"]
    ((code, records),) = out.enriched.items()
    assert code != "unassigned" and all(r.province_code == "01" for r in records)


def test_checks_run_in_order_on_what_the_previous_passed(index: CommuneIndex) -> None:
    first, second = RefuseSource("aq-2"), RefuseSource("aq-3", Reason.UNREGISTERED_SOURCE)
    stage1, _ = make(index, first, second)
    out = run(stage1, message(1, ["a"], "aq-1"), message(2, ["b", "c"], "aq-2"),
              message(3, ["d"], "aq-3"))
    assert out.valid == 1
    assert [(d.reason, d.source_offset, d.batch_index) for d in out.deadletters] == [
        ("forbidden_source", 2, 0), ("forbidden_source", 2, 1), ("unregistered_source", 3, 0)]
    assert first.seen == ["a", "b", "c", "d"] and second.seen == ["a", "d"]


def test_a_refused_event_leaves_no_trace_in_the_duplicate_memory(index: CommuneIndex) -> None:
    """Ownership before memory (issue 24, item 3): a refused event is not remembered, so
    the genuine event with the same ids, sent later, is stored."""
    check = RefuseSource("gauge-07")
    stage1, _ = make(index, check)
    forged = InMessage("sensor-topic", 0, 1, b"x", json.dumps(
        [event("flood-gauge-07-0800", "gauge-07", "env")]).encode())
    assert [d.reason for d in run(stage1, forged).deadletters] == ["forbidden_source"]
    check.source = "nobody"  # the source's own department now publishes it
    real = InMessage("sensor-topic", 0, 2, b"gauge-07", json.dumps(
        [event("flood-gauge-07-0800", "gauge-07", "water")]).encode())
    out = run(stage1, real)
    assert out.valid == 1 and not out.deadletters


def test_a_message_over_its_budget_is_dead_lettered_whole(index: CommuneIndex) -> None:
    stage1, _ = make(index, budget=0.0)
    bad = InMessage("sensor-topic", 0, 1, b"aq-1", b'[{"a":1 ' + b",{x " * 5000 + b"]")
    out = run(stage1, message(0, ["ok"]), bad)
    assert [d.reason for d in out.deadletters] == [Reason.OVER_BUDGET]
    assert out.deadletters[0].value == bad.value and out.valid == 1


def test_the_event_loop_goes_on_while_a_hostile_message_is_validated(
        index: CommuneIndex) -> None:
    """Issue 24 (budget): validation runs in a worker thread under a per-message budget;
    the event loop (Kafka heartbeats, other stages) keeps ticking meanwhile, and the
    message over its budget is one dead letter, not a stuck partition."""
    import time

    stage1, _ = make(index, budget=0.002)  # the payload is linear now: ~30 ms for 1 MiB
    unit = b",{x " * 63 + b",{} "
    hostile = InMessage("sensor-topic", 0, 1, b"aq-1",
                        b'[{"a":1 ' + unit * ((1 << 20) // len(unit) - 1) + b"]")

    async def scenario() -> tuple[Stage1Output, float, float]:
        gaps: list[float] = []
        done = False

        async def ticker() -> None:
            last = time.monotonic()
            while not done:
                await asyncio.sleep(0.01)
                now = time.monotonic()
                gaps.append(now - last)
                last = now

        tick = asyncio.create_task(ticker())
        t0 = time.monotonic()
        out = await stage1.process([hostile, message(2, ["after"])])
        took = time.monotonic() - t0
        done = True
        await tick
        return out, max(gaps), took

    out, worst_gap, took = asyncio.run(scenario())
    assert [d.reason for d in out.deadletters] == [Reason.OVER_BUDGET]
    assert out.valid == 1  # the next message of the partition goes on
    assert worst_gap < 0.25, worst_gap
    assert took < 0.002 + 1.5, took


# ------------------------------------------------------------------ send ahead
class Deferred:
    """A send that queues: returns at once with a future the test resolves (delivery)."""

    def __init__(self) -> None:
        self.calls: list[tuple[list[Record], list[DeadLetter]]] = []
        self.futures: list[asyncio.Future[None]] = []
        self.queued = asyncio.Event()

    async def __call__(self, enriched: dict[str, list[Record]],
                       dead: list[DeadLetter]) -> asyncio.Future[None]:
        self.calls.append(([r for recs in enriched.values() for r in recs], list(dead)))
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.futures.append(future)
        self.queued.set()
        return future


def deferred(index: CommuneIndex) -> tuple[Stage1, Deferred]:
    send = Deferred()
    validator = Validator(max_message_bytes=1_048_576, max_future_skew_s=300)
    return Stage1(validator, index, {"sensor-topic": "sensor"}, send), send


def counted() -> tuple[float, float, float]:
    """ioc_ingest_events_{received,valid,rejected{not_json}}_total for the sensor feed."""
    def value(name: str, **labels: str) -> float:
        return REGISTRY.get_sample_value(name, {"feed": "sensor", **labels}) or 0.0

    return (value("ioc_ingest_events_received_total"),
            value("ioc_ingest_events_valid_total"),
            value("ioc_ingest_events_rejected_total", reason="not_json"))


async def test_process_ahead_returns_once_queued_and_counts_only_once_delivered(
        index: CommuneIndex) -> None:
    stage1, send = deferred(index)
    before = counted()
    out = await asyncio.wait_for(stage1.process_ahead(
        [message(1, ["q1", "q2"]), InMessage("sensor-topic", 0, 2, b"aq-1", b"nope")]), 5)
    # queued: the send was called with every record and dead letter, not yet delivered
    assert [[r.event_id for r in recs] for recs, _ in send.calls] == [["q1", "q2"]]
    assert [d.reason for d in send.calls[0][1]] == ["not_json"]
    assert out.valid == 2 and out.delivered is not None
    delivered = out.delivered
    await asyncio.sleep(0.05)
    assert not send.futures[0].done()
    assert isinstance(delivered, asyncio.Future) and not delivered.done()
    assert counted() == before  # nothing counted before Kafka has it
    send.futures[0].set_result(None)
    await asyncio.wait_for(delivered, 5)
    received, valid, rejected = counted()
    assert (received - before[0], valid - before[1], rejected - before[2]) == (3, 2, 1)


async def test_a_failed_delivery_raises_from_delivered_and_counts_nothing(
        index: CommuneIndex) -> None:
    stage1, send = deferred(index)
    before = counted()
    out = await asyncio.wait_for(stage1.process_ahead([message(5, ["f1", "f2", "f3"])]), 5)
    assert out.delivered is not None
    send.futures[0].set_exception(KafkaTimeoutError())
    with pytest.raises(KafkaTimeoutError):
        await asyncio.wait_for(out.delivered, 5)
    assert counted() == before
    # processed again (the reader's retry): a re-delivery, not duplicates; counted once
    again = await asyncio.wait_for(stage1.process_ahead([message(5, ["f1", "f2", "f3"])]),
                                   5)
    assert again.valid == 3 and not again.deadletters and again.delivered is not None
    send.futures[1].set_result(None)
    await asyncio.wait_for(again.delivered, 5)
    received, valid, _ = counted()
    assert (received - before[0], valid - before[1]) == (3, 3)


async def test_process_returns_only_once_the_delivery_completed(index: CommuneIndex) -> None:
    stage1, send = deferred(index)
    before = counted()
    task = asyncio.create_task(stage1.process([message(7, ["p1"])]))
    await asyncio.wait_for(send.queued.wait(), 5)
    await asyncio.sleep(0.05)
    assert not task.done() and counted() == before
    send.futures[0].set_result(None)
    out = await asyncio.wait_for(task, 5)
    assert out.valid == 1 and counted()[0] - before[0] == 1
