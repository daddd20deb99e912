"""Stage 1's batching reader on the real broker: what it commits and when, who reads what.

The reader (streams/raw_reader.py) commits a partition's offset only after the batch
that read it was delivered, only for partitions it still holds; two workers split the
raw partitions in the stage-1 group and a killed worker's partitions are taken over.
The in-process tests drive the real reader and consumer with a stage that records what
it was given (the subject is the commit protocol, not validation).
"""

from __future__ import annotations

import asyncio
import json
import signal
import threading
import time
from collections.abc import Callable, Iterable, Sequence, Set
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from aiokafka.errors import KafkaTimeoutError
from iocdev.sandbox import Pipeline, batches, envelope
from kafka import KafkaProducer
from kafka.structs import TopicPartition
from prometheus_client import REGISTRY

from ioccore.settings import stage1_group
from ioccore.topics import admin_client
from streams.health import Health
from streams.inflight import InFlight
from streams.raw_reader import Bounds, RawReader, next_offsets, raw_consumer
from streams.stage import TopicPartition as StagePartition
from streams.stage1 import InMessage
from tests.support.kills import kill_mid_stream

pytestmark = [pytest.mark.integration, pytest.mark.slow, pytest.mark.partitions(3)]

T0 = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=3)


def readings(n: int, prefix: str) -> list[dict[str, Any]]:
    """``n`` readings in one commune, one source per 50 events, distinct seconds."""
    return [envelope("sensor", f"{prefix}{i}", f"{prefix}-src-{i % 50}",
                     T0 + timedelta(milliseconds=10 * i),
                     {"metric": "pm25", "value": float(i % 97), "unit": "ug/m3"},
                     commune_code="00004") for i in range(n)]


def one_per_message(events: list[dict[str, Any]]) -> list[tuple[bytes, bytes]]:
    return [(e["source_id"].encode(), json.dumps(e).encode()) for e in events]


def committed(pipe: Pipeline, group: str) -> dict[tuple[str, int], int]:
    admin = admin_client(pipe.settings.kafka)
    try:
        offsets = admin.list_group_offsets(group).get(group, {})
    finally:
        admin.close()
    return {(tp.topic, tp.partition): om.offset for tp, om in offsets.items()
            if om.offset >= 0}


def end_offsets(pipe: Pipeline, topic: str) -> dict[tuple[str, int], int]:
    from kafka import KafkaConsumer

    consumer = KafkaConsumer(bootstrap_servers=pipe.settings.kafka.bootstrap_servers,
                             **pipe.settings.kafka.client_options())
    try:
        tps = [TopicPartition(topic, p) for p in range(pipe.partitions)]
        return {(tp.topic, tp.partition): off for tp, off in consumer.end_offsets(tps).items()}
    finally:
        consumer.close()


# ------------------------------------------------------------------ real workers
def test_one_event_and_envelope_messages_are_stored_exactly_once(pipe: Pipeline) -> None:
    singles, enveloped = readings(3000, "s"), readings(3000, "e")
    pipe.produce("sensor", one_per_message(singles))
    pipe.produce("sensor", batches(enveloped, 100))
    pipe.start_worker()
    pipe.wait_for("SELECT count(*) FROM sensor_readings", 6000, timeout=120)
    pipe.wait_for("SELECT sum(count) FROM rollup_1m", 6000, timeout=60)
    time.sleep(3)  # anything read twice would show now
    assert pipe.query("SELECT count(*), count(DISTINCT (source_id, event_id)) "
                      "FROM sensor_readings") == [(6000, 6000)]
    group = stage1_group(pipe.app_id)
    deadline = time.monotonic() + 20  # committed at most commit_interval_s after delivery
    while committed(pipe, group) != end_offsets(pipe, pipe.topics["sensor"]):
        assert time.monotonic() < deadline, committed(pipe, group)
        time.sleep(0.5)


