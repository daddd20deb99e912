"""A scale-out model computed from the costs one `make bench` run measured.

Inputs are per-event costs from the drains (CPU-seconds per 1,000 events of the worker,
PostgreSQL and Kafka; bytes per event on disk and in the WAL); the assumptions are the
constants below, printed with the model so they can be argued with.
"""

from __future__ import annotations

import math
from typing import Any

PROVINCE_RATE = 5_000
"""Events per second a province sends (issue 18), around the clock."""
PROVINCES = 34
UTILISATION = 0.6
"""Planned busy share of every core: headroom for bursts, catch-up after an outage and
rebalances."""
WORKER_CORES = 1.0
"""A worker is one process with one event loop: at most one core."""
KAFKA_REPLICATION = 3
"""Production topics are replicated three times; the bench broker has one replica, so its
measured CPU is multiplied by this."""
RETENTION_DAYS = {"raw": 90, "rollup_1m": 400}
"""Raw sensor/traffic rows 90 days, one-minute rollups 400 days (migration 0004)."""
WINDOWS_PER_MINUTE = 126 * 12
"""Rollup windows a province fills per minute: its communes (Hà Nội: 126) times about 12
metrics per commune."""
HOT_CHUNK_HOURS = 24
"""Chunk interval of the raw hypertables (migration 0001): the current chunk and its
unique index must stay in memory for inserts to stay fast."""
NODE_CORES = 64
NODE_MEMORY_GB = 512
"""The largest single PostgreSQL server assumed practical to run and fail over."""


def _costs(r: dict[str, Any], key: str) -> dict[str, float] | None:
    d = r.get(key)
    if not d or not d.get("cpu_s_per_1000_events"):
        return None
    c = dict(d["cpu_s_per_1000_events"])
    c.update({f"bytes_{k}": float(v) for k, v in d.get("storage_bytes_per_event", {}).items()})
    return c


def model(r: dict[str, Any]) -> dict[str, Any] | None:
    """Province and national sizing for one-event messages (the dearer case: kcat users
    and most producers) and for envelopes."""
    out: dict[str, Any] = {}
    for kind, key in (("one_event", "one_event_1_worker"), ("envelopes", "envelopes_1_worker")):
        c = _costs(r, key)
        if c is None:
            continue
        per_s = PROVINCE_RATE / 1000
        worker_cores = per_s * c["worker"] / UTILISATION
        workers = max(1, math.ceil(worker_cores / WORKER_CORES))
        pg_cores = per_s * c["postgres"] / UTILISATION
        kafka_cores = per_s * c["kafka"] * KAFKA_REPLICATION / UTILISATION
        raw_b = c.get("bytes_raw", 0.0)
        wal_b = c.get("bytes_wal", 0.0)
        window_b = c.get("bytes_rollup_1m_per_window", 0.0)
        day = 86_400
        raw_gb_day = PROVINCE_RATE * day * raw_b / 1e9
        rollup_gb_day = WINDOWS_PER_MINUTE * 1440 * window_b / 1e9
        out[kind] = {
            "worker_cores": round(worker_cores, 2), "workers": workers,
            "partitions": max(6, 2 * workers),
            "postgres_cores": round(pg_cores, 2), "kafka_cores": round(kafka_cores, 2),
            "raw_gb_per_day": round(raw_gb_day, 1),
            "db_size_tb": round((raw_gb_day * RETENTION_DAYS["raw"]
                                 + rollup_gb_day * RETENTION_DAYS["rollup_1m"]) / 1000, 1),
            "hot_chunk_gb": round(raw_gb_day * HOT_CHUNK_HOURS / 24, 1),
            "wal_mb_per_s": round(PROVINCE_RATE * wal_b / 1e6, 1),
            "national": {
                "rate": PROVINCE_RATE * PROVINCES,
                "workers": workers * PROVINCES,
                "kafka_cores": round(kafka_cores * PROVINCES, 1),
                "postgres_cores": round(pg_cores * PROVINCES, 1),
                "raw_tb_per_day": round(raw_gb_day * PROVINCES / 1000, 2),
                "db_size_pb": round((raw_gb_day * RETENTION_DAYS["raw"]
                                     + rollup_gb_day * RETENTION_DAYS["rollup_1m"])
                                    * PROVINCES / 1e6, 2),
                "hot_chunk_gb": round(raw_gb_day * PROVINCES * HOT_CHUNK_HOURS / 24, 0),
                "wal_mb_per_s": round(PROVINCE_RATE * PROVINCES * wal_b / 1e6, 0),
            },
        }
    return out or None


def render(r: dict[str, Any]) -> list[str]:
    m = model(r)
    if not m:
        return []
    lines = [
        "",
        f"Scale-out model from this run's costs (a province at {PROVINCE_RATE:,} events/s; "
        f"{PROVINCES} provinces), cores planned at {UTILISATION:.0%} busy:",
        "",
        "| | one event per message | 100-event envelopes |",
        "|---|---|---|",
    ]
    one, env = m.get("one_event", {}), m.get("envelopes", {})

    def row(label: str, key: str, fmt: str = "{}") -> None:
        a = fmt.format(one[key]) if key in one else "—"
        b = fmt.format(env[key]) if key in env else "—"
        lines.append(f"| {label} | {a} | {b} |")

    def nrow(label: str, key: str, fmt: str = "{}") -> None:
        a = fmt.format(one["national"][key]) if one else "—"
        b = fmt.format(env["national"][key]) if env else "—"
        lines.append(f"| {label} | {a} | {b} |")

    row("province: worker cores", "worker_cores")
    row("province: workers (one core each)", "workers")
    row("province: partitions per raw topic and for ioc.enriched.v1", "partitions")
    row(f"province: Kafka broker cores (replication {KAFKA_REPLICATION})", "kafka_cores")
    row("province: PostgreSQL cores", "postgres_cores")
    row("province: raw rows per day (GB, heap + indexes)", "raw_gb_per_day")
    row(f"province: hot raw chunk ({HOT_CHUNK_HOURS} h, GB) to keep in memory",
        "hot_chunk_gb")
    row(f"province: database size (TB; raw {RETENTION_DAYS['raw']} d, rollups "
        f"{RETENTION_DAYS['rollup_1m']} d)", "db_size_tb")
    row("province: WAL (MB/s)", "wal_mb_per_s")
    nrow("national: events/s", "rate", "{:,}")
    nrow("national: workers", "workers")
    nrow("national: Kafka broker cores", "kafka_cores")
    nrow("national: PostgreSQL cores (one database)", "postgres_cores")
    nrow("national: raw TB per day", "raw_tb_per_day")
    nrow(f"national: hot raw chunk in one database (GB; a node has {NODE_MEMORY_GB})",
         "hot_chunk_gb")
    nrow("national: database size (PB)", "db_size_pb")
    nrow("national: WAL of one primary (MB/s)", "wal_mb_per_s")
    return lines
