"""SQL the TimescaleDB sink runs: staging tables, and one insert-and-roll-up per feed.

Each feed's statement finds the staged events whose identity ``(source_id, event_id)`` is
not yet in the feed's key table (an anti-join: one index probe per row), claims those
identities with a plain ``INSERT`` (no ``ON CONFLICT``: a speculative insertion per row
cost about 40 % of the sensor statement), inserts the same rows into the hypertable and
adds exactly those rows to ``rollup_1m``, late ones included, all in one statement inside
the batch's transaction. The first stored wins, whatever its time. A replayed or re-sent
event is found by the anti-join and adds nothing: the totals stay exact however often a
topic is replayed, and equal a GROUP BY over the raw rows (docs/architecture.md). Every
hour whose minutes changed is marked in ``rollup_1h_pending`` for maintenance.

Two writers racing on one identity (two workers around a rebalance, a replay beside the
live stream): the anti-join of each statement sees only what had committed when it
started, so the later ``INSERT`` waits for the earlier transaction's key and then fails
with a unique violation on the key table. That fails the whole statement, so no row of
it was stored; the sink rolls back to its savepoint and runs it again, and the fresh
snapshot now finds the other writer's keys (:func:`lost_claim_race`).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Final

import psycopg

from ioccore.events.record import Feed, Record

COMMON: Final = ("time", "event_id", "source_id", "department", "commune_code",
                 "province_code")
TAIL: Final = ("lat", "lon", "geo", "late", "received_at")

COLUMNS: Final[dict[Feed, tuple[str, ...]]] = {
    "sensor": (*COMMON, "metric", "value", "unit", *TAIL),
    "traffic": (*COMMON, "segment_id", "vehicle_count", "avg_speed_kmh", "occupancy",
                "incident", *TAIL),
    "service": (*COMMON, "dossier_id", "procedure_code", "agency", "channel", "status",
                "due_at", "resolved_at", "fee_bearing", "paid_online", "digitised", *TAIL),
}
_COMMON_TYPES: Final = ("timestamptz", "text", "text", "text", "text", "text")
_TAIL_TYPES: Final = ("float8", "float8", "text", "bool", "timestamptz")
TYPES: Final[dict[Feed, tuple[str, ...]]] = {
    "sensor": (*_COMMON_TYPES, "text", "float8", "text", *_TAIL_TYPES),
    "traffic": (*_COMMON_TYPES, "text", "int4", "float8", "float8", "text", *_TAIL_TYPES),
    "service": (*_COMMON_TYPES, "text", "text", "text", "text", "text", "timestamptz",
                "timestamptz", "bool", "bool", "bool", *_TAIL_TYPES),
}
"""Postgres types of ``COLUMNS``, for binary COPY (4-5x cheaper than text here)."""

TABLES: Final[dict[Feed, str]] = {
    "sensor": "sensor_readings",
    "traffic": "traffic_observations",
    "service": "service_events",
}

# (metric, value) pairs each feed contributes to the rollups, as SQL over a row `n`.
# Service shares are 0/1 values so a window's avg is the share and its count the base.
_METRICS: Final[dict[Feed, str]] = {
    "sensor": "(VALUES (n.metric, n.value))",
    "traffic": """(VALUES ('traffic.vehicle_count', n.vehicle_count::float8),
                         ('traffic.avg_speed_kmh', n.avg_speed_kmh),
                         ('traffic.occupancy', n.occupancy),
                         ('traffic.incident',
                          CASE WHEN n.incident IS NULL THEN 0.0 ELSE 1.0 END))""",
    "service": """(VALUES ('service.' || n.status, 1.0::float8),
        (CASE WHEN n.status = 'received' THEN 'service.received.online' END,
         CASE WHEN n.channel = 'online' THEN 1.0 ELSE 0.0 END),
        (CASE WHEN n.status = 'received' AND n.digitised IS NOT NULL
              THEN 'service.received.digitised' END,
         CASE WHEN n.digitised THEN 1.0 ELSE 0.0 END),
        (CASE WHEN n.status = 'resolved' AND n.due_at IS NOT NULL AND n.resolved_at IS NOT NULL
              THEN 'service.resolved.on_time' END,
         CASE WHEN n.resolved_at <= n.due_at THEN 1.0 ELSE 0.0 END),
        (CASE WHEN n.status = 'resolved' THEN 'service.resolved.online' END,
         CASE WHEN n.channel = 'online' THEN 1.0 ELSE 0.0 END),
        (CASE WHEN n.status = 'paid' AND n.fee_bearing THEN 'service.paid.online' END,
         CASE WHEN n.paid_online THEN 1.0 ELSE 0.0 END))""",
}

_ROLLED: Final[dict[Feed, tuple[str, ...]]] = {
    "sensor": ("metric", "value"),
    "traffic": ("vehicle_count", "avg_speed_kmh", "occupancy", "incident"),
    "service": ("status", "channel", "digitised", "due_at", "resolved_at", "fee_bearing",
                "paid_online"),
}
"""The columns ``_METRICS`` reads: all the insert returns besides time, place and late."""

_QUEUED: Final = ("source_id", "event_id", "agency", "dossier_id", "procedure_code")
"""Further columns the service insert returns: what the dossier fold's queue holds."""