def test_worker_killed_mid_stream_of_one_event_messages_stores_each_once(
        pipe: Pipeline) -> None:
    events = readings(30000, "k")
    worker = pipe.start_worker()
    time.sleep(4)
    # produced while the kill waits for its rows: a worker that takes batches as they
    # come stores as fast as a synchronous produce sends, and could finish before it
    producing = threading.Thread(target=pipe.produce,
                                 args=("sensor", one_per_message(events)))
    producing.start()
    try:
        kill_mid_stream(pipe, worker, after_rows=3000, total=len(events))
    finally:
        producing.join()
    pipe.start_worker()
    pipe.wait_for("SELECT count(*) FROM sensor_readings", len(events), timeout=180)
    pipe.wait_for("SELECT sum(count) FROM rollup_1m", len(events), timeout=60)
    assert pipe.query("SELECT count(DISTINCT (source_id, event_id)) FROM sensor_readings"
                      ) == [(len(events),)]


def assigned_partitions(port: int) -> float | None:
    try:
        text = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=3).text
    except httpx.HTTPError:
        return None
    for line in text.splitlines():
        if line.startswith('ioc_stream_partitions_assigned{stage="stage1"}'):
            return float(line.rsplit(" ", 1)[1])
    return None


def wait_assigned(ports: list[int], ok: Callable[[list[float]], bool],
                  timeout: float = 60.0) -> list[float]:
    """Poll each worker's stage-1 partition count until ``ok`` holds for them."""
    deadline = time.monotonic() + timeout
    seen: list[float | None] = []
    while time.monotonic() < deadline:
        seen = [assigned_partitions(p) for p in ports]
        counts = [s for s in seen if s is not None]
        if len(counts) == len(ports) and ok(counts):
            return counts
        time.sleep(0.5)
    raise AssertionError(f"stage-1 partitions per worker: {seen}")


def test_two_workers_split_the_raw_partitions_and_a_killed_ones_are_taken_over(
        pipe: Pipeline) -> None:
    first, second = pipe.start_worker(), pipe.start_worker()
    raw = 3 * pipe.partitions  # sensor, traffic, service (and any ioc.dept.* topics)
    counts = wait_assigned(pipe.web_ports,
                           lambda c: sum(c) >= raw and min(c) > 0 and max(c) - min(c) <= 1)
    events = readings(9000, "t")
    pipe.produce("sensor", one_per_message(events[:3000]))
    pipe.wait_for("SELECT count(*) FROM sensor_readings", 3000, timeout=120)
    second.send_signal(signal.SIGKILL)
    second.wait()
    wait_assigned(pipe.web_ports[:1], lambda c: c == [sum(counts)])  # after the session
    pipe.produce("sensor", one_per_message(events[3000:]))             # timeout (6 s)
    pipe.wait_for("SELECT count(*) FROM sensor_readings", 9000, timeout=120)
    pipe.wait_for("SELECT sum(count) FROM rollup_1m", 9000, timeout=60)
    assert first.poll() is None


def test_a_department_topic_created_while_the_worker_runs_is_read(pipe: Pipeline) -> None:
    from ioccore.settings import TopicSettings
    from ioccore.topics import delete_topics, ensure_topics

    pipe.query("INSERT INTO departments (code, name, feeds, source_quota) "
               "VALUES ('late', 'Late', %s, 0) RETURNING code", (["sensor"],))
    pipe.query("INSERT INTO sources (source_id, department, feed, registration) "
               "VALUES ('late-1', 'late', 'sensor', 'explicit') RETURNING source_id")
    pipe.start_worker()
    pipe.produce("sensor", one_per_message(readings(10, "before")))
    pipe.wait_for("SELECT count(*) FROM sensor_readings", 10)  # running, group joined
    topic = f"{pipe.topics['sensor'].rsplit('.', 1)[0]}.dept.late.sensor.v1"
    ensure_topics(pipe.settings.kafka, [TopicSettings(name=topic, partitions=1)])
    try:
        event = envelope("sensor", "late-e1", "late-1", T0,
                         {"metric": "pm25", "value": 3.0, "unit": "ug/m3"},
                         commune_code="00004", department="late")
        producer = KafkaProducer(bootstrap_servers=pipe.settings.kafka.bootstrap_servers,
                                 acks="all", **pipe.settings.kafka.client_options())
        try:
            producer.send(topic, key=b"late-1", value=json.dumps(event).encode()).get(15)
        finally:
            producer.close()
        pipe.wait_for("SELECT count(*) FROM sensor_readings WHERE source_id = 'late-1'", 1,
                      timeout=90)  # within the consumer's metadata refresh (30 s)
    finally:
        delete_topics(pipe.settings.kafka, [topic])


