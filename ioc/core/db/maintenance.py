"""Rollup refresh and retention done by the application with the Apache edition.

With the Community edition the database's own policies do this work and
``run_maintenance`` only reports so. A try-lock keeps two workers from doing it at once.
"""

from __future__ import annotations

from datetime import datetime, timedelta

import psycopg

from ioc.core.db.edition import timescale_edition

_LOCK_KEY = 0x10C_0002

REFRESH_1H = """
INSERT INTO rollup_1h AS r (bucket, commune_code, metric, province_code, count, sum, min,
                            max, last, last_at)
SELECT time_bucket('1 hour', bucket), commune_code, metric, min(province_code),
       sum(count)::bigint, sum(sum), min(min), max(max), last(last, last_at), max(last_at)
FROM rollup_1m
WHERE bucket >= time_bucket('1 hour', %(since)s::timestamptz)
GROUP BY 1, 2, 3
ON CONFLICT (commune_code, metric, bucket) DO UPDATE SET
    province_code = EXCLUDED.province_code, count = EXCLUDED.count, sum = EXCLUDED.sum,
    min = EXCLUDED.min, max = EXCLUDED.max, last = EXCLUDED.last, last_at = EXCLUDED.last_at
"""


def refresh_hourly(conn: psycopg.Connection[tuple[object, ...]], since: datetime) -> int:
    """Recompute hourly totals from one-minute windows since ``since`` (upsert of totals)."""
    cur = conn.execute(REFRESH_1H, {"since": since})
    return cur.rowcount


def apply_retention(conn: psycopg.Connection[tuple[object, ...]]) -> list[str]:
    dropped: list[str] = []
    rows = conn.execute("SELECT hypertable, keep FROM retention").fetchall()
    for table, keep in rows:
        # ioc_drop_chunks (migration 0015): drop_chunks as the owner, for a non-owner role
        out = conn.execute("SELECT ioc_drop_chunks(%s::regclass, %s::interval)",
                           (table, keep)).fetchall()
        dropped.extend(str(r[0]) for r in out)
    return dropped


def run_maintenance(conninfo: str, *, refresh_window: timedelta = timedelta(hours=3),
                    now: datetime | None = None) -> list[str]:
    """One maintenance pass; returns human-readable lines of what it did."""
    if timescale_edition(conninfo) == "timescale":
        return ["community edition: continuous aggregates and policies do this work"]
    with psycopg.connect(conninfo, autocommit=True) as conn:
        got = conn.execute("SELECT pg_try_advisory_lock(%s)", (_LOCK_KEY,)).fetchone()
        if not got or not got[0]:
            return ["another process holds the maintenance lock; skipped"]
        try:
            if now is None:
                latest = conn.execute("SELECT max(bucket) FROM rollup_1m").fetchone()
                now = latest[0] if latest and latest[0] else datetime.now().astimezone()
            with conn.transaction():
                n = refresh_hourly(conn, now - refresh_window)
            with conn.transaction():
                dropped = apply_retention(conn)
        finally:
            conn.execute("SELECT pg_advisory_unlock(%s)", (_LOCK_KEY,))
    return [f"rollup_1h: {n} hourly windows refreshed",
            f"retention: {len(dropped)} chunks dropped"]