DOSSIER_QUEUE_BY_STATEMENT: Final = "SELECT set_config('ioc.dossier_queue', 'statement', true)"
"""Run in the transaction before the service insert (migration 0125): the statement queues
its rows for the dossier fold itself, so the per-row trigger stands aside."""

WINDOW_COLUMNS: Final = ("commune_code", "province_code", "metric", "bucket", "count", "sum",
                         "min", "max", "last", "last_at")


def lost_claim_race(feed: Feed, exc: BaseException) -> bool:
    """Whether ``exc`` is another writer's claim of an identity this statement claimed:
    a unique violation on the feed's key table, to be retried, never a refused row."""
    return (isinstance(exc, psycopg.errors.UniqueViolation)
            and exc.diag.table_name == keys_table(feed))


def staging_table(feed: Feed) -> str:
    return f"ioc_stage_{feed}"


def keys_table(feed: Feed) -> str:
    """The feed's identity table (migration 0011): one row per (source_id, event_id)."""
    return f"{TABLES[feed]}_keys"


def create_staging(feed: Feed) -> str:
    """A per-connection temp table shaped like the feed's hypertable, emptied on commit.

    It holds at most one row per identity (:func:`first_of_each` before the COPY), so the
    plain key insert of :func:`insert_and_roll_up` never meets a copy from its own batch."""
    return (f"CREATE TEMP TABLE IF NOT EXISTS {staging_table(feed)} "
            f"(LIKE {TABLES[feed]} INCLUDING DEFAULTS) ON COMMIT DELETE ROWS")


def first_of_each(records: Iterable[Record]) -> Iterator[Record]:
    """The first record of each identity ``(source_id, event_id)`` in arrival order: later
    copies in the same batch are duplicates, as they would be in a later batch."""
    seen: set[tuple[str, str]] = set()
    for r in records:
        key = (r.source_id, r.event_id)
        if key not in seen:
            seen.add(key)
            yield r


def copy_into_staging(feed: Feed) -> str:
    cols = ", ".join(COLUMNS[feed])
    return f"COPY {staging_table(feed)} ({cols}) FROM STDIN (FORMAT BINARY)"