# ------------------------------------------------------------------ the reader alone
class Recording:
    """A stage that records its batches; each waits for ``gate`` (set: pass through)."""

    name = "stage1"

    def __init__(self) -> None:
        self.gate = asyncio.Event()
        self.gate.set()
        self.holding = asyncio.Event()
        self.delivered: list[InMessage] = []
        self.fail_next = 0
        self.assignments: list[set[StagePartition]] = []

    async def process(self, batch: Sequence[InMessage]) -> None:
        self.holding.set()
        await self.gate.wait()
        if self.fail_next:
            self.fail_next -= 1
            raise RuntimeError("forced failure mid-batch")
        self.delivered.extend(batch)

    def on_assign(self, partitions: Set[StagePartition]) -> None:
        self.assignments.append(set(partitions))

    def on_revoke(self, partitions: Set[StagePartition]) -> None:
        pass

    async def close(self) -> None:
        pass


BOUNDS = Bounds(500, 1 << 20, 0.2)


def reader_for(pipe: Pipeline, stage: Recording, *, commit_interval_s: float = 0.0,
               bounds: Bounds = BOUNDS, gate: InFlight | None = None,
               send_ahead: bool = False) -> RawReader:
    group = stage1_group(pipe.app_id)
    return RawReader(
        stage, [pipe.topics["sensor"]], health=Health(), retry_max_s=0.2,
        commit_interval_s=commit_interval_s, bounds=bounds, gate=gate,
        send_ahead=send_ahead,
        make_consumer=lambda: raw_consumer(pipe.settings, group, None,
                                           fetch_max_bytes=1 << 20,
                                           partition_fetch_bytes=256 << 10))


WAIT_S = 60.0


async def wait_until(check: Any) -> None:
    deadline = time.monotonic() + WAIT_S
    while not check():
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.1)


async def wait_committed(pipe: Pipeline, group: str, ends: dict[tuple[str, int], int]
                         ) -> None:
    deadline = time.monotonic() + WAIT_S
    while (seen := await asyncio.to_thread(committed, pipe, group)) != ends:
        assert time.monotonic() < deadline, f"committed {seen}, end offsets {ends}"
        await asyncio.sleep(0.5)


async def test_nothing_is_committed_before_the_batch_is_delivered(pipe: Pipeline) -> None:
    pipe.produce("sensor", one_per_message(readings(2000, "g")))
    ends = end_offsets(pipe, pipe.topics["sensor"])
    group = stage1_group(pipe.app_id)
    stage = Recording()
    stage.gate.clear()
    stop = asyncio.Event()
    reader = reader_for(pipe, stage)
    task = asyncio.create_task(reader.run(stop))
    try:
        await asyncio.wait_for(stage.holding.wait(), 60)
        await asyncio.sleep(2)  # a batch is in hand, not delivered
        assert await asyncio.to_thread(committed, pipe, group) == {}
        # Killed mid-batch (cancelled: the worker stopping uncleanly): nothing committed.
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert await asyncio.to_thread(committed, pipe, group) == {}
        # The next reader gets every message again, fails one batch once (retried whole),
        # and commits exactly the end offsets once all is delivered.
        again = Recording()
        again.fail_next = 1
        reader = reader_for(pipe, again)
        task = asyncio.create_task(reader.run(stop))
        await wait_until(lambda: len(again.delivered) >= 2000)
        await wait_committed(pipe, group, ends)
        keys = {(m.partition, m.offset) for m in again.delivered}
        assert len(keys) == 2000
        stop.set()
        await asyncio.wait_for(task, 30)
    finally:
        stop.set()
        if not task.done():
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task


