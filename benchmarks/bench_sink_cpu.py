"""Database CPU per stored row of the sink statements (identity claim, raw insert, rollup
upsert, hour marks), measured on the sink connection's own PostgreSQL backend.

Wall-clock rates on a shared 2-core machine swing 3x with other load; the backend's CPU
seconds (``/proc/<pid>/stat`` of ``pg_backend_pid()``) do not, so A/B comparisons of the
sink SQL use this figure.

    python -c "from benchmarks.bench_sink_cpu import run; print(run())"
    python -c "from benchmarks.bench_sink_cpu import split; print(split())"
    python -c "from benchmarks.bench_sink_cpu import parts; print(parts())"
    python -c "from benchmarks.bench_sink_cpu import service_parts; print(service_parts())"

``run`` writes sensor rows only (the historical figure); ``split`` writes the drain
benchmark's mix (70 % sensor, 20 % traffic, 10 % service, 100-event envelopes per source,
occurred_at spread over four minutes) and reports backend CPU per row for each statement
of a batch, then the plan nodes of one more batch's insert-and-roll-up statements
(``EXPLAIN (ANALYZE, BUFFERS)``, rolled back). ``parts`` splits the sensor statement by
subtraction (the statement cut after the anti-join, the key insert, the raw insert; each
cut in a fresh database), which per-node EXPLAIN timings overstate for per-row nodes.
``service_parts`` does the same for the service statement, the dossier fold (the statement
trigger, which ``split`` counts in the statement) cut after each of its steps too.
"""

from __future__ import annotations

import asyncio
import os
import random
import time
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg

from ioccore.events.record import FEEDS, Feed, Record
from ioccore.settings import get_settings
from streams.sinks import statements
from streams.sinks.timescale import TimescaleSink, rows_of

_CLK_TCK = os.sysconf("SC_CLK_TCK")


def _cpu_s(pid: int) -> float:
    """CPU seconds of ``pid``: nanoseconds on CPU from schedstat (``stat`` counts 10 ms
    ticks, too coarse for one statement), else user + system ticks."""
    try:
        return int(Path(f"/proc/{pid}/schedstat").read_text().split()[0]) / 1e9
    except (OSError, IndexError, ValueError):
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / _CLK_TCK


async def _backend(conn: psycopg.AsyncConnection[Any]) -> int:
    row = await (await conn.execute("SELECT pg_backend_pid()")).fetchone()
    return int(row[0]) if row else 0


async def _write(conninfo: str, n: int, batch: int) -> tuple[float, float]:
    now = datetime.now(UTC)
    records = [Record(event_id=f"s{i}", source_id=f"src-{i % 1000}", department="d",
                      feed="sensor", occurred_at=now.replace(microsecond=i % 1_000_000),
                      received_at=time.time(), commune_code=f"{i % 300:05d}",
                      province_code="01", geo="code", metric="pm25", value=float(i % 90),
                      unit="ug/m3") for i in range(n)]
    conn = await psycopg.AsyncConnection.connect(conninfo)
    try:
        await TimescaleSink.prepare(conn)
        pid = await _backend(conn)
        await conn.commit()  # else each batch's transaction() is a savepoint of one
        sink = TimescaleSink()  # transaction that never ends, and staging keeps growing
        cpu0, wall0 = _cpu_s(pid), time.perf_counter()
        for i in range(0, n, batch):
            chunk = records[i:i + batch]
            async with conn.transaction():
                await sink.write(conn, chunk, [False] * len(chunk))
        return _cpu_s(pid) - cpu0, time.perf_counter() - wall0
    finally:
        await conn.close()


def run(n: int = 100_000, batch: int = 10_000) -> dict[str, Any]:
    from iocdev.sandbox import fresh_database

    with fresh_database(get_settings(), "ioc_sinkcpu") as (_, conninfo):
        cpu, wall = asyncio.run(_write(conninfo, n, batch))
    return {"rows": n, "batch": batch, "backend_cpu_s": round(cpu, 3),
            "backend_cpu_us_per_row": round(cpu / n * 1e6, 2), "wall_s": round(wall, 2)}


def mixed_records(n: int, seed: int = 7, span_s: float = 240.0) -> list[Record]:
    """The drain benchmark's mix as decoded records (benchmarks/workload.py's shapes)."""
    rng = random.Random(seed)
    start = datetime.now(UTC) - timedelta(seconds=span_s)
    out: list[Record] = []
    while len(out) < n:
        src = rng.randrange(5000)
        feed: Feed = "sensor" if src % 10 < 7 else ("traffic" if src % 10 < 9 else "service")
        code = f"{src % 300:05d}"
        for _ in range(min(100, n - len(out))):
            i, r = len(out), rng.random()
            at = start + timedelta(seconds=span_s * i / n)
            common: dict[str, Any] = {
                "event_id": f"e{i}", "source_id": f"src-{src}", "department": f"d-{feed}",
                "feed": feed, "occurred_at": at, "received_at": time.time(),
                "commune_code": code, "province_code": "01", "geo": "point",
                "lat": 21.0, "lon": 105.8}
            if feed == "sensor":
                out.append(Record(**common, metric="pm25", value=round(20 + 80 * r, 1),
                                  unit="ug/m3"))
            elif feed == "traffic":
                out.append(Record(**common, segment_id=f"seg-{src}",
                                  vehicle_count=int(50 * r), avg_speed_kmh=10 + 40 * r,
                                  occupancy=r))
            else:
                resolved = r < 0.4
                out.append(Record(**common, dossier_id=f"d{i}", procedure_code="1.001",
                                  agency="UBND", channel="online" if r < 0.9 else "offline",
                                  status="resolved" if resolved else "received",
                                  due_at=at + timedelta(days=3),
                                  resolved_at=at if resolved else None,
                                  fee_bearing=False, digitised=True))
    return out


