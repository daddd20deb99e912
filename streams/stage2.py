"""Stage 2: make enriched events durable, fold them into windows, evaluate alert rules.

Runs on ``ioc.enriched.v1``, partitioned by commune (stage 1 puts each commune on the
partition its code hashes to, ``streams.enriched_partitions``): one commune's windows and
alerts live in exactly one worker at a time. The message key is not read. ``process``
(the :class:`~streams.stage.Stage` contract) treats a batch as one unit: raw rows,
rollups, source sightings, alert transitions, alert rows and outbox rows commit in ONE
transaction, or none do and the runner retries the batch. Only after the commit does
anything in memory move (the watermark; the evaluator is rebuilt from the database if
the transaction failed), and only then are refused rows dead-lettered, metrics counted
and transitions published.

- An undecodable message is logged and skipped (stage 1 wrote it, so this is a bug, and
  a bug must not stall the partition).
- Rows the database refuses are isolated by the sink and dead-lettered
  (``storage_rejected``) with the enriched message's partition and offset; they never
  reach the evaluator.
- Window totals come back from the database after the write, so what rules see is
  exactly what Grafana sees.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Sequence, Set
from dataclasses import dataclass
from datetime import datetime

import msgspec
from psycopg_pool import AsyncConnectionPool

from ioccore import metrics
from ioccore.db import connections
from ioccore.events.record import FEEDS, Record, decode_records
from ioccore.events.source_progress import SourceProgress
from streams.alerting import PartitionAlerts
from streams.evaluation import Planned
from streams.sinks.timescale import TimescaleSink, WriteResult
from streams.stage import TopicPartition

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Enriched:
    """One message of ``ioc.enriched.v1`` as stage 2 sees it."""

    topic: str
    partition: int
    offset: int
    value: bytes


@dataclass(frozen=True, slots=True)
class Refused:
    """A record the database refused, with where it came from."""

    record: Record
    reason: str
    origin: Enriched


RejectHook = Callable[[list[Refused]], Awaitable[None]]
"""Sends refused records to the dead-letter topic (awaits the delivery)."""

_SAMPLE = 64
"""Latency observations per feed per batch: enough for the histogram at tens of batches a
second (500 cost about 4 µs each, 1-3 ms of the event loop a batch, in the alert path)."""


@dataclass(slots=True)
class Stage2Result:
    records: int
    write: WriteResult
    watermark: float


class Stage2:
    """Decode, mark late events, write + evaluate in one transaction, then hand on."""

    name = "stage2"

    def __init__(self, pool: AsyncConnectionPool, *, allowed_lateness_s: float,
                 alerts: PartitionAlerts | None = None,
                 on_rejected: RejectHook | None = None,
                 max_rows: int = 200_000, lanes: int = 1) -> None:
        self._pool = pool
        self._lanes = max(1, lanes)
        self._sink = TimescaleSink()
        self._max_rows = max_rows
        self._on_rejected = on_rejected
        self._lateness = allowed_lateness_s
        self._alerts = alerts
        self._opened = False
        self._closing = False
        self._alerts_lock = asyncio.Lock()
        """One evaluation at a time: a lane's or the idle tick's (held from plan to the
        evaluator's commit, so evaluations follow the order of their commits)."""
        self._writing = 0
        self._quiet = asyncio.Event()
        """Set while no lane or tick holds a transaction (``close`` waits for it)."""
        self._quiet.set()
        self.progress = SourceProgress(allowed_lateness_s)
        """Per-source event-time progress: the ``late`` marker (ioccore.events.source_progress)."""
        self.watermark = 0.0
        """Largest occurred_at committed (epoch seconds): event time, never wall time."""

    async def process(self, batch: Sequence[Enriched]) -> Stage2Result:
        """Write ``batch`` durably: one transaction per lane it spans, run together.

        A lane is the partitions ``p % lanes`` (``stream.stage2_lanes``). Partitions hold
        whole communes, so the lanes' transactions touch disjoint windows, sources and
        alert state: while one lane's statements run in PostgreSQL the other's rows are
        encoded and sent, and a lane evaluates and commits under the alert lock, one at
        a time. Every message is written whole by one transaction. The batch returns (and
        is acknowledged) only when every lane committed; if one failed, the error goes to
        the caller after the others finished, and the retried batch finds the committed
        lane's events again as duplicates, adding nothing (the sink is idempotent).
        """
        if self._closing:  # the worker stops: wait to be cancelled, unacknowledged (raising
            await asyncio.Future()  # here would make faust restart the agent mid-shutdown)
        if not self._opened:
            await self._pool.open()
            self._opened = True
        lanes: dict[int, list[Enriched]] = {}
        for msg in batch:
            lanes.setdefault(msg.partition % self._lanes, []).append(msg)
        if len(lanes) <= 1:
            return await self._process_lane(batch)
        outcomes = await asyncio.gather(*(self._process_lane(part) for part in lanes.values()),
                                        return_exceptions=True)
        done: list[Stage2Result] = []
        for outcome in outcomes:
            if isinstance(outcome, BaseException):
                raise outcome
            done.append(outcome)
        write = WriteResult()
        for one in done:
            write.merge(one.write)
        return Stage2Result(sum(one.records for one in done), write, self.watermark)

    async def _process_lane(self, batch: Sequence[Enriched]) -> Stage2Result:
        began = time.perf_counter()
        records, origins = self._decode(batch)
        phases = _Phases(began)
        phases.mark("decode")
        if not records:
            return Stage2Result(0, WriteResult(), self.watermark)
        sources = [r.source_id for r in records]
        times = [r.occurred_at.timestamp() for r in records]
        late = self.progress.mark(sources, times)  # pure: a retry marks the same records
        watermark = max(self.watermark, max(times))
        evaluated: Planned | None = None
        locked = False
        self._writing += 1
        self._quiet.clear()
        try:
            async with self._pool.connection() as conn, conn.transaction():
                phases.mark("connect")
                result = await self._sink.write(conn, records, late,
                                                max_rows=self._max_rows)
                phases.mark("write")
                if self._alerts is not None:
                    await self._alerts_lock.acquire()  # held until the evaluator commits
                    locked = True
                    refused = {i for i, _ in result.rejected}
                    stored = [r for i, r in enumerate(records) if i not in refused]
                    evaluated = await self._alerts.plan(conn, result.windows, stored,
                                                        watermark)
                phases.mark("plan")
            phases.mark("commit")
            if self._alerts is not None and evaluated is not None:
                self._alerts.commit(evaluated)  # committed: the evaluator's plan is final
        except BaseException:
            if locked and self._alerts is not None:
                self._alerts.discard()  # it advanced inside the failed transaction
            raise
        finally:
            if locked:
                self._alerts_lock.release()
            self._done_writing()
        # committed: only now does anything in memory move
        self.progress.advance(sources, times)
        self.watermark = max(self.watermark, watermark)
        metrics.WATERMARK.set(self.watermark)
        if result.rejected:
            log.error("stage 2: %d records refused by the database, dead-lettered: %s",
                      len(result.rejected), result.rejected[0][1])
            if self._on_rejected is not None:
                await self._on_rejected([Refused(records[i], reason, batch[origins[i]])
                                         for i, reason in result.rejected])
        self._observe(records, result, time.time())
        if self._alerts is not None and evaluated is not None:
            await self._alerts.publish(evaluated)
        phases.mark("publish")
        phases.observe(len(records))
        return Stage2Result(len(records), result, self.watermark)

    async def tick(self, wall_now: datetime | None = None) -> int:
        """Evaluate partition rules without new data (a source gone silent in a quiet
        partition, wall-clock timers); returns transitions stored. Never raises: a failed
        tick commits nothing, discards the evaluator, and the next tick tries again."""
        if self._alerts is None or not self._opened or self._closing:
            return 0
        alerts = self._alerts
        locked = False  # the connection first, then the lock: the lanes' order
        self._writing += 1
        self._quiet.clear()
        try:
            async with self._pool.connection() as conn:
                async with conn.transaction():
                    await self._alerts_lock.acquire()
                    locked = True
                    evaluated = await alerts.plan(conn, [], [], self.watermark, wall_now)
                alerts.commit(evaluated)
        except BaseException as exc:
            if locked:
                alerts.discard()
            if not isinstance(exc, Exception):
                raise
            log.warning("stage 2: idle evaluation failed (%s); next tick retries",
                        type(exc).__name__)
            return 0
        finally:
            if locked:
                self._alerts_lock.release()
            self._done_writing()
        try:
            await self._alerts.publish(evaluated)
        except Exception as exc:
            log.warning("stage 2: publishing idle transitions failed (%s)", type(exc).__name__)
        return len(evaluated.stored)

    def on_assign(self, partitions: Set[TopicPartition]) -> None:
        """Nothing to prepare: a commune's alert state is loaded when it is first seen."""

    def on_revoke(self, partitions: Set[TopicPartition]) -> None:
        if self._alerts is not None:
            self._alerts.forget()  # reload state from the database when communes return

    async def close(self) -> None:
        """Let the transactions in flight finish, then close the pool; a batch after this
        waits for the worker to cancel it (it is never acknowledged)."""
        self._closing = True
        await self._quiet.wait()
        await self._pool.close()

    def _done_writing(self) -> None:
        self._writing -= 1
        if not self._writing:
            self._quiet.set()

    @staticmethod
    def _decode(batch: Sequence[Enriched]) -> tuple[list[Record], list[int]]:
        records: list[Record] = []
        origins: list[int] = []
        for n, msg in enumerate(batch):
            try:
                decoded = decode_records(msg.value)
            except (msgspec.DecodeError, msgspec.ValidationError) as exc:
                log.error("stage 2: undecodable enriched message %s/%d@%d skipped: %s",
                          msg.topic, msg.partition, msg.offset, exc)
                continue
            records.extend(decoded)
            origins.extend([n] * len(decoded))
        return records, origins

    def _observe(self, records: list[Record], result: WriteResult, committed: float) -> None:
        for feed, n in result.inserted.items():
            metrics.SINK_ROWS_INSERTED.labels(feed).inc(n)
        for feed, n in result.duplicates.items():
            metrics.SINK_ROWS_DUPLICATE.labels(feed).inc(n)
        for feed, n in result.late.items():
            if n:
                metrics.EVENTS_LATE.labels(feed).inc(n)
        metrics.ROLLUP_UPSERTS.inc(len(result.windows))
        seen: dict[str, int] = {}
        observe: dict[str, Callable[[float], None]] = {}
        for rec in records:
            n = seen.get(rec.feed, 0)
            if n < _SAMPLE:
                seen[rec.feed] = n + 1
                if n == 0:
                    observe[rec.feed] = metrics.LATENCY_STORED.labels(rec.feed).observe
                observe[rec.feed](max(0.0, committed - rec.occurred_at.timestamp()))
            elif len(seen) == len(FEEDS) and all(v >= _SAMPLE for v in seen.values()):
                break


class _Phases:
    """Where one batch's time went (``ioc_stream_phase_seconds{stage="stage2"}``): each
    :meth:`mark` closes the phase named, from the previous mark."""

    __slots__ = ("_last", "_spans")

    def __init__(self, began: float) -> None:
        self._last = began
        self._spans: list[tuple[str, float]] = []

    def mark(self, phase: str) -> None:
        now = time.perf_counter()
        self._spans.append((phase, now - self._last))
        self._last = now

    def observe(self, records: int) -> None:
        for phase, seconds in self._spans:
            _PHASE[phase](seconds)
        if log.isEnabledFor(logging.DEBUG):
            log.debug("stage 2 batch: %d records, %s", records,
                      ", ".join(f"{p} {s * 1000:.1f} ms" for p, s in self._spans))


_PHASE = {phase: metrics.STAGE_PHASE_SECONDS.labels("stage2", phase).observe
          for phase in ("decode", "connect", "write", "plan", "commit", "publish")}


def make_pool(conninfo: str, *, min_size: int = 1, max_size: int = 2, timeout_s: float = 5.0,
              reconnect_timeout_s: float = 4.0, check_idle_s: float = 0.0
              ) -> AsyncConnectionPool:
    """Stage 2's connections (sizes from ``database.pool_min/max``): checked before a
    batch when idle ``check_idle_s`` or longer (``database.check_idle_s``; 0: before
    every batch), so a connection a PostgreSQL restart killed is replaced instead of
    failing the batch (within ``check_idle_s`` of the last batch the batch fails once
    and is retried on a new connection); a failed reconnect cycle gives up after
    ``reconnect_timeout_s`` and the next batch starts a new one, which caps the wait
    after PostgreSQL returns (psycopg_pool's own back-off is uncapped)."""
    return connections.pool(conninfo, purpose="stage2", min_size=min_size, max_size=max_size,
                            timeout_s=timeout_s, reconnect_timeout_s=reconnect_timeout_s,
                            check=True, check_idle_s=check_idle_s,
                            configure=TimescaleSink.prepare)
