"""End-to-end pipeline benchmark and the raw ceiling measured beside it, in one run.

- ceiling: a bare aiokafka consumer reads the preloaded messages, decodes them with
  orjson and COPYs rows into the same hypertable: what the machine can do with no
  framework, no validation and no geo join.
- drain: the same messages, preloaded, through one real ``ioc worker`` process: the
  sustained rate is events stored per second from first to last stored row; the
  worker's CPU time and peak RSS come from /proc.
- rates: a producer at rising fixed rates with occurred_at = now; for each step the
  p50/p99 of stored_at - occurred_at from the database, and whether the pipeline kept up.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import psycopg
from iocdev.sandbox import Pipeline, pipeline
from kafka import KafkaProducer

from benchmarks.workload import Workload, stamp
from ioc.core.settings import Settings

CLK_TCK = os.sysconf("SC_CLK_TCK")


@dataclass
class ProcStats:
    cpu_s: float
    peak_rss_mb: float


def proc_stats(pid: int) -> ProcStats:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    cpu = (int(fields[11]) + int(fields[12])) / CLK_TCK
    peak = 0.0
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            peak = int(line.split()[1]) / 1024
    return ProcStats(cpu, peak)


def postgres_cpu_s() -> float:
    """CPU seconds used so far by every PostgreSQL process on this machine."""
    total = 0.0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            text = stat.read_text()
        except OSError:
            continue
        if "(postgres)" not in text:
            continue
        fields = text.rsplit(")", 1)[1].split()
        total += (int(fields[11]) + int(fields[12])) / CLK_TCK
    return total


def preload(pipe: Pipeline, workload: Workload, n_events: int) -> int:
    producer = KafkaProducer(bootstrap_servers=pipe.settings.kafka.bootstrap_servers,
                             acks="all", linger_ms=20, batch_size=1_000_000,
                             max_request_size=2_000_000, compression_type=None)
    total = 0
    for feed, key, value, n in workload.messages(n_events):
        producer.send(pipe.topics[feed], key=key, value=value)
        total += n
    producer.flush()
    producer.close()
    return total


async def _ceiling(pipe: Pipeline, n_events: int) -> float:
    from aiokafka import AIOKafkaConsumer

    consumer = AIOKafkaConsumer(
        pipe.topics["sensor"], pipe.topics["traffic"], pipe.topics["service"],
        bootstrap_servers=pipe.settings.kafka.bootstrap_servers,
        group_id=f"ceiling-{uuid.uuid4().hex[:8]}", auto_offset_reset="earliest",
        enable_auto_commit=False, max_partition_fetch_bytes=8 * 1024 * 1024)
    await consumer.start()
    seen = 0
    started = time.perf_counter()
    try:
        async with await psycopg.AsyncConnection.connect(pipe.conninfo) as conn:
            while seen < n_events:
                batches = await consumer.getmany(timeout_ms=1000, max_records=2000)
                rows = []
                for messages in batches.values():
                    for m in messages:
                        for e in orjson.loads(m.value):
                            loc = e.get("location") or {}
                            rows.append((e["occurred_at"], e["event_id"], e["source_id"],
                                         e["department"], e.get("commune_code") or "x", "01",
                                         "pm25", 1.0, "ug/m3", loc.get("lat"), loc.get("lon"),
                                         "raw", False, e["occurred_at"]))
                if not rows:
                    continue
                async with conn.cursor() as cur, cur.copy(
                        b"COPY sensor_readings (time, event_id, source_id, department, "
                        b"commune_code, province_code, metric, value, unit, lat, lon, geo, "
                        b"late, received_at) FROM STDIN") as copy:
                    for row in rows:
                        await copy.write_row(row)
                await conn.commit()
                await consumer.commit()
                seen += len(rows)
    finally:
        await consumer.stop()
    return seen / (time.perf_counter() - started)


def ceiling(settings: Settings, tmp: Path, n_events: int) -> dict[str, Any]:
    with pipeline(settings, tmp) as pipe:
        preload(pipe, Workload(seed=5, tag="c"), n_events)
        rate = asyncio.run(_ceiling(pipe, n_events))
    return {"events": n_events, "events_per_s": round(rate)}


def drain(settings: Settings, tmp: Path, n_events: int, workers: int = 1) -> dict[str, Any]:
    with pipeline(settings, tmp, partitions=6) as pipe:
        if workers == 1:  # a pure drain of a preloaded backlog
            preload(pipe, Workload(seed=6, tag="d"), n_events)
            procs = [pipe.start_worker()]
        else:  # let the group settle first, so no rebalance lands inside the measurement
            procs = [pipe.start_worker() for _ in range(workers)]
            time.sleep(12)
            preload(pipe, Workload(seed=6, tag="d"), n_events)
        count_sql = ("SELECT (SELECT count(*) FROM sensor_readings) + "
                     "(SELECT count(*) FROM traffic_observations) + "
                     "(SELECT count(*) FROM service_events)")
        first_at = None
        first_n = 0
        cpu_at_first = 0.0
        pg_at_first = 0.0
        peak = ProcStats(0, 0)
        deadline = time.monotonic() + 600
        stored = 0
        while time.monotonic() < deadline:
            stored = pipe.query(count_sql)[0][0]
            now = time.perf_counter()
            stats = [proc_stats(p.pid) for p in procs if p.poll() is None]
            if stats:
                peak = ProcStats(sum(s.cpu_s for s in stats), max(s.peak_rss_mb for s in stats))
            if stored and first_at is None:
                first_at, first_n, cpu_at_first = now, stored, peak.cpu_s
                pg_at_first = postgres_cpu_s()
            if stored >= n_events:
                break
            time.sleep(0.2)
        elapsed = time.perf_counter() - (first_at or time.perf_counter())
        rate = (stored - first_n) / elapsed if first_at and elapsed > 0 else 0.0
        busy = peak.cpu_s - cpu_at_first
        pg_busy = postgres_cpu_s() - pg_at_first if first_at else 0.0
        rollup_rows = pipe.query("SELECT count(*) FROM rollup_1m")[0][0]
    return {"events": n_events, "stored": stored, "workers": workers,
            "events_per_s": round(rate), "worker_cpu_s": round(busy, 1),
            "worker_cpu_share": round(busy / elapsed, 2) if elapsed else None,
            "postgres_cpu_share": round(pg_busy / elapsed, 2) if elapsed else None,
            "worker_peak_rss_mb": round(peak.peak_rss_mb), "rollup_rows": rollup_rows}


PROBE_RULE = """
groups:
  - name: bench
    rules:
      - id: bench_probe_pm10
        feed: sensor
        metric: pm10
        scope: commune
        aggregate: max
        window: 1m
        op: ">"
        threshold: 900
        clear: 100
        for: 0m
        severity: info
        labels: { bench: "probe" }
        annotations:
          summary: { vi: "probe {commune}", en: "probe {commune_en}" }
