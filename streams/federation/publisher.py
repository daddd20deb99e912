"""A province's federation publisher: its summaries, as absolute values, to Kafka.

KPI day rows go out when they change. The database appends the keys a statement changed
to a queue (migration 0080's triggers on ``kpi_counts_daily`` and ``agencies``); one
publishing round claims up to ``batch_keys`` queue rows in a transaction (``SKIP
LOCKED``, so several publishers share the queue), reads the keys' current ``kpi_daily``
rows and the database clock, sends one record per key and waits for Kafka's
acknowledgement of every one before it commits the removal of those rows. A crash or a
refused send leaves them queued: they are sent again (absolute values: harmless). A key
changed after the claim has appended a row the claim did not see, so it is sent next
round (the migration says why the queue is append-only).

A round starts as soon as a statement that queued keys commits (the queue's trigger
notifies :data:`CHANNEL`, migration 0130; a listening connection wakes the loop) and at
the latest every ``publish_every_s``: latency is a round's time, not a poll interval.

The alert summary and feed health are small; they are read whole and sent every
``snapshot_every_s``.

The first round of a publisher switches the queue on and queues every existing key
once (``federation_publishing`` was empty): the nation then starts from the whole
history, not only from what changes after.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, date, datetime
from typing import Any, Final, Protocol

import psycopg

from ioccore.federation import (
    SCHEMA,
    AlertCount,
    AlertSummary,
    AlertSummaryRecord,
    FeedHealth,
    FeedHealthRecord,
    FeedRow,
    KpiDayKey,
    KpiDayRecord,
    KpiDayValues,
    Record,
    encode,
    record_key,
)
from ioccore.kpis import COUNTS

log = logging.getLogger("ioc.federation.publisher")


class Send(Protocol):
    """Send one record; the awaitable resolves when Kafka has acknowledged it."""

    def __call__(self, key: bytes, value: bytes) -> Awaitable[Awaitable[Any]]: ...


_ENABLE: Final = """
WITH switched AS (
    INSERT INTO federation_publishing DEFAULT VALUES ON CONFLICT DO NOTHING RETURNING 1
)
INSERT INTO federation_dirty (day, agency, province_code, commune_code)
SELECT day, agency, province_code, commune_code FROM kpi_counts_daily
WHERE EXISTS (SELECT 1 FROM switched)
"""

_CLAIM: Final = """
DELETE FROM federation_dirty
WHERE id = ANY(ARRAY(
    SELECT id FROM federation_dirty ORDER BY id LIMIT %(n)s FOR UPDATE SKIP LOCKED))
RETURNING day, agency, province_code, commune_code
"""
"""The oldest ``n`` queued rows: an index range from the queue's head, then that many
primary-key deletes (``= ANY(ARRAY(...))``, never a join the planner could turn into a
scan of the whole queue), so a round costs the same whatever the backlog."""

_VALUES: Final = f"""
SELECT k.day, k.agency, k.applicant_province, k.applicant_commune, k.province_code,
       k.commune_code, k.tier, {", ".join("k." + c for c in COUNTS)}
FROM unnest(%(days)s::date[], %(agencies)s::text[], %(provinces)s::text[],
            %(communes)s::text[]) AS q(day, agency, province, commune)
CROSS JOIN LATERAL (
    SELECT * FROM kpi_daily d
    WHERE d.day = q.day AND d.agency = q.agency AND d.applicant_province = q.province
      AND d.applicant_commune = q.commune
    LIMIT 1) k
"""
"""The claimed keys' current rows, one primary-key lookup each: the ``LIMIT`` keeps the
subquery a per-key lookup (the planner cannot turn it into a hash join over the whole
of ``kpi_counts_daily``, which grows with the province's history; with stale
statistics that join was a nested loop of full scans, seconds per round)."""

_ALERTS: Final = """
SELECT rule_id, severity, state, count(*) FROM alerts
WHERE state IN ('pending', 'firing', 'acknowledged')
   OR (state = 'resolved' AND resolved_at >= now() - interval '1 day')
GROUP BY rule_id, severity, state ORDER BY rule_id, severity, state
"""

_FEEDS: Final = """
SELECT department, feed, count(*), max(last_received_at),
       count(*) FILTER (WHERE last_received_at >= now() - interval '1 hour')