async def test_a_commit_refused_after_a_rebalance_is_dropped_and_the_owner_rereads(
        pipe: Pipeline) -> None:
    """Reader A holds a batch while B joins and takes partitions: A's batch still finishes,
    A commits only what it still holds, nothing escapes, and every message reaches a
    stage at least once with every offset committed in the end."""
    messages = one_per_message(readings(3000, "r"))
    pipe.produce("sensor", messages)
    ends = end_offsets(pipe, pipe.topics["sensor"])
    group = stage1_group(pipe.app_id)
    a, b = Recording(), Recording()
    a.gate.clear()
    stop = asyncio.Event()
    tasks = [asyncio.create_task(reader_for(pipe, a).run(stop))]
    try:
        await asyncio.wait_for(a.holding.wait(), 60)
        tasks.append(asyncio.create_task(reader_for(pipe, b).run(stop)))
        await wait_until(lambda: bool(b.assignments))  # the group rebalanced
        a.gate.set()
        await wait_committed(pipe, group, ends)
        both = {(m.partition, m.offset) for m in a.delivered + b.delivered}
        assert len(both) == len(messages)
        assert all(not t.done() for t in tasks)  # nothing escaped either loop
    finally:
        stop.set()
        for t in tasks:
            await asyncio.wait_for(t, 30)


async def test_stage1_reads_nothing_while_stage2_holds_too_many_bytes(pipe: Pipeline) -> None:
    """Over stage 2's in-flight bound the reader pauses (nothing is read or delivered,
    nothing committed, the loop stays alive); once stage 2 releases, every message is
    delivered once and committed."""
    pipe.produce("sensor", one_per_message(readings(600, "h")))
    ends = end_offsets(pipe, pipe.topics["sensor"])
    group = stage1_group(pipe.app_id)
    gate = InFlight(1000)
    gate.take(5000)  # stage 2 holds five times its bound
    stage = Recording()
    stop = asyncio.Event()
    reader = reader_for(pipe, stage, gate=gate)
    task = asyncio.create_task(reader.run(stop))
    try:
        await wait_until(lambda: bool(stage.assignments))
        gated = reader.gated
        await wait_until(lambda: reader.gated >= gated + 10)  # assigned, and waiting
        assert stage.delivered == [] and not task.done()
        assert await asyncio.to_thread(committed, pipe, group) == {}
        gate.release(5000)
        await wait_until(lambda: len(stage.delivered) >= 600)
        await wait_committed(pipe, group, ends)
        assert len({(m.partition, m.offset) for m in stage.delivered}) == 600
    finally:
        stop.set()
        await asyncio.wait_for(task, 30)


@pytest.mark.parametrize("adaptive", [True, False])
async def test_a_lone_message_is_taken_at_once_when_adaptive(pipe: Pipeline,
                                                             adaptive: bool) -> None:
    """Adaptive batches close when the fetcher has nothing more: a message arriving
    alone is delivered well before ``within_s`` (5 s here); otherwise its batch closes only
    when the window ends."""
    stage = Recording()
    stop = asyncio.Event()
    reader = reader_for(pipe, stage, bounds=Bounds(500, 1 << 20, 5.0, adaptive=adaptive))
    task = asyncio.create_task(reader.run(stop))
    try:
        pipe.produce("sensor", one_per_message(readings(1, "warm")))
        await wait_until(lambda: len(stage.delivered) == 1)  # assigned and reading
        delays = []
        for i in range(3):
            sent = time.monotonic()
            pipe.produce("sensor", one_per_message(readings(1, f"lone{i}")))
            await wait_until(lambda n=2 + i: len(stage.delivered) == n)
            delays.append(time.monotonic() - sent)
        if adaptive:
            assert max(delays) < 2.5, delays
        else:
            assert max(delays) > 2.5, delays
    finally:
        stop.set()
        await asyncio.wait_for(task, 30)


# ------------------------------------------------------------------ send ahead
@dataclass
class QueuedBatch:
    """What ``process_ahead`` returns: ``delivered`` is the test's future."""

    delivered: asyncio.Future[None]