async def _split(conninfo: str, records: Sequence[Record], batch: int, queue_dossiers: bool
                 ) -> tuple[dict[str, float], dict[str, int], list[str]]:
    cpu: dict[str, float] = {}
    rows: dict[str, int] = dict.fromkeys(FEEDS, 0)
    conn = await psycopg.AsyncConnection.connect(conninfo)
    try:
        await TimescaleSink.prepare(conn)
        pid = await _backend(conn)

        async def timed(key: str, sql: str) -> None:
            before = _cpu_s(pid)
            await conn.execute(sql.encode())
            cpu[key] = cpu.get(key, 0.0) + _cpu_s(pid) - before

        async def stage(feed: Feed, chunk: Sequence[Record]) -> None:
            before = _cpu_s(pid)
            async with conn.cursor() as cur, cur.copy(
                    statements.copy_into_staging(feed).encode()) as copy:
                copy.set_types(list(statements.TYPES[feed]))
                for row in rows_of(feed, chunk, [False] * len(chunk)):
                    await copy.write_row(row)
            cpu[f"{feed}: COPY into staging"] = (cpu.get(f"{feed}: COPY into staging", 0.0)
                                                 + _cpu_s(pid) - before)

        plans: list[str] = []
        for i in range(0, len(records), batch):
            chunk = records[i:i + batch]
            last = i + batch >= len(records)
            async with conn.transaction(force_rollback=last):
                for feed in FEEDS:
                    mine = [r for r in chunk if r.feed == feed]
                    if not mine:
                        continue
                    rows[feed] += len(mine)
                    await stage(feed, mine)
                    await timed(f"{feed}: sources", statements.touch_sources(feed))
                    if feed == "service" and queue_dossiers:
                        await conn.execute(statements.DOSSIER_QUEUE_BY_STATEMENT.encode())
                    sql = statements.insert_and_roll_up(feed, queue_dossiers=queue_dossiers)
                    if last:  # the plan of one more batch (rolled back, not counted)
                        rows[feed] -= len(mine)
                        cur = await conn.execute(
                            ("EXPLAIN (ANALYZE, BUFFERS, TIMING) "
                             + sql).encode())
                        plans.append(f"-- {feed}, {len(mine)} rows\n" + "\n".join(
                            str(r[0]) for r in await cur.fetchall()))
                    else:
                        await timed(f"{feed}: insert and roll up", sql)
            if not last:
                before = _cpu_s(pid)
                await conn.commit()
                cpu["commit"] = cpu.get("commit", 0.0) + _cpu_s(pid) - before
        return cpu, rows, plans
    finally:
        await conn.close()


def split(n: int = 110_000, batch: int = 10_000, queue_dossiers: bool = True
          ) -> dict[str, Any]:
    """Backend CPU per row (µs) of each statement, per feed, on the drain's mix.

    ``queue_dossiers=False``: service rows queued for the dossier fold by migration 0026's
    row trigger, as before migration 0125 (for an A/B in one session)."""
    from iocdev.sandbox import fresh_database

    records = mixed_records(n)
    with fresh_database(get_settings(), "ioc_sinksplit") as (_, conninfo):
        cpu, rows, plans = asyncio.run(_split(conninfo, records, batch, queue_dossiers))
    total = sum(rows.values())
    per_row = {k: round(v / (rows[k.split(":")[0]] if ":" in k else total) * 1e6, 2)
               for k, v in sorted(cpu.items())}
    return {"rows": rows, "batch": batch,
            "backend_cpu_us_per_row_all": round(sum(cpu.values()) / total * 1e6, 2),
            "us_per_row_of_feed": per_row, "plans": "\n\n".join(plans)}


def _cuts() -> dict[str, str]:
    """The sensor statement cut after each of its parts (the last is the whole)."""
    full = statements.insert_and_roll_up("sensor")
    head = full[:full.index("), points AS (")]
    return {"anti-join": head[:head.index("), claimed AS (")] + ") SELECT count(*) FROM fresh",
            "+ key insert": head[:head.index("), new AS (")] + ") SELECT count(*) FROM fresh",
            "+ raw insert": head + ") SELECT count(*) FROM new",
            "+ rollup (the whole statement)": full}