FROM sources GROUP BY department, feed ORDER BY department, feed
"""


def _now(conn_clock: datetime | None) -> datetime:
    return conn_clock or datetime.now(UTC)


class Publisher:
    """One province's publisher; ``send`` puts a record on the federation topic."""

    def __init__(self, province_code: str, send: Send, *, batch_keys: int = 5000) -> None:
        self._province = province_code
        self._send = send
        self._batch = batch_keys

    async def enable(self, conn: psycopg.AsyncConnection[Any]) -> int:
        """Switch the queue on; the first time, queue every existing key (their number).

        The SHARE locks wait for writers in flight and hold new ones until the switch
        commits: a write either finished before the keys are read (and is among them) or
        starts after the switch (and queues itself)."""
        row = await (await conn.execute("SELECT count(*) FROM federation_publishing")).fetchone()
        if row and row[0]:
            return 0
        async with conn.transaction():
            await conn.execute("LOCK TABLE kpi_counts_daily, agencies IN SHARE MODE")
            cur = await conn.execute(_ENABLE)
            return cur.rowcount

    async def publish_kpis(self, conn: psycopg.AsyncConnection[Any]) -> int:
        """One round: up to ``batch_keys`` queued keys sent and removed; how many."""
        t_start = time.time()
        async with conn.transaction():
            claimed = await (await conn.execute(_CLAIM, {"n": self._batch})).fetchall()
            if not claimed:
                return 0
            keys = sorted(set(claimed))
            clock = await (await conn.execute("SELECT clock_timestamp()")).fetchone()
            as_of = _now(clock[0] if clock else None)
            cur = await conn.execute(_VALUES, {
                "days": [k[0] for k in keys], "agencies": [k[1] for k in keys],
                "provinces": [k[2] for k in keys], "communes": [k[3] for k in keys]})
            found = {(r[0], r[1], r[2], r[3]): r for r in await cur.fetchall()}
            t_read = time.time()
            records = [self._kpi_record(k, found.get((k[0], k[1], k[2], k[3])), as_of)
                       for k in keys]
            await self._send_all(records)
            t_acked = time.time()
        if log.isEnabledFor(logging.DEBUG):  # the benchmark's per-stage timing
            log.debug("federation round", extra={
                "as_of": as_of.isoformat(), "claimed": len(claimed), "keys": len(keys),
                "t_start": t_start, "t_read": t_read, "t_acked": t_acked,
                "t_committed": time.time()})
        return len(claimed)

    def _kpi_record(self, key: Sequence[Any], row: Sequence[Any] | None,
                    as_of: datetime) -> KpiDayRecord:
        day: date = key[0]
        if row is None:  # no row any more: nothing counted under this key
            values = KpiDayValues(key[2], key[3], "unassigned", *([0] * len(COUNTS)))
        else:
            values = KpiDayValues(row[4], row[5], row[6], *(int(v) for v in row[7:]))
        return KpiDayRecord(
            schema=SCHEMA, province_code=self._province, as_of=as_of,
            key=KpiDayKey(day=day, agency=key[1], applicant_province=key[2],
                          applicant_commune=key[3]),
            values=values)

    async def publish_snapshots(self, conn: psycopg.AsyncConnection[Any]) -> None:
        """The alert summary and feed health, whole."""
        t_start = time.time()
        async with conn.transaction():
            clock = await (await conn.execute("SELECT clock_timestamp()")).fetchone()
            as_of = _now(clock[0] if clock else None)
            alerts = [AlertCount(rule_id=r, severity=s, state=st, count=int(n))
                      for r, s, st, n in await (await conn.execute(_ALERTS)).fetchall()]
            incidents = await _incident_counts(conn)
            feeds = [FeedRow(department=d, feed=f, sources=int(n), last_received_at=last,
                             sources_active_1h=int(recent))
                     for d, f, n, last, recent in await (await conn.execute(_FEEDS)).fetchall()]
        await self._send_all([
            AlertSummaryRecord(schema=SCHEMA, province_code=self._province, as_of=as_of,
                               values=AlertSummary(alerts=alerts, incidents_open=incidents[0],
                                                   incidents_open_past_sla=incidents[1])),
            FeedHealthRecord(schema=SCHEMA, province_code=self._province, as_of=as_of,
                             values=FeedHealth(feeds=feeds)),
        ])
        if log.isEnabledFor(logging.DEBUG):  # the benchmark: time between rounds
            log.debug("federation snapshots", extra={"t_start": t_start,
                                                     "t_acked": time.time()})

    async def _send_all(self, records: Sequence[Record]) -> None:
        """Send every record, then wait for every acknowledgement (raises on any)."""
        acks = [await self._send(record_key(r), encode(r)) for r in records]
        await asyncio.gather(*acks)


