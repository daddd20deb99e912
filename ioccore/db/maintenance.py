"""Rollup refresh and retention done by the application.

Apache edition: ``rollup_1h`` is a plain table that maintenance recomputes from
``rollup_1m`` for every hour the sink marked in ``rollup_1h_pending`` (any hour a stored
event changed, late or replayed ones included) and for the recent ``refresh_window``;
retention drops old chunks. Community edition: the continuous aggregate's policy
refreshes the last three days by itself; maintenance refreshes the marked hours that are
older than that, so a very late event reaches ``rollup_1h`` too. Identity keys older than
a feed's retention are deleted with its chunks. A try-lock keeps two workers from doing
it at once.
"""

from __future__ import annotations

from datetime import datetime, timedelta

import psycopg

from ioccore.db.connections import connect
from ioccore.db.edition import timescale_edition

_LOCK_KEY = 0x10C_0002
_POLICY_WINDOW = timedelta(days=3)  # start_offset of the continuous aggregate policy

_HOURLY_SELECT = """
SELECT time_bucket('1 hour', bucket), commune_code, metric, min(province_code),
       sum(count)::bigint, sum(sum), min(min), max(max), last(last, last_at), max(last_at)
FROM rollup_1m
"""
_UPSERT = """
ON CONFLICT (commune_code, metric, bucket) DO UPDATE SET
    province_code = EXCLUDED.province_code, count = EXCLUDED.count, sum = EXCLUDED.sum,
    min = EXCLUDED.min, max = EXCLUDED.max, last = EXCLUDED.last, last_at = EXCLUDED.last_at
"""
_INSERT = ("INSERT INTO rollup_1h AS r (bucket, commune_code, metric, province_code, count,"
           " sum, min, max, last, last_at)")

REFRESH_1H = (_INSERT + _HOURLY_SELECT
              + "WHERE bucket >= time_bucket('1 hour', %(since)s::timestamptz)\n"
              + "GROUP BY 1, 2, 3" + _UPSERT)

REFRESH_HOURS = (_INSERT + _HOURLY_SELECT
                 + "WHERE time_bucket('1 hour', bucket) = ANY(%(hours)s::timestamptz[])\n"
                 + "GROUP BY 1, 2, 3" + _UPSERT)

KEY_TABLES = {"sensor_readings": "sensor_readings_keys",
              "traffic_observations": "traffic_observations_keys",
              "service_events": "service_events_keys"}

Conn = psycopg.Connection[tuple[object, ...]]


def refresh_hourly(conn: Conn, since: datetime) -> int:
    """Recompute hourly totals from one-minute windows since ``since`` (upsert of totals)."""
    cur = conn.execute(REFRESH_1H, {"since": since})
    return cur.rowcount


def take_pending_hours(conn: Conn, before: datetime | None = None) -> list[datetime]:
    """Remove and return the hours the sink marked (optionally only those before ``before``).

    Call inside the transaction that refreshes them: a sink transaction that marks an hour
    concurrently either committed before this DELETE (its minutes are then visible to the
    refresh that follows) or its mark survives for the next pass."""
    if before is None:
        rows = conn.execute("DELETE FROM rollup_1h_pending RETURNING hour").fetchall()
    else:
        rows = conn.execute("DELETE FROM rollup_1h_pending WHERE hour < %s RETURNING hour",
                            (before,)).fetchall()
    return sorted(r[0] for r in rows if isinstance(r[0], datetime))


def refresh_pending(conn: Conn) -> int:
    """Apache edition: recompute every marked hour (deleting a now-empty hour's rows)."""
    hours = take_pending_hours(conn)
    if not hours:
        return 0
    conn.execute("DELETE FROM rollup_1h r WHERE r.bucket = ANY(%s::timestamptz[])"
                 " AND NOT EXISTS (SELECT 1 FROM rollup_1m m WHERE m.commune_code ="
                 " r.commune_code AND m.metric = r.metric AND m.bucket >= r.bucket"
                 " AND m.bucket < r.bucket + interval '1 hour')", (hours,))
    return conn.execute(REFRESH_HOURS, {"hours": hours}).rowcount


def _ranges(hours: list[datetime]) -> list[tuple[datetime, datetime]]:
    out: list[tuple[datetime, datetime]] = []
    for h in hours:
        if out and out[-1][1] == h:
            out[-1] = (out[-1][0], h + timedelta(hours=1))
        else:
            out.append((h, h + timedelta(hours=1)))
    return out


def apply_retention(conn: Conn) -> list[str]:
    dropped: list[str] = []
    rows = conn.execute("SELECT hypertable, keep FROM retention").fetchall()
    for table, keep in rows:
        # ioc_drop_chunks (migration 0015): drop_chunks as the owner, for a non-owner role
        out = conn.execute("SELECT ioc_drop_chunks(%s::regclass, %s::interval)",
                           (table, keep)).fetchall()
        dropped.extend(str(r[0]) for r in out)
        keys = KEY_TABLES.get(str(table))
        if keys:
            conn.execute(f"DELETE FROM {keys} WHERE time < now() - %s::interval",
                         (keep,))
    return dropped


def run_maintenance(conninfo: str, *, refresh_window: timedelta = timedelta(hours=3),
                    now: datetime | None = None) -> list[str]:
    """One maintenance pass; returns human-readable lines of what it did."""
    community = timescale_edition(conninfo) == "timescale"
    with connect(conninfo, purpose="maintenance", autocommit=True,
                 statement_timeout_s=0) as conn:
        got = conn.execute("SELECT pg_try_advisory_lock(%s)", (_LOCK_KEY,)).fetchone()
        if not got or not got[0]:
            return ["another process holds the maintenance lock; skipped"]
        try:
            if community:
                return _community(conn)
            if now is None:
                latest = conn.execute("SELECT max(bucket) FROM rollup_1m").fetchone()
                now = latest[0] if latest and latest[0] else datetime.now().astimezone()
            with conn.transaction():
                n = refresh_hourly(conn, now - refresh_window)
            with conn.transaction():
                n += refresh_pending(conn)
            with conn.transaction():
                dropped = apply_retention(conn)
        finally:
            conn.execute("SELECT pg_advisory_unlock(%s)", (_LOCK_KEY,))
    return [f"rollup_1h: {n} hourly windows refreshed",
            f"retention: {len(dropped)} chunks dropped"]


def _community(conn: Conn) -> list[str]:
    """Policies do the recent work; refresh marked hours older than the policy's window."""
    horizon = datetime.now().astimezone() - _POLICY_WINDOW
    with conn.transaction():
        hours = take_pending_hours(conn, before=horizon)
    for start, end in _ranges(hours):  # CALL cannot run inside a transaction block
        conn.execute("CALL refresh_continuous_aggregate('rollup_1h', %s, %s)", (start, end))
    conn.execute("DELETE FROM rollup_1h_pending WHERE hour >= %s",
                 (horizon,))  # the policy's invalidation log covers these
    return ["community edition: continuous aggregates and policies do the recent work",
            f"rollup_1h: {len(hours)} hours older than the policy window refreshed"]