class SendingAhead(Recording):
    """A recording stage with ``process_ahead``: each call's delivery is a future the
    test resolves (``deliver_all``: every pending one, and later ones at once);
    ``delivered`` gets a batch's messages only once its delivery succeeded."""

    def __init__(self) -> None:
        super().__init__()
        self.queued: list[tuple[list[InMessage], asyncio.Future[None]]] = []
        self.auto = False

    async def process_ahead(self, batch: Sequence[InMessage]) -> QueuedBatch:
        self.holding.set()
        await self.gate.wait()
        messages = list(batch)
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        future.add_done_callback(lambda f: self._done(f, messages))
        self.queued.append((messages, future))
        if self.auto:
            future.set_result(None)
        return QueuedBatch(future)

    def _done(self, future: asyncio.Future[None], messages: list[InMessage]) -> None:
        if not future.cancelled() and future.exception() is None:
            self.delivered.extend(messages)

    def deliver_all(self) -> None:
        self.auto = True
        for _, future in self.queued:
            if not future.done():
                future.set_result(None)


def keys(messages: Iterable[InMessage]) -> set[tuple[int, int]]:
    return {(m.partition, m.offset) for m in messages}


def retries(cause: str) -> float:
    return REGISTRY.get_sample_value("ioc_stream_batch_retries_total",
                                     {"stage": "stage1", "cause": cause}) or 0.0


async def stopped(task: asyncio.Task[None], stop: asyncio.Event, *stages: SendingAhead
                  ) -> None:
    stop.set()
    for stage in stages:
        stage.deliver_all()
    if not task.done():
        await asyncio.wait_for(task, 30)


def start_ahead(pipe: Pipeline, prefix: str, *, commit_interval_s: float = 0.0
                ) -> tuple[str, SendingAhead, asyncio.Event, asyncio.Task[None]]:
    """2,000 one-event messages, and a send-ahead reader on them: (its group, its stage,
    the stop event, the running task)."""
    pipe.produce("sensor", one_per_message(readings(2000, prefix)))
    stage = SendingAhead()
    stop = asyncio.Event()
    reader = reader_for(pipe, stage, send_ahead=True, commit_interval_s=commit_interval_s)
    return stage1_group(pipe.app_id), stage, stop, asyncio.create_task(reader.run(stop))


async def test_send_ahead_processes_the_next_batch_while_one_is_acknowledged(
        pipe: Pipeline) -> None:
    """Batch 2 is processed while batch 1's delivery is pending, no third batch is taken
    meanwhile (one batch waits at most), nothing is committed before batch 1 is
    delivered, then exactly batch 1's offsets; every end offset once all is delivered."""
    group, stage, stop, task = start_ahead(pipe, "a")
    ends = end_offsets(pipe, pipe.topics["sensor"])
    try:
        await wait_until(lambda: len(stage.queued) >= 2)
        await asyncio.sleep(2)  # the reader waits for batch 1's acknowledgements
        assert len(stage.queued) == 2
        (first, f1), (second, f2) = stage.queued
        assert not f1.done() and not f2.done() and not task.done()
        assert keys(first).isdisjoint(keys(second))
        assert await asyncio.to_thread(committed, pipe, group) == {}
        f1.set_result(None)
        await wait_until(lambda: len(stage.queued) >= 3)
        await wait_committed(pipe, group, next_offsets(first))
        await asyncio.sleep(1)  # batch 2 still pending: nothing of it committed
        assert len(stage.queued) == 3 and not f2.done()
        assert await asyncio.to_thread(committed, pipe, group) == next_offsets(first)
        stage.deliver_all()
        await wait_committed(pipe, group, ends)
        assert len(stage.delivered) == 2000 and len(keys(stage.delivered)) == 2000
        assert sum(len(b) for b, _ in stage.queued) == 2000  # each batch processed once
    finally:
        await stopped(task, stop, stage)


