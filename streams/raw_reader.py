"""Stage 1's reader: raw topics in ``getmany`` batches, offsets committed after delivery.

faust hands a stream its messages one at a time (fetcher, conductor, channel, stream
iteration: about 100 µs of worker CPU per message, py-spy), which is nothing next to a
1,000-record enriched message but is the whole budget of a one-event raw message. So
stage 1 does not read through faust: :class:`RawReader` owns an ``AIOKafkaConsumer`` in
a group of its own (``<app_id>-stage1``, :func:`ioccore.settings.stage1_group`; faust's
group speaks faust's assignor protocol and must not be shared) and takes what the
fetcher has buffered, a batch at a time. faust still runs stage 2, the producer, pages
and timers.

The rules it keeps (docs/architecture.md, "Stage 1 reader"):

- A batch closes at ``max_messages`` messages, ``max_bytes`` of values (one message can
  hold 1,000 events) or ``within_s`` seconds, and, when ``adaptive`` (the default), as
  soon as the fetcher has nothing more buffered: a light input is taken as it comes
  (no reading waits ``within_s`` for company), a backed-up one fills the batch, since
  the fetcher buffers the next responses while a batch is processed. It goes through
  :func:`streams.retry.run_batch`, which returns only once its enriched and dead-letter
  messages are delivered (``acks=all``); only then are its offsets (last + 1 per
  partition) *eligible* for a commit, which happens at most every
  ``commit_interval_s`` and once more on a clean stop.
- Commits name only partitions still assigned and never move an offset back below one
  this reader committed since the partition was (re)assigned. A commit refused because
  the group moved on (rebalance, new generation, unknown member) is logged and dropped:
  the new owner re-reads from the last committed offset (at-least-once; stage 2 stores
  each ``(source_id, event_id)`` once).
- Nothing escapes :meth:`RawReader.run` but cancellation: a failure closes the consumer
  (offsets delivered and not yet committed are dropped, so the next consumer re-reads
  from the committed offset and nothing fetched is skipped), backs off and starts a new
  one. A cancelled batch is never committed.
- The rebalance listener only records partitions and calls the stage's
  ``on_assign``/``on_revoke`` (no I/O: the Stage contract).
- Memory: the fetcher buffers at most about ``fetch_max_bytes`` (per-partition requests
  of ``max_partition_fetch_bytes``), plus the batch in hand. With a ``gate``
  (:class:`streams.inflight.InFlight`), the reader pauses its partitions before a batch
  while stage 2 holds more than its in-flight bound, and resumes once it committed.
- Send ahead (``send_ahead``, a stage with ``process_ahead``: stage 1): the batch's
  messages are queued in the producer and the next batch is taken and processed while
  the broker acknowledges them; before that next batch is settled, this one's delivery is
  awaited, and only then are its offsets eligible for a commit. At most one batch waits
  for its acknowledgements. A failed delivery processes that batch again (its offsets
  are below the per-partition mark, so it is not its own duplicate) until it is
  delivered; the batch after it may then reach Kafka first, which stage 2's any-order
  exactness absorbs. On a stop the waiting batch is settled before the final commit, or
  left to the next owner.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence, Set
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

from aiokafka import AIOKafkaConsumer, ConsumerRebalanceListener
from aiokafka.errors import (
    CommitFailedError,
    IllegalGenerationError,
    IllegalStateError,
    RebalanceInProgressError,
    UnknownMemberIdError,
)
from aiokafka.structs import TopicPartition as KafkaPartition

from ioccore import metrics
from ioccore.settings import Settings
from streams.health import Health
from streams.inflight import InFlight
from streams.retry import backoff_s, classify, run_batch
from streams.stage import Stage, TopicPartition
from streams.stage1 import InMessage

log = logging.getLogger(__name__)

REFUSED_AFTER_REBALANCE = (CommitFailedError, IllegalGenerationError,
                           RebalanceInProgressError, UnknownMemberIdError, IllegalStateError)
"""The group moved on: these partitions' offsets are the new owner's to commit."""
LAG_EVERY_S = 5.0
TOPICS_REFRESH_S = 30.0
"""How often the consumer refreshes metadata: a new department topic is read within it."""
_LOG_EVERY_S = 30.0


class Queued(Protocol):
    """What ``process_ahead`` returns: its ``delivered`` completes once Kafka has it all."""

    @property
    def delivered(self) -> Awaitable[None] | None: ...


@runtime_checkable
class SendsAhead(Protocol):
    """A stage that can return once its messages are queued (``streams.stage1``)."""

    name: str

    async def process_ahead(self, batch: Sequence[InMessage]) -> Queued: ...


class _Ahead:
    """A stage seen through ``process_ahead``, so :func:`run_batch` retries the queueing
    as it retries processing; :attr:`delivered` is the last call's delivery."""

    def __init__(self, stage: SendsAhead) -> None:
        self.name = stage.name
        self._stage = stage
        self.delivered: Awaitable[None] | None = None

    async def process(self, batch: Sequence[InMessage]) -> Queued:
        out = await self._stage.process_ahead(batch)
        self.delivered = out.delivered
        return out

    def on_assign(self, partitions: Set[TopicPartition]) -> None:
        """The reader tells the stage itself."""

    def on_revoke(self, partitions: Set[TopicPartition]) -> None:
        """The reader tells the stage itself."""

    async def close(self) -> None:
        """The app closes the stage itself."""