"""

LATENCY_SQL = """
SELECT count(*), percentile_cont(0.5) WITHIN GROUP (ORDER BY lat_s),
       percentile_cont(0.99) WITHIN GROUP (ORDER BY lat_s)
FROM (SELECT extract(epoch FROM stored_at - time) AS lat_s FROM sensor_readings
      WHERE time >= %(a)s AND time < %(b)s
      UNION ALL SELECT extract(epoch FROM stored_at - time) FROM traffic_observations
      WHERE time >= %(a)s AND time < %(b)s
      UNION ALL SELECT extract(epoch FROM stored_at - time) FROM service_events
      WHERE time >= %(a)s AND time < %(b)s) x
"""

ALERT_LATENCY_SQL = """
SELECT count(*), percentile_cont(0.5) WITHIN GROUP (ORDER BY lat_s),
       percentile_cont(0.99) WITHIN GROUP (ORDER BY lat_s)
FROM (SELECT extract(epoch FROM t.recorded_at - p.time) AS lat_s
      FROM sensor_readings p
      JOIN alert_transitions t ON t.rule_id = 'bench_probe_pm10' AND t.to_state = 'firing'
       AND t.labels ->> 'commune_code' = p.commune_code
       AND t.at >= time_bucket('1 minute', p.time)
      WHERE p.metric = 'pm10' AND p.value > 900 AND p.time >= %(a)s AND p.time < %(b)s) x
