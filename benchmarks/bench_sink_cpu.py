"""Database CPU per stored row of the sink statement (identity claim, raw insert, rollup
upsert, hour marks), measured on the sink connection's own PostgreSQL backend.

Wall-clock rates on a shared 2-core machine swing 3x with other load; the backend's CPU
seconds (``/proc/<pid>/stat`` of ``pg_backend_pid()``) do not, so A/B comparisons of the
sink SQL use this figure.

    python -c "from benchmarks.bench_sink_cpu import run; print(run())"
"""

from __future__ import annotations

import asyncio
import os
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psycopg

from ioc.core.events.record import Record
from ioc.core.settings import get_settings
from streams.sinks.timescale import TimescaleSink

_CLK_TCK = os.sysconf("SC_CLK_TCK")


def _cpu_s(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / _CLK_TCK


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
        row = await (await conn.execute("SELECT pg_backend_pid()")).fetchone()
        pid = int(row[0]) if row else 0
        sink = TimescaleSink()
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