@dataclass(slots=True)
class _Sent:
    """A batch whose messages are queued, awaiting the broker's acknowledgements."""

    batch: list[InMessage]
    offsets: dict[TopicPartition, int]
    delivered: Awaitable[None]


def _retrieved(future: Any) -> None:
    """A dropped delivery's outcome, read so asyncio does not log it as never retrieved."""
    if not future.cancelled():
        future.exception()


@dataclass(frozen=True, slots=True)
class Bounds:
    """When a batch closes: whichever of the three comes first."""

    max_messages: int
    max_bytes: int
    within_s: float
    adaptive: bool = True
    """Close as soon as nothing more is buffered (after the first record)."""


def next_offsets(messages: Sequence[InMessage]) -> dict[TopicPartition, int]:
    """Per partition, the offset after the last message of ``messages``."""
    out: dict[TopicPartition, int] = {}
    for m in messages:
        tp = (m.topic, m.partition)
        if m.offset + 1 > out.get(tp, -1):
            out[tp] = m.offset + 1
    return out


def commit_plan(pending: Mapping[TopicPartition, int], assigned: Set[TopicPartition],
                committed: Mapping[TopicPartition, int]) -> dict[TopicPartition, int]:
    """The offsets to commit now: delivered, still assigned, ahead of what was committed."""
    return {tp: off for tp, off in pending.items()
            if tp in assigned and off > committed.get(tp, -1)}


def topics_pattern(names: Sequence[str], department_regex: str | None) -> str:
    """One anchored pattern for the fixed raw topics and, when given, every department
    topic (an anchored regex), so that a department's new topics are read without a
    restart (the consumer refreshes its metadata every ``TOPICS_REFRESH_S``)."""
    alternatives = [re.escape(n) for n in names]
    if department_regex:
        alternatives.append(department_regex.removeprefix("^").removesuffix("$"))
    return "^(?:" + "|".join(alternatives) + ")$"


def raw_consumer(settings: Settings, group: str, instance_id: str | None,
                 *, fetch_max_bytes: int, partition_fetch_bytes: int) -> AIOKafkaConsumer:
    """The reader's consumer: no auto-commit, static membership when ``instance_id``."""
    stream = settings.stream
    return AIOKafkaConsumer(
        bootstrap_servers=settings.kafka.bootstrap_servers,
        client_id=f"{settings.kafka.client_id}-stage1", group_id=group,
        group_instance_id=instance_id, enable_auto_commit=False,
        auto_offset_reset="earliest",
        session_timeout_ms=int(stream.session_timeout_s * 1000),
        heartbeat_interval_ms=int(stream.heartbeat_interval_s * 1000),
        rebalance_timeout_ms=int(stream.rebalance_timeout_s * 1000),
        fetch_max_bytes=fetch_max_bytes, max_partition_fetch_bytes=partition_fetch_bytes,
        metadata_max_age_ms=int(TOPICS_REFRESH_S * 1000),
        **settings.kafka.client_options())


class _Listener(ConsumerRebalanceListener):  # type: ignore[misc]  # untyped base
    """Called inside the rebalance: records partitions, never blocks."""

    def __init__(self, reader: RawReader) -> None:
        self._reader = reader

    def on_partitions_revoked(self, revoked: Any) -> None:
        self._reader.revoked({(tp.topic, tp.partition) for tp in revoked})

    def on_partitions_assigned(self, assigned: Any) -> None:
        self._reader.assigned({(tp.topic, tp.partition) for tp in assigned})


