"""The TimescaleDB sink: one transaction per batch, raw rows and rollups together.

Contract:
- ``write(batch)`` returns only after the rows are committed; the caller acknowledges
  the Kafka messages afterwards, so offsets never run ahead of durable rows.
- It is idempotent: writing the same records twice inserts nothing the second time and
  leaves every rollup unchanged.
- Transient database errors (connection lost, serialisation failure, deadlock) are
  retried with exponential backoff, reconnecting as needed. While it retries the caller
  is blocked, so the worker stops taking messages: memory stays bounded by the stream's
  own buffer instead of growing with the outage.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import psycopg

from ioc.core import metrics
from ioc.core.errors import RowsRejectedError, StorageError
from ioc.core.events.record import FEEDS, Feed, Record
from streams.sinks import statements

log = logging.getLogger(__name__)

_TRANSIENT = (psycopg.OperationalError, psycopg.errors.SerializationFailure,
              psycopg.errors.DeadlockDetected)


@dataclass(frozen=True, slots=True)
class WindowTotal:
    """A one-minute window's totals after the write (what alert rules evaluate)."""

    commune_code: str
    province_code: str
    metric: str
    bucket: datetime
    count: int
    sum: float
    min: float
    max: float
    last: float
    last_at: datetime


@dataclass(slots=True)
class WriteResult:
    windows: list[WindowTotal] = field(default_factory=list)
    inserted: dict[str, int] = field(default_factory=dict)
    duplicates: dict[str, int] = field(default_factory=dict)
    late: dict[str, int] = field(default_factory=dict)
    committed_at: float = 0.0

    def merge(self, other: WriteResult) -> WriteResult:
        """Results of two writes of one batch (when bad rows were isolated)."""
        self.windows.extend(other.windows)
        for mine, theirs in ((self.inserted, other.inserted),
                             (self.duplicates, other.duplicates), (self.late, other.late)):
            for feed, n in theirs.items():
                mine[feed] = mine.get(feed, 0) + n
        self.committed_at = max(self.committed_at, other.committed_at)
        return self


def _row(feed: Feed, r: Record, late: bool) -> tuple[Any, ...]:
    common = (r.occurred_at, r.event_id, r.source_id, r.department, r.commune_code,
              r.province_code)
    tail = (r.lat, r.lon, r.geo, late, datetime.fromtimestamp(r.received_at, tz=UTC))
    if feed == "sensor":
        return (*common, r.metric, r.value, r.unit, *tail)
    if feed == "traffic":
        return (*common, r.segment_id, r.vehicle_count, r.avg_speed_kmh, r.occupancy,
                r.incident, *tail)
    return (*common, r.dossier_id, r.procedure_code, r.agency, r.channel, r.status,
            r.due_at, r.resolved_at, r.fee_bearing, r.paid_online, r.digitised, *tail)


class TimescaleSink:
    """Writes enriched records to their hypertables and folds them into ``rollup_1m``."""

    def __init__(self, conninfo: str, *, retry_max_s: float = 30.0,
                 give_up_after_s: float | None = None) -> None:
        """``give_up_after_s``: raise StorageError after that long (None: retry forever)."""
        self._conninfo = conninfo
        self._retry_max_s = retry_max_s
        self._give_up_after_s = give_up_after_s
        self._conn: psycopg.AsyncConnection[Any] | None = None

    async def _connection(self) -> psycopg.AsyncConnection[Any]:
        if self._conn is None or self._conn.closed:
            conn = await psycopg.AsyncConnection.connect(self._conninfo)
            for feed in FEEDS:
                await conn.execute(statements.create_staging(feed).encode())
            await conn.commit()
            self._conn = conn
        return self._conn

    async def close(self) -> None:
        if self._conn is not None:
            await self._conn.close()
            self._conn = None

    async def write(self, records: Sequence[Record], late: Sequence[bool]) -> WriteResult:
        """Make ``records`` durable (``late[i]``: keep record i out of the rollups)."""
        by_feed: dict[Feed, list[tuple[Any, ...]]] = {}
        flags = {id(r): f for r, f in zip(records, late, strict=True)}
        for rec in statements.first_of_each(records):  # one row per identity per batch
            by_feed.setdefault(rec.feed, []).append(_row(rec.feed, rec, flags[id(rec)]))
        metrics.SINK_BUFFER_ROWS.set(len(records))
        started = time.monotonic()
        delay = 0.1
        try:
            while True:
                try:
                    result = await self._write_once(by_feed)
                    break
                except (psycopg.DataError, psycopg.IntegrityError) as exc:
                    raise RowsRejectedError(str(exc).splitlines()[0]) from exc
                except _TRANSIENT as exc:
                    metrics.SINK_FAILURES.inc()
                    waited = time.monotonic() - started
                    if self._give_up_after_s is not None and waited > self._give_up_after_s:
                        raise StorageError(f"sink gave up after {waited:.0f}s: {exc}") from exc
                    log.warning("sink: transient error, retrying in %.1fs: %s", delay, exc)
                    metrics.SINK_RETRIES.inc()
                    await self._reset()
                    await asyncio.sleep(delay)
                    delay = min(delay * 2, self._retry_max_s)
        finally:
            metrics.SINK_BUFFER_ROWS.set(0)
        sent: dict[str, int] = {}  # copies of one identity inside the batch count too
        for rec in records:
            sent[rec.feed] = sent.get(rec.feed, 0) + 1
        result.duplicates = {f: n - result.inserted.get(f, 0) for f, n in sent.items()}
        metrics.SINK_BATCH_ROWS.observe(len(records))
        metrics.SINK_FLUSH_SECONDS.observe(time.monotonic() - started)
        return result

    async def _reset(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            with contextlib.suppress(psycopg.Error):
                await conn.close()

    async def _write_once(self, by_feed: dict[Feed, list[tuple[Any, ...]]]) -> WriteResult:
        conn = await self._connection()
        result = WriteResult()
        async with conn.transaction(), conn.cursor() as cur:
            for feed, rows in by_feed.items():
                async with cur.copy(statements.copy_into_staging(feed).encode()) as copy:
                    copy.set_types(list(statements.TYPES[feed]))
                    for row in rows:
                        await copy.write_row(row)
                await cur.execute(statements.touch_sources(feed).encode())
                await cur.execute(statements.insert_and_roll_up(feed).encode())
                out = await cur.fetchall()
                inserted = int(out[0][0]) if out else 0
                result.inserted[feed] = inserted
                result.duplicates[feed] = len(rows) - inserted
                result.late[feed] = int(out[0][1]) if out else 0
                result.windows.extend(
                    WindowTotal(*row[2:]) for row in out if row[2] is not None)
        result.committed_at = time.time()
        return result