async def _incident_counts(conn: psycopg.AsyncConnection[Any]
                           ) -> tuple[int | None, int | None]:
    """Open incidents and those past their deadline, when the province runs incidents."""
    row = await (await conn.execute("SELECT to_regclass('incidents') IS NOT NULL")).fetchone()
    if not row or not row[0]:
        return None, None
    cols = await (await conn.execute(
        "SELECT array_agg(column_name::text) FROM information_schema.columns "
        "WHERE table_name = 'incidents'")).fetchone()
    names = set(cols[0] or []) if cols else set()
    if not {"state", "resolve_due_at"} <= names:
        return None, None
    counts = await (await conn.execute(
        "SELECT count(*) FILTER (WHERE state NOT IN ('resolved', 'closed')), "
        "count(*) FILTER (WHERE state NOT IN ('resolved', 'closed') "
        "AND resolve_due_at < now()) FROM incidents")).fetchone()
    return (int(counts[0]), int(counts[1])) if counts else (None, None)


CHANNEL: Final = "ioc_federation_dirty"
"""Notified at the commit of every statement that queued keys (migration 0130)."""


async def _listen(connect: Callable[[], Awaitable[psycopg.AsyncConnection[Any]]],
                  wake: asyncio.Event) -> None:
    """Set ``wake`` on every notification; a connection of its own, reconnecting."""
    while True:
        try:
            async with await connect() as conn:
                await conn.execute(f"LISTEN {CHANNEL}")
                wake.set()  # anything queued while not listening
                async for _ in conn.notifies():
                    wake.set()
        except (psycopg.Error, OSError) as exc:
            log.warning("federation listener: %s; polling until it reconnects", exc)
            await asyncio.sleep(1.0)


async def _sleep(wake: asyncio.Event, stop: asyncio.Event, at_most_s: float) -> None:
    """Until keys are queued, a stop, or ``at_most_s``."""
    waits = [asyncio.ensure_future(wake.wait()), asyncio.ensure_future(stop.wait())]
    try:
        await asyncio.wait(waits, timeout=at_most_s, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for w in waits:
            w.cancel()


async def run(publisher: Publisher, connect: Callable[[], Awaitable[psycopg.AsyncConnection[Any]]],
              *, every_s: float, snapshot_every_s: float,
              stop: asyncio.Event, once: bool = False) -> None:
    """Publish until ``stop`` is set: queued keys as soon as a statement queues some
    (a LISTEN on :data:`CHANNEL`) and at least each ``every_s`` (until the queue is
    empty), snapshots each ``snapshot_every_s``. Errors are logged and retried."""
    loop = asyncio.get_running_loop()
    next_snapshot = 0.0
    enabled = False
    wake = asyncio.Event()
    listener = None if once else asyncio.create_task(_listen(connect, wake))
    conn: psycopg.AsyncConnection[Any] | None = None  # kept across rounds
    try:
        while not stop.is_set():
            wake.clear()  # a statement committing from here on wakes the next round
            failed = True
            try:
                if conn is None or conn.closed:
                    conn = await connect()
                if not enabled:
                    queued = await publisher.enable(conn)
                    enabled = True
                    if queued:
                        log.info("federation: first start, %d keys queued", queued)
                while await publisher.publish_kpis(conn):
                    if stop.is_set():
                        return
                if loop.time() >= next_snapshot:
                    await publisher.publish_snapshots(conn)
                    next_snapshot = loop.time() + snapshot_every_s
                failed = False
            except (psycopg.Error, OSError, TimeoutError) as exc:
                log.warning("federation: publishing failed, retrying: %s", exc)
            except Exception as exc:  # a Kafka error: kept queued, retried
                if once:
                    raise
                log.warning("federation: publishing failed, retrying: %r", exc)
            if failed and conn is not None:  # a fresh connection for the retry
                await _close(conn)
                conn = None
            if once:
                return
            if failed:  # retried after every_s, whatever wakes
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), every_s)
            else:
                await _sleep(wake, stop, min(every_s, max(0.0, next_snapshot - loop.time())))
    finally:
        if conn is not None:
            await _close(conn)
        if listener is not None:
            listener.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await listener


async def _close(conn: psycopg.AsyncConnection[Any]) -> None:
    with contextlib.suppress(psycopg.Error, OSError):
        await conn.close()