class RawReader:
    """Reads the raw topics for one stage in batches; see the module docstring."""

    def __init__(self, stage: Stage[Sequence[InMessage]], topics: Sequence[str] | str, *,
                 make_consumer: Callable[[], AIOKafkaConsumer], bounds: Bounds,
                 health: Health, retry_max_s: float = 2.0,
                 commit_interval_s: float = 1.0, gate: InFlight | None = None,
                 send_ahead: bool = False) -> None:
        """``send_ahead``: take the next batch while this one's deliveries are
        acknowledged (the module docstring; the stage must have ``process_ahead``)."""
        self._stage = stage
        self._ahead = _Ahead(stage) if send_ahead and isinstance(stage, SendsAhead) else None
        self._sent: _Sent | None = None
        """The batch awaiting its acknowledgements (send ahead)."""
        self._topics = topics
        """Names, or one pattern (:func:`topics_pattern`)."""
        self._make_consumer = make_consumer
        self._bounds = bounds
        self._health = health
        self._retry_max_s = retry_max_s
        self._commit_interval_s = commit_interval_s
        self._consumer: AIOKafkaConsumer | None = None
        self._assigned: set[TopicPartition] = set()
        self._pending: dict[TopicPartition, int] = {}
        """Delivered and not yet committed: offset after the last delivered message."""
        self._committed: dict[TopicPartition, int] = {}
        self._last_commit = 0.0
        self._last_lag = 0.0
        self._logged_at = 0.0
        self._kafka_down = False
        self._stopped = asyncio.Event()
        self._gate = gate
        self.gated = 0
        """Times the reader waited for stage 2 to commit (for tests and logs)."""
        phase = metrics.STAGE_PHASE_SECONDS
        self._observe_read_lag = phase.labels(stage.name, "read_lag").observe
        self._observe_wait = phase.labels(stage.name, "wait").observe
        self._observe_fill = phase.labels(stage.name, "fill").observe
        self._observe_process = phase.labels(stage.name, "process").observe
        self._observe_deliver = phase.labels(stage.name, "deliver").observe
        self._observe_messages = metrics.STAGE_BATCH_MESSAGES.labels(stage.name).observe
        self.batches = 0
        """Batches delivered (for tests and logs)."""
        metrics.PARTITIONS_ASSIGNED.labels(stage.name).set(0)

    # ------------------------------------------------------------ rebalance (no I/O)
    def assigned(self, partitions: Set[TopicPartition]) -> None:
        self._assigned |= partitions
        if self._consumer is not None and self._gate is not None and self._gate.over():
            # stage 2 is full: not even a first batch from these (pause is local state)
            self._consumer.pause(*(KafkaPartition(*tp) for tp in partitions))
        metrics.PARTITIONS_ASSIGNED.labels(self._stage.name).set(len(self._assigned))
        self._stage.on_assign(partitions)

    def revoked(self, partitions: Set[TopicPartition]) -> None:
        self._assigned -= partitions
        for tp in partitions:
            self._pending.pop(tp, None)
            self._committed.pop(tp, None)
            with contextlib.suppress(KeyError):  # never reported for it yet
                metrics.CONSUMER_LAG.remove(tp[0], str(tp[1]))
        metrics.PARTITIONS_ASSIGNED.labels(self._stage.name).set(len(self._assigned))
        self._stage.on_revoke(partitions)

    # ------------------------------------------------------------ the loop
    async def run(self, stop: asyncio.Event) -> None:
        """Read, process, commit until ``stop`` is set; only cancellation escapes."""
        failures = 0
        try:
            while not stop.is_set():
                try:
                    consumer = await self._started()
                    await self._gate_partitions(consumer)
                    batch, offsets = await self._take(consumer, stop)
                    if batch:
                        began = time.perf_counter()
                        await run_batch(self._ahead or self._stage, batch,
                                        messages=len(batch), health=self._health,
                                        retry_max_s=self._retry_max_s)
                        self._observe_process(time.perf_counter() - began)
                        self._observe_messages(len(batch))
                        queued = self._ahead.delivered if self._ahead is not None else None
                        sent = self._sent
                        self._sent = None if queued is None else _Sent(batch, offsets, queued)
                        if sent is not None:  # the batch before: acknowledged meanwhile?
                            await self._settle(sent)
                        if queued is None:
                            self._hold(offsets)
                            self.batches += 1
                    elif self._sent is not None:  # nothing new: settle it now
                        sent, self._sent = self._sent, None
                        await self._settle(sent)
                    await self._commit(consumer)
                    self._report_lag(consumer)
                    failures = 0
                    if self._kafka_down:
                        self._kafka_down = False
                        self._health.ok("kafka")
                except asyncio.CancelledError:
                    raise
                except Exception as exc:
                    failures += 1
                    self._failed(exc, failures)
                    self._drop_sent()
                    await self._close()
                    await asyncio.sleep(backoff_s(failures - 1, self._retry_max_s))
            if self._consumer is not None:
                try:
                    if self._sent is not None:
                        with contextlib.suppress(Exception):  # left to the next owner
                            await asyncio.wait_for(self._settle(self._sent, retry=False),
                                                   10.0)
                    await self._commit(self._consumer, force=True)
                except Exception as exc:  # the new owner re-reads: at-least-once
                    log.info("stage 1: final commit failed (%s)", type(exc).__name__)
        finally:
            self._drop_sent()
            await self._close()
            self._stopped.set()

    async def wait_stopped(self) -> None:
        """Return once :meth:`run` has closed its consumer (bound it with a timeout)."""
        await self._stopped.wait()

    async def _started(self) -> AIOKafkaConsumer:
        if self._consumer is None:
            consumer = self._make_consumer()
            self._consumer = consumer
            if isinstance(self._topics, str):
                consumer.subscribe(pattern=self._topics, listener=_Listener(self))
            else:
                consumer.subscribe(list(self._topics), listener=_Listener(self))
            await consumer.start()
        return self._consumer

    async def _gate_partitions(self, consumer: AIOKafkaConsumer) -> None:
        """While stage 2 holds more than its in-flight bound, pause the assigned
        partitions (the fetcher stops reading ahead) and wait up to ``within_s`` for it to
        commit; resume them once it holds less. Reads nothing itself: :meth:`_take` still
        runs, so the poll stays alive, nothing comes from a paused partition, and a
        partition assigned meanwhile is read and delivered, never dropped."""
        gate = self._gate
        if gate is None:
            return
        if gate.over():
            consumer.pause(*(KafkaPartition(*tp) for tp in self._assigned))  # idempotent
            self.gated += 1
            await gate.wait_room(self._bounds.within_s)
            if gate.over():
                return
        paused = consumer.paused()
        if paused:
            consumer.resume(*paused)

    async def _take(self, consumer: AIOKafkaConsumer, stop: asyncio.Event
                    ) -> tuple[list[InMessage], dict[TopicPartition, int]]:
        """One batch (possibly empty after ``within_s``; see :class:`Bounds`) and, per
        partition, the offset after its last message (what :func:`next_offsets` gives,
        taken from ``getmany``'s per-partition lists instead of a second pass)."""
        b = self._bounds
        loop = asyncio.get_running_loop()
        started = loop.time()
        deadline = started + b.within_s
        first_at = 0.0
        oldest_ms = 0  # the earliest producer timestamp in the batch
        batch: list[InMessage] = []
        offsets: dict[TopicPartition, int] = {}
        size = 0
        append = batch.append
        while not stop.is_set():
            remaining = 0.0 if batch and b.adaptive else deadline - loop.time()
            try:
                got = await consumer.getmany(timeout_ms=max(0, int(remaining * 1000)),
                                             max_records=b.max_messages - len(batch))
            except Exception:
                if batch:  # what was fetched is processed; the error comes back next time
                    return batch, offsets
                raise
            if got and not batch:
                first_at = loop.time()
            for tp, records in got.items():
                if not records:
                    continue
                topic, partition = tp.topic, tp.partition
                ts = records[0].timestamp
                if ts is not None and ts > 0 and (not oldest_ms or ts < oldest_ms):
                    oldest_ms = ts
                for r in records:
                    value = r.value
                    append(InMessage(topic, partition, r.offset, r.key, value))
                    if value is not None:
                        size += len(value)
                last = records[-1].offset + 1  # a partition's records come in offset order
                if last > offsets.get((topic, partition), -1):
                    offsets[(topic, partition)] = last
            if (len(batch) >= b.max_messages or size >= b.max_bytes
                    or loop.time() >= deadline or (b.adaptive and batch and not got)):
                break
        if batch:
            closed = loop.time()
            self._observe_wait(first_at - started)
            self._observe_fill(closed - first_at)
            if oldest_ms:
                self._observe_read_lag(max(0.0, time.time() - oldest_ms / 1000))
        return batch, offsets

    async def _settle(self, sent: _Sent, *, retry: bool = True) -> None:
        """Await ``sent``'s acknowledgements, then hold its offsets for a commit; a failed
        delivery processes the batch again (``retry``) until it is delivered."""
        began = time.perf_counter()
        delivered = sent.delivered
        failures = 0
        while True:
            try:  # shielded: a stop or a cancel must not cancel the producer's futures
                await asyncio.shield(delivered)
                break
            except asyncio.CancelledError:
                if isinstance(delivered, asyncio.Future):
                    delivered.add_done_callback(_retrieved)
                raise
            except Exception as exc:
                if not retry or self._ahead is None:
                    raise
                failures += 1
                cause = classify(exc)
                metrics.BATCH_RETRIES.labels(self._stage.name, cause).inc()
                if cause == "kafka":
                    self._health.failed("kafka", exc)
                log.warning("stage 1: delivery of a batch of %d messages failed (%s, attempt "
                            "%d); processing it again", len(sent.batch),
                            type(exc).__name__, failures)
                await asyncio.sleep(backoff_s(failures - 1, self._retry_max_s))
                await run_batch(self._ahead, sent.batch, messages=len(sent.batch),
                                health=self._health, retry_max_s=self._retry_max_s)
                if self._ahead.delivered is None:
                    break
                delivered = self._ahead.delivered
        self._observe_deliver(time.perf_counter() - began)
        self._hold(sent.offsets)
        self.batches += 1

    def _drop_sent(self) -> None:
        """Forget the batch awaiting acknowledgements: its offsets are never committed
        here, so the next consumer (or owner) reads it again."""
        sent, self._sent = self._sent, None
        if sent is not None and isinstance(sent.delivered, asyncio.Future):
            sent.delivered.add_done_callback(_retrieved)

    def _hold(self, offsets: Mapping[TopicPartition, int]) -> None:
        """Offsets delivered and still assigned become (or stay) due for a commit."""
        for tp, offset in offsets.items():
            if tp in self._assigned and offset > self._pending.get(tp, -1):
                self._pending[tp] = offset

    async def _commit(self, consumer: AIOKafkaConsumer, *, force: bool = False) -> None:
        now = time.monotonic()
        if not self._pending or (not force and now - self._last_commit
                                 < self._commit_interval_s):
            return
        plan = commit_plan(self._pending, self._assigned, self._committed)
        self._pending.clear()
        self._last_commit = now
        if not plan:
            return
        try:
            await consumer.commit({KafkaPartition(t, p): off for (t, p), off in plan.items()})
        except REFUSED_AFTER_REBALANCE as exc:
            log.info("stage 1: commit of %d partitions refused after a rebalance (%s); the "
                     "new owner re-reads them", len(plan), type(exc).__name__)
            return
        except Exception:
            self._hold(plan)  # delivered all the same: try again next time
            raise
        for tp, off in plan.items():
            if tp in self._assigned:
                self._committed[tp] = off

    def _report_lag(self, consumer: AIOKafkaConsumer) -> None:
        """Messages behind each assigned partition's high watermark (no I/O: the fetcher
        keeps the high watermark of its last response)."""
        now = time.monotonic()
        if now - self._last_lag < LAG_EVERY_S:
            return
        self._last_lag = now
        for tp in self._assigned:
            done = max(self._committed.get(tp, -1), self._pending.get(tp, -1))
            high = consumer.highwater(KafkaPartition(*tp))
            if done >= 0 and high is not None:
                metrics.CONSUMER_LAG.labels(tp[0], str(tp[1])).set(max(0, high - done))

    def _failed(self, exc: Exception, failures: int) -> None:
        """Log (bounded) and tell :class:`Health`."""
        cause = classify(exc)
        metrics.BATCH_RETRIES.labels(self._stage.name, cause).inc()
        if cause == "kafka":
            self._kafka_down = True
            self._health.failed("kafka", exc)
        now = time.monotonic()
        if now - self._logged_at >= _LOG_EVERY_S:
            self._logged_at = now
            log.warning("stage 1 reader: %s (attempt %d); restarting the consumer",
                        type(exc).__name__, failures, exc_info=cause == "unexpected")

    async def _close(self) -> None:
        """Close the consumer (no commit: a batch not delivered is re-read)."""
        consumer, self._consumer = self._consumer, None
        if self._assigned:
            self.revoked(set(self._assigned))
        if consumer is not None:
            try:
                await asyncio.wait_for(consumer.stop(), 10.0)
            except Exception as exc:
                log.info("stage 1: consumer stop failed (%s)", type(exc).__name__)