"""


def rates(settings: Settings, tmp: Path, steps: list[int], seconds: float = 20.0
          ) -> list[dict[str, Any]]:
    """Rising fixed rates; per step p50/p99 occurred_at->stored and ->alert (probes)."""
    from benchmarks.workload import places

    rules = tmp / "rules"
    rules.mkdir(parents=True, exist_ok=True)
    for f in (settings.resolve(settings.alerts.rules_dir)).glob("*.yaml"):
        (rules / f.name).write_text(f.read_text())
    (rules / "zz_bench.yaml").write_text(PROBE_RULE)
    communes = places(None)  # every probe in a commune that has no alert yet
    out = []
    with pipeline(settings, tmp, partitions=6) as pipe:
        worker = pipe.start_worker(extra_env={"IOC__ALERTS__RULES_DIR": str(rules)})
        time.sleep(8)
        producer = KafkaProducer(bootstrap_servers=settings.kafka.bootstrap_servers,
                                 acks="all", linger_ms=5, max_request_size=2_000_000)
        pool = Workload(seed=7).template_pool(500)
        run = 0
        probe = 0
        for rate in steps:
            step_start = datetime.now(UTC) - timedelta(milliseconds=1)
            sent = 0
            t0 = time.perf_counter()
            next_probe = 0.0
            while (elapsed := time.perf_counter() - t0) < seconds:
                due = int(rate * elapsed) - sent
                stamp_at = datetime.now(UTC)
                while due > 0:
                    feed, key, value, n = pool[run % len(pool)]
                    run += 1
                    producer.send(pipe.topics[feed], key=key, value=stamp(value, run, stamp_at))
                    sent += n
                    due -= n
                if elapsed >= next_probe:  # one alert-raising reading in a fresh commune
                    code = communes[probe % len(communes)][0]
                    probe += 1
                    next_probe += 0.2
                    source = f"probe-{code}"
                    event = {"schema_version": 1, "event_id": f"probe-{probe}",
                             "source_id": source, "department": "bench",
                             "feed": "sensor", "occurred_at": datetime.now(UTC).isoformat(),
                             "commune_code": code,
                             "body": {"metric": "pm10", "value": 999.0, "unit": "ug/m3"}}
                    producer.send(pipe.topics["sensor"], key=source.encode(),
                                  value=orjson.dumps([event]))
                producer.flush()
                time.sleep(0.02)
            step_end = datetime.now(UTC)
            time.sleep(3.0)  # grace for the tail
            window = {"a": step_start, "b": step_end}
            stored, p50, p99 = pipe.query(LATENCY_SQL, window)[0]
            alerts, a50, a99 = pipe.query(ALERT_LATENCY_SQL, window)[0]
            kept_up = stored >= 0.98 * sent and (p99 or 99) < 5.0
            row = {"target_rate": rate, "sent": sent, "achieved_rate": round(sent / seconds),
                   "stored_within_3s_grace": stored,
                   "p50_stored_s": round(p50 or 0, 3), "p99_stored_s": round(p99 or 0, 3),
                   "alerts": alerts, "p50_alert_s": round(a50 or 0, 3),
                   "p99_alert_s": round(a99 or 0, 3), "kept_up": kept_up,
                   "worker_peak_rss_mb": round(proc_stats(worker.pid).peak_rss_mb)}
            out.append(row)
            print(f"  rate {rate:>6}/s: sent {sent}, stored {stored}, "
                  f"stored p50/p99 {row['p50_stored_s']}/{row['p99_stored_s']} s, "
                  f"alert p50/p99 {row['p50_alert_s']}/{row['p99_alert_s']} s ({alerts}), "
                  f"{'kept up' if kept_up else 'FELL BEHIND'}", flush=True)
            if not kept_up:
                break
        producer.close()
        with contextlib.suppress(Exception):
            pipe.stop_workers()
    return out


def sink_rate(settings: Settings, tmp: Path, n_events: int = 100_000) -> dict[str, Any]:
    """The TimescaleSink alone: records already decoded and enriched."""
    from benchmarks.workload import places
    from ioc.core.events.record import Record
    from streams.sinks.timescale import TimescaleSink

    communes = places()
    now = datetime.now(UTC)
    records = [Record(event_id=f"s{i}", source_id=f"src-{i % 1000}", department="d",
                      feed="sensor", occurred_at=now.replace(microsecond=i % 1_000_000),
                      received_at=time.time(), commune_code=communes[i % len(communes)][0],
                      province_code="01", geo="code", metric="pm25", value=float(i % 90),
                      unit="ug/m3") for i in range(n_events)]

    async def go(pipe: Pipeline) -> float:
        import psycopg

        sink = TimescaleSink()
        async with await psycopg.AsyncConnection.connect(pipe.conninfo) as conn:
            await sink.prepare(conn)
            started = time.perf_counter()
            for i in range(0, n_events, 10_000):
                chunk = records[i:i + 10_000]
                async with conn.transaction():
                    await sink.write(conn, chunk, [False] * len(chunk))
            return n_events / (time.perf_counter() - started)

    with pipeline(settings, tmp) as pipe:
        rate = asyncio.run(go(pipe))
    return {"rows": n_events, "batch": 10_000, "rows_per_s": round(rate)}