async def test_a_failed_delivery_processes_the_batch_again_and_commits_after_it(
        pipe: Pipeline) -> None:
    """Batch 1's delivery fails: the reader processes batch 1 again through
    ``process_ahead`` (counted as a kafka retry), commits nothing until that second
    delivery succeeded, then batch 1's offsets; every message is delivered."""
    before = retries("kafka")
    group, stage, stop, task = start_ahead(pipe, "f")
    ends = end_offsets(pipe, pipe.topics["sensor"])
    try:
        await wait_until(lambda: len(stage.queued) >= 2)
        (first, f1), (second, _) = stage.queued[:2]
        f1.set_exception(KafkaTimeoutError())
        await wait_until(lambda: len(stage.queued) >= 3)
        again, f3 = stage.queued[2]
        assert [(m.partition, m.offset) for m in again] == \
            [(m.partition, m.offset) for m in first]
        await asyncio.sleep(1.5)  # the retry's delivery is pending: still nothing
        assert len(stage.queued) == 3 and not task.done()
        assert await asyncio.to_thread(committed, pipe, group) == {}
        assert retries("kafka") - before == 1
        f3.set_result(None)
        await wait_committed(pipe, group, next_offsets(first))
        assert keys(first) <= keys(stage.delivered)
        assert keys(second).isdisjoint(keys(stage.delivered))  # still pending
        stage.deliver_all()
        await wait_committed(pipe, group, ends)
        assert len(keys(stage.delivered)) == 2000
        assert [keys(b) for b, _ in stage.queued].count(keys(first)) == 2
    finally:
        await stopped(task, stop, stage)


async def test_a_batch_awaiting_delivery_when_the_worker_is_killed_is_never_committed(
        pipe: Pipeline) -> None:
    """Cancelled while batch 2's delivery is pending (batch 1 delivered and committed):
    batch 2 is not committed, even once its delivery completes afterwards; the next
    reader re-reads from batch 2 on and commits every end offset."""
    group, stage, stop, task = start_ahead(pipe, "c")
    ends = end_offsets(pipe, pipe.topics["sensor"])
    try:
        await wait_until(lambda: len(stage.queued) >= 2)
        stage.queued[0][1].set_result(None)
        await wait_until(lambda: len(stage.queued) >= 3)
        await wait_committed(pipe, group, next_offsets(stage.queued[0][0]))
        first, second, third = (b for b, _ in stage.queued[:3])
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        stage.deliver_all()  # acknowledged after the worker is gone
        await asyncio.sleep(1)
        assert await asyncio.to_thread(committed, pipe, group) == next_offsets(first)
        again = SendingAhead()
        again.auto = True
        task = asyncio.create_task(reader_for(pipe, again, send_ahead=True).run(stop))
        await wait_committed(pipe, group, ends)
        got = keys(again.delivered)
        assert keys(second) | keys(third) <= got and got.isdisjoint(keys(first))
        assert len(got | keys(first)) == 2000
    finally:
        await stopped(task, stop, stage)


async def test_a_clean_stop_settles_the_waiting_batch_before_the_final_commit(
        pipe: Pipeline) -> None:
    """Stopped while batch 1's delivery is pending and batch 2 queued: once both are
    delivered, the reader commits both before it returns, and takes nothing more."""
    group, stage, stop, task = start_ahead(pipe, "s")
    try:
        await wait_until(lambda: len(stage.queued) >= 2)
        stop.set()
        await asyncio.sleep(0.5)
        assert not task.done()  # still waiting for the acknowledgements
        (first, f1), (second, f2) = stage.queued
        f1.set_result(None)
        f2.set_result(None)
        await asyncio.wait_for(task, 30)
        assert len(stage.queued) == 2
        assert await asyncio.to_thread(committed, pipe, group) == \
            next_offsets(first + second)
    finally:
        await stopped(task, stop, stage)


async def test_a_failed_delivery_at_a_clean_stop_still_commits_what_was_delivered(
        pipe: Pipeline) -> None:
    """Batches 1-3 delivered (2 and 3 held back by the commit interval), batch 4's
    delivery fails after the stop: the final commit still names batches 1-3, and only
    batch 4 is left for the next owner."""
    group, stage, stop, task = start_ahead(pipe, "f", commit_interval_s=60)
    try:
        for n in range(3):
            await wait_until(lambda n=n: len(stage.queued) >= n + 2)
            if n == 2:
                stop.set()  # the reader settles batch 3 and leaves its loop
            stage.queued[n][1].set_result(None)
        stage.queued[3][1].set_exception(KafkaTimeoutError())
        await asyncio.wait_for(task, 30)
        assert len(stage.queued) == 4
        delivered = [m for batch, _ in stage.queued[:3] for m in batch]
        assert await asyncio.to_thread(committed, pipe, group) == next_offsets(delivered)
    finally:
        await stopped(task, stop, stage)
