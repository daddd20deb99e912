"""Stage 2 alone: wall time of ``Stage2.process`` per batch, batches back to back.

The rising-rate benchmark shows stage 2 busy most of the wall time at 10,000 events/s
while the worker uses a third of a core: a batch mostly waits on PostgreSQL (its work,
the commit's WAL flush, and every round trip's wake-up). This measures that wait without
Kafka or a producer: the drain's mix of records (``bench_sink_cpu.mixed_records``, all
feeds), ``per`` records a batch in six enriched messages, on a fresh database, and the
batch's phases (``ioc_stream_phase_seconds{stage="stage2"}``, mean ms a batch).

    python -c "from benchmarks.bench_stage2 import run; print(run())"
"""

from __future__ import annotations

import asyncio
import os
import random
import statistics
import time
from typing import Any

import msgspec
from prometheus_client import REGISTRY

from benchmarks.bench_sink_cpu import mixed_records
from ioccore.events.record import Record, encode_records
from ioccore.settings import get_settings
from streams.stage2 import Enriched, Stage2, make_pool

WARM_UP = 5
"""Batches left out of the figures (first sight of sources and communes, plans cached)."""


def _records(n: int) -> list[Record]:
    records = [msgspec.structs.replace(r, geo="code") if r.geo not in ("code", "unassigned")
               else r for r in mixed_records(n, span_s=60.0)]
    random.Random(3).shuffle(records)  # every batch of every feed, as a stream brings them
    return records


async def _batches(conninfo: str, records: list[Record], per: int) -> list[float]:
    stage = Stage2(make_pool(conninfo, check_idle_s=get_settings().database.check_idle_s),
                   allowed_lateness_s=1e9)
    times: list[float] = []
    try:
        for i in range(0, len(records), per):
            chunk = records[i:i + per]
            batch = [Enriched("bench", 0, i + j, encode_records(chunk[j::6])) for j in range(6)]
            began = time.perf_counter()
            await stage.process(batch)
            times.append(time.perf_counter() - began)
    finally:
        await stage.close()
    return times


def _phases() -> dict[str, list[float]]:
    out: dict[str, list[float]] = {}
    for family in REGISTRY.collect():
        if family.name != "ioc_stream_phase_seconds":
            continue
        for sample in family.samples:
            if sample.labels.get("stage") != "stage2" or sample.name.endswith("_bucket"):
                continue
            slot = out.setdefault(sample.labels["phase"], [0.0, 0.0])
            if sample.name.endswith("_sum"):
                slot[0] += sample.value
            elif sample.name.endswith("_count"):
                slot[1] += sample.value
    return out


def run(batches: int = 60, per: int = 300) -> dict[str, Any]:
    """Median and p90 ms a batch and mean ms per phase (warm-up batches included in the
    phases), with the load average, on a fresh database."""
    from iocdev.sandbox import fresh_database

    records = _records(batches * per)
    before = _phases()
    with fresh_database(get_settings(), "ioc_stage2bench") as (_, conninfo):
        times = sorted(asyncio.run(_batches(conninfo, records, per))[WARM_UP:])
    after = _phases()
    phases = {k: round((total - before.get(k, [0.0, 0.0])[0])
                       / max(1.0, count - before.get(k, [0.0, 0.0])[1]) * 1000, 2)
              for k, (total, count) in after.items()}
    return {"batches": len(times), "records_per_batch": per,
            "median_ms": round(statistics.median(times) * 1000, 2),
            "p90_ms": round(times[int(len(times) * 0.9)] * 1000, 2),
            "phase_mean_ms": phases, "load_average": round(os.getloadavg()[0], 2)}
