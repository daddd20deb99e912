"""The TimescaleDB sink: a batch's raw rows and rollups, inside the caller's transaction.

Contract:
- ``write(conn, records, late)`` runs inside a transaction the caller opened (stage 2
  commits it together with the alert transitions and outbox rows of the same batch); it
  neither commits nor retries. A lost connection or any other database error propagates
  and the caller retries the whole batch.
- It is idempotent: writing the same records twice inserts nothing the second time and
  leaves every rollup unchanged.
- Two writers claiming the same identity at once (see ``statements``) both succeed: the
  loser's write is run again under its savepoint and counts the winner's rows as
  duplicates.
- Rows the database refuses (``DataError``, ``IntegrityError``: a NUL in a text, an
  out-of-range value) are isolated by halving under savepoints and returned in
  ``WriteResult.rejected``; the rest of the batch is written. One bad row costs about
  log2(batch) extra statements, and only then.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import psycopg

from alerts.model import WindowPoint
from ioccore import metrics
from ioccore.events.record import FEEDS, Feed, Record
from streams.sinks import statements

log = logging.getLogger(__name__)

CLAIM_RETRIES = 5
"""Savepoint retries of one write after losing identity races (each waits for the
winner's commit, so a second loss needs yet another writer on the same keys)."""


class ClaimRaceLost(psycopg.OperationalError):
    """Still losing identity races after ``CLAIM_RETRIES``: a database condition like a
    deadlock (``streams.retry`` retries the whole batch), never a refused row."""


@dataclass(slots=True)
class WriteResult:
    windows: list[WindowPoint] = field(default_factory=list)
    """One-minute totals after the write (what alert rules evaluate)."""
    inserted: dict[str, int] = field(default_factory=dict)
    duplicates: dict[str, int] = field(default_factory=dict)
    late: dict[str, int] = field(default_factory=dict)
    rejected: list[tuple[int, str]] = field(default_factory=list)
    """(index into the written records, the database's first line) for refused rows."""

    def merge(self, other: WriteResult) -> WriteResult:
        """Results of two writes of one batch (when bad rows were isolated)."""
        self.windows.extend(other.windows)
        for mine, theirs in ((self.inserted, other.inserted),
                             (self.duplicates, other.duplicates), (self.late, other.late)):
            for feed, n in theirs.items():
                mine[feed] = mine.get(feed, 0) + n
        self.rejected.extend(other.rejected)
        return self


def _row(feed: Feed, r: Record, late: bool, stamps: dict[float, datetime] | None = None
         ) -> tuple[Any, ...]:
    """``stamps``: ``received_at`` already converted (a stage-1 batch's records share one)."""
    common = (r.occurred_at, r.event_id, r.source_id, r.department, r.commune_code,
              r.province_code)
    known = None if stamps is None else stamps.get(r.received_at)
    if known is not None:
        received = known
    else:
        received = datetime.fromtimestamp(r.received_at, tz=UTC)
        if stamps is not None:
            stamps[r.received_at] = received
    tail = (r.lat, r.lon, r.geo, late, received)
    if feed == "sensor":
        return (*common, r.metric, r.value, r.unit, *tail)
    if feed == "traffic":
        return (*common, r.segment_id, r.vehicle_count, r.avg_speed_kmh, r.occupancy,
                r.incident, *tail)
    return (*common, r.dossier_id, r.procedure_code, r.agency, r.channel, r.status,
            r.due_at, r.resolved_at, r.fee_bearing, r.paid_online, r.digitised, *tail)


def rows_of(feed: Feed, records: Sequence[Record], late: Sequence[bool]
            ) -> Iterator[tuple[Any, ...]]:
    """The staging rows of ``records`` (all of ``feed``), in ``statements.COLUMNS`` order."""
    stamps: dict[float, datetime] = {}
    return (_row(feed, r, f, stamps) for r, f in zip(records, late, strict=True))


class TimescaleSink:
    """Writes enriched records to their hypertables and folds them into ``rollup_1m``."""

    @staticmethod
    async def prepare(conn: psycopg.AsyncConnection[Any]) -> None:
        """Create the per-connection staging tables (a pool's ``configure`` hook)."""
        for feed in FEEDS:
            await conn.execute(statements.create_staging(feed).encode())
        await conn.commit()

    async def write(self, conn: psycopg.AsyncConnection[Any], records: Sequence[Record],
                    late: Sequence[bool], *, max_rows: int = 200_000) -> WriteResult:
        """Write ``records`` in the open transaction (``late[i]``: keep i out of rollups).

        At most ``max_rows`` rows go through the staging tables per statement.
        """
        metrics.SINK_BUFFER_ROWS.set(len(records))
        started = time.monotonic()
        result = WriteResult()
        staged: set[Feed] = set()  # staging tables holding rows of an earlier write
        try:
            for i in range(0, len(records), max_rows):
                result.merge(await self._isolate(conn, records, late, i,
                                                 min(i + max_rows, len(records)), staged))
        finally:
            metrics.SINK_BUFFER_ROWS.set(0)
        metrics.SINK_BATCH_ROWS.observe(len(records))
        metrics.SINK_FLUSH_SECONDS.observe(time.monotonic() - started)
        return result

    async def _isolate(self, conn: psycopg.AsyncConnection[Any], records: Sequence[Record],
                       late: Sequence[bool], lo: int, hi: int, staged: set[Feed]
                       ) -> WriteResult:
        """Write records[lo:hi] under a savepoint; halve around rows the database refuses.

        A unique violation on a key table is another writer's claim of the same identity
        (``statements.lost_claim_race``): the savepoint is rolled back and the write run
        again, and its fresh snapshot counts those events as duplicates. Each race waits
        for the other transaction to commit, so a retry finds its keys; after
        ``CLAIM_RETRIES`` the error goes to the caller, which retries the whole batch.
        """
        for attempt in range(CLAIM_RETRIES + 1):
            try:
                async with conn.transaction():
                    result = await self._write_once(conn, records[lo:hi], late[lo:hi],
                                                    staged)
                staged.update(f for f in FEEDS if f in result.inserted)  # emptied at commit
                return result
            except psycopg.errors.UniqueViolation as exc:
                if not any(statements.lost_claim_race(f, exc) for f in FEEDS):
                    return await self._halve(conn, records, late, lo, hi, staged, exc)
                if attempt == CLAIM_RETRIES:
                    raise ClaimRaceLost(str(exc).splitlines()[0]) from exc
                metrics.SINK_CLAIM_RETRIES.inc()
                log.info("sink: another writer claimed some of %d identities first; "
                         "writing them again", hi - lo)
            except (psycopg.DataError, psycopg.IntegrityError) as exc:
                return await self._halve(conn, records, late, lo, hi, staged, exc)
        raise AssertionError("unreachable")  # pragma: no cover

    async def _halve(self, conn: psycopg.AsyncConnection[Any], records: Sequence[Record],
                     late: Sequence[bool], lo: int, hi: int, staged: set[Feed],
                     exc: psycopg.Error) -> WriteResult:
        """records[lo:hi] held a row the database refused: write each half on its own."""
        if hi - lo == 1:
            return WriteResult(rejected=[(lo, str(exc).splitlines()[0])])
        mid = (lo + hi) // 2
        first = await self._isolate(conn, records, late, lo, mid, staged)
        return first.merge(await self._isolate(conn, records, late, mid, hi, staged))

    async def _write_once(self, conn: psycopg.AsyncConnection[Any],
                          records: Sequence[Record], late: Sequence[bool],
                          staged: set[Feed]) -> WriteResult:
        by_feed: dict[Feed, list[tuple[Any, ...]]] = {}
        sent: dict[Feed, int] = {}  # copies of one identity in the batch are duplicates
        flags = {id(r): f for r, f in zip(records, late, strict=True)}
        for rec in records:
            sent[rec.feed] = sent.get(rec.feed, 0) + 1
        stamps: dict[float, datetime] = {}
        for rec in statements.first_of_each(records):  # one staged row per identity
            by_feed.setdefault(rec.feed, []).append(_row(rec.feed, rec, flags[id(rec)],
                                                         stamps))
        result = WriteResult()
        async with conn.cursor() as cur:
            for feed, rows in by_feed.items():
                if feed in staged:  # a second write in this transaction (TRUNCATE: ~60 ms)
                    await cur.execute(f"DELETE FROM {statements.staging_table(feed)}".encode())
                async with cur.copy(statements.copy_into_staging(feed).encode()) as copy:
                    copy.set_types(list(statements.TYPES[feed]))
                    for row in rows:
                        await copy.write_row(row)
        # every feed's statements in one round trip (COPY cannot be pipelined): each
        # waited for its answer before, 5-7 round trips a batch; the first error is raised
        # as before when the pipeline syncs, and nothing after it ran
        folds: dict[Feed, psycopg.AsyncCursor[Any]] = {}
        async with conn.pipeline():
            for feed in by_feed:
                await conn.execute(statements.touch_sources(feed).encode())
                if feed == "service":
                    await conn.execute(statements.DOSSIER_QUEUE_BY_STATEMENT.encode())
                folds[feed] = await conn.execute(statements.insert_and_roll_up(feed).encode())
        for feed, cur in folds.items():
            out = await cur.fetchall()
            inserted = int(out[0][0]) if out else 0
            result.inserted[feed] = inserted
            result.duplicates[feed] = sent[feed] - inserted
            result.late[feed] = int(out[0][1]) if out else 0
            result.windows.extend(_window(row[2:]) for row in out if row[2] is not None)
        return result


def _window(row: Sequence[Any]) -> WindowPoint:
    """A row of ``statements.WINDOW_COLUMNS`` as the evaluator's type."""
    commune, province, metric, bucket, count, total, low, high, last, last_at = row
    return WindowPoint(commune, province, metric, bucket, int(count), float(total),
                       float(low), float(high), float(last), last_at=last_at)