async def _cut(conninfo: str, records: Sequence[Record], batch: int, sql: str,
               feed: Feed = "sensor", *, first: str | None = None,
               after: str | None = None) -> float:
    """Backend CPU per row of ``sql`` over ``records`` (all of ``feed``) staged in
    ``batch``-row transactions; ``first`` runs before it in each transaction and
    ``after`` after it, both unmetered."""
    conn = await psycopg.AsyncConnection.connect(conninfo)
    try:
        await TimescaleSink.prepare(conn)
        pid = conn.info.backend_pid  # no query: each batch's transaction must commit
        cpu, rows = 0.0, 0
        for n, i in enumerate(range(0, len(records), batch)):
            chunk = records[i:i + batch]
            async with conn.transaction():
                async with conn.cursor() as cur, cur.copy(
                        statements.copy_into_staging(feed).encode()) as copy:
                    copy.set_types(list(statements.TYPES[feed]))
                    for row in rows_of(feed, chunk, [False] * len(chunk)):
                        await copy.write_row(row)
                if first is not None:
                    await conn.execute(first.encode())
                before = _cpu_s(pid)
                await conn.execute(sql.encode())
                spent = _cpu_s(pid) - before
                if after is not None:
                    await conn.execute(after.encode())
                if n:  # the first batch warms the caches
                    cpu += spent
                    rows += len(chunk)
        return cpu / max(1, rows)
    finally:
        await conn.close()


def parts(n: int = 110_000, batch: int = 7_000) -> dict[str, float]:
    """Backend CPU per sensor row (µs) of the sensor statement cut after each part."""
    from iocdev.sandbox import fresh_database

    records = [r for r in mixed_records(n) if r.feed == "sensor"]
    out: dict[str, float] = {}
    for name, sql in _cuts().items():
        with fresh_database(get_settings(), "ioc_sinkparts") as (_, conninfo):
            out[name] = round(asyncio.run(_cut(conninfo, records, batch, sql)) * 1e6, 2)
    return out


_FOLD_STOP = "    DELETE FROM dossier_events_pending WHERE txid = tx;\n    RETURN;\n"


def _service_cuts() -> dict[str, tuple[str, str | None]]:
    """The service statement cut after each part: (SQL, where the fold returns early)."""
    full = statements.insert_and_roll_up("service")
    head = full[:full.index(" points AS (")].rstrip().rstrip(",")  # ends with queued
    plain = statements.insert_and_roll_up("service", queue_dossiers=False)
    bare = plain[:plain.index("), points AS (")]
    queued = head + " SELECT count(*) FROM new"
    return {
        "anti-join": (bare[:bare.index("), claimed AS (")] + ") SELECT count(*) FROM fresh",
                      None),
        "+ key insert": (bare[:bare.index("), new AS (")] + ") SELECT count(*) FROM fresh", None),
        "+ raw insert": (bare + ") SELECT count(*) FROM new", None),
        "+ queue insert (fold returns at once)": (queued, "    IF NOT EXISTS"),
        "+ fold 1 (the batch folded)": (queued, "    -- 2. Dossiers new"),
        "+ fold 2-3 (dossiers written)": (queued, "    -- 4. The counts"),
        "+ fold 4 (KPI counts: the whole fold)": (queued, None),
        "+ rollup (the whole statement)": (full, None),
    }


def _stop_fold(owner_conninfo: str, before: str) -> None:
    """Make the fold return (its queue emptied) before the line starting ``before``."""
    with psycopg.connect(owner_conninfo, autocommit=True) as conn:
        row = conn.execute("SELECT prosrc FROM pg_proc WHERE proname = 'dossiers_fold_pending'"
                           ).fetchone()
        assert row is not None
        src = str(row[0])
        at = src.index(before)
        stop = "    RETURN;\n" if before == "    IF NOT EXISTS" else _FOLD_STOP
        conn.execute(("CREATE OR REPLACE FUNCTION dossiers_fold_pending() RETURNS void"
                      " LANGUAGE plpgsql AS $fn$" + src[:at] + stop + src[at:] + "$fn$"
                      ).encode())


def service_parts(n: int = 220_000, batch: int = 1_000) -> dict[str, float]:
    """Backend CPU per service row (µs) of the service statement cut after each part
    (1,000-row batches: the service share of split's 10,000), each cut in a fresh database.
    The cuts before the rollup return ``count(*)``; fold cuts replace the fold function."""
    from iocdev.sandbox import fresh_database

    settings = get_settings()
    records = [r for r in mixed_records(n) if r.feed == "service"]
    out: dict[str, float] = {}
    for name, (sql, stop) in _service_cuts().items():
        with fresh_database(settings, "ioc_sinkparts") as (db, conninfo):
            if stop is not None:
                _stop_fold(settings.database.owner_conninfo(dbname=db), stop)
            out[name] = round(asyncio.run(_cut(
                conninfo, records, batch, sql, "service",
                first=statements.DOSSIER_QUEUE_BY_STATEMENT,
                after="DELETE FROM dossier_events_pending")) * 1e6, 2)  # cuts' leftovers
    return out


if __name__ == "__main__":
    import json

    result = split()
    plans = result.pop("plans")
    print(json.dumps(result, indent=2))
    print(plans)