def insert_and_roll_up(feed: Feed, *, queue_dossiers: bool = True) -> str:
    """Insert staged rows whose identity is new; fold them all into ``rollup_1m``.

    Service rows are queued for the dossier fold by the statement itself (run
    :data:`DOSSIER_QUEUE_BY_STATEMENT` first in the transaction); ``queue_dossiers=False``
    leaves that to migration 0026's row trigger (the before of ``bench_sink_cpu``).

    Returns one row per window touched (``WINDOW_COLUMNS`` after two counters), or a
    single row of counters with NULL window columns when no window changed.
    """
    cols = ", ".join(COLUMNS[feed])
    window_cols = ", ".join(f"up.{c}" for c in WINDOW_COLUMNS)
    returned = ("time", "commune_code", "province_code", "late", *_ROLLED[feed],
                *(_QUEUED if feed == "service" and queue_dossiers else ()))
    return f"""
WITH fresh AS MATERIALIZED (  -- identities no committed writer has stored yet
    SELECT {", ".join(f"s.{c}" for c in COLUMNS[feed])}
    FROM {staging_table(feed)} s
    WHERE NOT EXISTS (SELECT FROM {keys_table(feed)} k
                      WHERE k.source_id = s.source_id AND k.event_id = s.event_id
                      OFFSET 0)  -- one index probe a row, never a hash of the key table
), claimed AS (  -- a concurrent claim of one of them fails the statement (unique_violation)
    INSERT INTO {keys_table(feed)} (source_id, event_id, time)
    SELECT source_id, event_id, time FROM fresh
), new AS (
    INSERT INTO {TABLES[feed]} ({cols})
    SELECT {cols} FROM fresh
    RETURNING {", ".join(returned)}
),{_QUEUE if feed == "service" and queue_dossiers else ""} points AS (
    SELECT n.time, n.commune_code, n.province_code, m.metric, m.value
    FROM new n CROSS JOIN LATERAL {_METRICS[feed]} AS m (metric, value)
    WHERE m.metric IS NOT NULL AND m.value IS NOT NULL
), agg AS (
    SELECT time_bucket('1 minute', time) AS bucket, commune_code, metric,
           min(province_code) AS province_code, count(*) AS count, sum(value) AS sum,
           min(value) AS min, max(value) AS max, last(value, time) AS last,
           max(time) AS last_at
    FROM points GROUP BY 1, 2, 3
), up AS (
    INSERT INTO rollup_1m AS r (bucket, commune_code, metric, province_code, count, sum,
                                min, max, last, last_at)
    SELECT bucket, commune_code, metric, province_code, count, sum, min, max, last, last_at
    FROM agg
    ON CONFLICT (commune_code, metric, bucket) DO UPDATE SET
        count = r.count + EXCLUDED.count,
        sum = r.sum + EXCLUDED.sum,
        min = LEAST(r.min, EXCLUDED.min),
        max = GREATEST(r.max, EXCLUDED.max),
        last = CASE WHEN EXCLUDED.last_at >= r.last_at THEN EXCLUDED.last ELSE r.last END,
        last_at = GREATEST(r.last_at, EXCLUDED.last_at),
        updated_at = clock_timestamp()
    RETURNING r.*
), hours AS (
    INSERT INTO rollup_1h_pending (hour)
    SELECT DISTINCT time_bucket('1 hour', bucket) FROM agg
    ON CONFLICT DO NOTHING
), counts AS (
    SELECT count(*) AS inserted, count(*) FILTER (WHERE late) AS late FROM new
)
SELECT counts.inserted, counts.late, {window_cols}
FROM counts LEFT JOIN up ON true
"""


_QUEUE: Final = """ queued AS (  -- the dossier fold's queue (migration 0125), set-based
    INSERT INTO dossier_events_pending
    SELECT txid_current(), n.time, n.source_id || ' ' || n.event_id, n.agency, n.dossier_id,
           n.commune_code, n.province_code, n.procedure_code, n.channel, n.status, n.due_at,
           n.resolved_at, n.fee_bearing, n.paid_online, n.digitised
    FROM new n
),"""
"""Service rows the statement stored, queued for the statement-level fold trigger, which
fires after the whole statement (so it sees them); replaces 0026's per-row trigger for the
sink (:data:`DOSSIER_QUEUE_BY_STATEMENT`)."""


def touch_sources(feed: Feed) -> str:
    """Register sources and move their ``last_seen`` forward (absence rules read it)."""
    return f"""
INSERT INTO sources AS s (source_id, department, feed, commune_code, lat, lon,
                          first_seen, last_seen)
SELECT source_id, min(department), '{feed}', min(commune_code), avg(lat), avg(lon),
       min(time), max(time)
FROM {staging_table(feed)} GROUP BY source_id
ON CONFLICT (source_id) DO UPDATE SET
    last_seen = GREATEST(s.last_seen, EXCLUDED.last_seen),
    last_received_at = now(),
    commune_code = COALESCE(EXCLUDED.commune_code, s.commune_code)
"""
