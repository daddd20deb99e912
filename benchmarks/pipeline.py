"""End-to-end pipeline benchmark and the raw ceiling measured beside it, in one run.

Every rate has one basis: events / (last durable row - first message read). The first
read is the earliest ``received_at`` stored (stage 1 stamps it when it takes the
message's batch; the Flink peer and the ceiling stamp it the same way) and the last
durable row the latest ``stored_at`` of a raw row or ``updated_at`` of a rollup. Worker
start-up (imports, geo index, group join) is reported beside it, not inside it.

- ceiling: a bare aiokafka consumer reads the preloaded messages, decodes them with
  orjson and COPYs rows into the same hypertable: what the machine can do with no
  framework, no validation, no geo join, no idempotency and no rollups.
- drain: the same kind of backlog, preloaded (100-event envelopes, or one event per
  message with ``commune_code`` set), through real ``ioc worker`` processes started
  together; CPU of the workers, PostgreSQL and Kafka over the measured interval, peak
  RSS (VmHWM) of the workers, and the rollups checked against the generator's tally.
- rates: a producer at rising fixed rates with occurred_at = now; for each step the
  p50/p99 of stored_at - occurred_at from the database, whether the pipeline kept up, and
  the alert latency of probe communes in the minute-close model (see :func:`rates`).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
import urllib.request
import uuid
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path
from typing import Any

import orjson
import psycopg
from iocdev.sandbox import Pipeline, pipeline

from benchmarks.cpu import (
    CpuMeter,
    descendants,
    kafka_pids,
    peak_rss_mb,
    postgres_backends,
    postgres_pids,
)
from benchmarks.preload import preload
from benchmarks.preload import producer as producer_for
from benchmarks.workload import Expected, Workload, stamp
from ioccore.settings import Settings

SPAN_S = 240.0
"""occurred_at of a preloaded backlog spreads over the last four minutes: several
one-minute windows per commune, all inside the allowed lateness (300 s)."""

BASIS_SQL = """
SELECT min(first_read), max(last_row) FROM (
    SELECT min(received_at) AS first_read, max(stored_at) AS last_row FROM sensor_readings
    UNION ALL SELECT min(received_at), max(stored_at) FROM traffic_observations
    UNION ALL SELECT min(received_at), max(stored_at) FROM service_events
    UNION ALL SELECT NULL, max(updated_at) FROM rollup_1m) x
"""
COUNT_SQL = ("SELECT (SELECT count(*) FROM sensor_readings) + "
             "(SELECT count(*) FROM traffic_observations) + "
             "(SELECT count(*) FROM service_events)")
ROLLUP_SQL = "SELECT commune_code, metric, bucket, count, sum, min, max FROM rollup_1m"
SIZE_SQL = """
SELECT (SELECT coalesce(sum(hypertable_size(h)), 0) FROM unnest(ARRAY[
            'sensor_readings', 'traffic_observations', 'service_events']::regclass[]) h),
       hypertable_size('rollup_1m')
"""
WAL_SQL = "SELECT pg_current_wal_lsn() - '0/0'::pg_lsn"
"""WAL position (cluster-wide: other databases' writes count too)."""


def _metrics_text(port: int) -> str | None:
    """A worker's ``/metrics`` page, or None when it does not answer (yet, or any more)."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=2) as r:
            return str(r.read().decode())
    except OSError:
        return None


def scrape_phases(port: int) -> dict[str, list[float]]:
    """The worker's ``ioc_stream_phase_seconds`` and ``ioc_stream_batch_messages`` as
    ``{"stage/phase": [sum, count]}`` (``"stage/messages"`` for batch sizes)."""
    out: dict[str, list[float]] = {}
    text = _metrics_text(port)
    if text is None:
        return out
    for line in text.splitlines():
        for prefix, fixed in (("ioc_stream_phase_seconds_", None),
                              ("ioc_stream_batch_messages_", "messages")):
            if not line.startswith(prefix):
                continue
            kind = line[len(prefix):].split("{", 1)[0]
            if kind not in ("sum", "count"):
                continue
            labels = dict(part.split("=", 1) for part in
                          line.split("{", 1)[1].split("}", 1)[0].split(","))
            key = f"{labels['stage'].strip(chr(34))}/" + (
                fixed or labels.get("phase", "").strip(chr(34)))
            slot = out.setdefault(key, [0.0, 0.0])
            slot[0 if kind == "sum" else 1] += float(line.rsplit(" ", 1)[1])
    return out


def phase_shares(before: dict[str, list[float]], after: dict[str, list[float]]
                 ) -> dict[str, dict[str, float]]:
    """Per phase over an interval: batches, mean ms a batch (mean messages for sizes)."""
    out: dict[str, dict[str, float]] = {}
    for key, (total, count) in after.items():
        b_total, b_count = before.get(key, [0.0, 0.0])
        n = count - b_count
        if n <= 0:
            continue
        mean = (total - b_total) / n
        out[key] = {"batches": n, ("mean" if key.endswith("/messages") else "mean_ms"):
                    round(mean if key.endswith("/messages") else mean * 1000, 2)}
    return out


def basis(pipe: Pipeline) -> tuple[datetime, datetime]:
    """(first message read, last durable row) of everything stored in the pipeline."""
    first, last = pipe.query(BASIS_SQL)[0]
    return first, last


async def _ceiling(pipe: Pipeline, n_events: int) -> None:
    from aiokafka import AIOKafkaConsumer

    consumer = AIOKafkaConsumer(
        pipe.topics["sensor"], pipe.topics["traffic"], pipe.topics["service"],
        bootstrap_servers=pipe.settings.kafka.bootstrap_servers,
        group_id=f"ceiling-{uuid.uuid4().hex[:8]}", auto_offset_reset="earliest",
        enable_auto_commit=False, max_partition_fetch_bytes=8 * 1024 * 1024,
        **pipe.settings.kafka.client_options())
    await consumer.start()
    seen = 0
    try:
        async with await psycopg.AsyncConnection.connect(pipe.conninfo) as conn:
            while seen < n_events:
                batches = await consumer.getmany(timeout_ms=1000, max_records=2000)
                received = datetime.now(UTC)
                rows = []
                for messages in batches.values():
                    for m in messages:
                        decoded = orjson.loads(m.value)
                        for e in decoded if type(decoded) is list else [decoded]:
                            loc = e.get("location") or {}
                            rows.append((e["occurred_at"], e["event_id"], e["source_id"],
                                         e["department"], e.get("commune_code") or "x", "01",
                                         "pm25", 1.0, "ug/m3", loc.get("lat"), loc.get("lon"),
                                         "raw", False, received))
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


def ceiling(settings: Settings, tmp: Path, n_events: int, one_event: bool = False
            ) -> dict[str, Any]:
    with pipeline(settings, tmp) as pipe:
        preload(pipe, Workload(seed=5, tag="c", one_event=one_event), n_events)
        asyncio.run(_ceiling(pipe, n_events))
        first, last = basis(pipe)
    elapsed = (last - first).total_seconds()
    return {"events": n_events, "one_event": one_event, "seconds": round(elapsed, 2),
            "events_per_s": round(n_events / elapsed)}


def _scrape(port: int) -> dict[str, float]:
    """The worker's counters that say how far it got (summed over label values)."""
    wanted = ("ioc_ingest_events_received_total", "ioc_sink_rows_inserted_total",
              "ioc_sink_rows_duplicate_total", "ioc_sink_flush_seconds_sum",
              "ioc_sink_flush_seconds_count")
    out = dict.fromkeys(wanted, 0.0)
    text = _metrics_text(port)
    if text is None:
        return out
    for line in text.splitlines():
        name = line.split("{", 1)[0].split(" ", 1)[0]
        if name in out:
            out[name] += float(line.rsplit(" ", 1)[1])
    return out


def drain(settings: Settings, tmp: Path, n_events: int, workers: int = 1,
          one_event: bool = False, timeout_s: float = 900.0,
          on_worker: Callable[[int], None] | None = None,
          on_first_read: Callable[[list[int]], None] | None = None,
          stages: Sequence[str] = ()) -> dict[str, Any]:
    """A preloaded backlog through ``workers`` real worker processes started together
    (``on_worker`` is given each one's pid as it starts, ``on_first_read`` all of them
    when the measured interval begins: e.g. to attach a profiler with or without the
    start-up). ``stages``: one process per entry instead, each running that
    ``stream.stages`` (``("stage1", "stage2")``: one worker, a process per stage), with
    each process's CPU beside the sum."""
    expected = Expected()
    with pipeline(settings, tmp, partitions=6) as pipe:
        workload = Workload(seed=6, tag="d", one_event=one_event, expected=expected)
        preload(pipe, workload, n_events, start=datetime.now(UTC) - timedelta(seconds=SPAN_S),
                span_s=SPAN_S)
        wal_before = float(pipe.query(WAL_SQL)[0][0])
        spawned = time.monotonic()
        procs = ([pipe.start_worker(extra_env={"IOC__STREAM__STAGES": s}) for s in stages]
                 or [pipe.start_worker() for _ in range(workers)])
        pids = [p.pid for p in procs]
        if on_worker is not None:
            for pid in pids:
                on_worker(pid)
        by_stage = {f"worker_{s}": CpuMeter(partial(descendants, [pid]))
                    for s, pid in zip(stages, pids, strict=False)}
        meters = {**by_stage, "worker": CpuMeter(lambda: descendants(pids)), "postgres":
                  CpuMeter(postgres_pids), "kafka": CpuMeter(lambda: kafka_pids(settings)),
                  # the drain database's backends only: the server is shared
                  "postgres_backends": CpuMeter(lambda: postgres_backends(pipe.dbname))}
        first_read = None
        stored = flush_s = flushes = 0.0
        peaks = [0.0 for _ in pids]
        deadline = spawned + timeout_s
        while time.monotonic() < deadline:
            counts = [_scrape(port) for port in pipe.web_ports]
            now = time.monotonic()
            if first_read is None:
                if any(c["ioc_ingest_events_received_total"] for c in counts):
                    first_read = now
                    for meter in meters.values():
                        meter.start()
                    if on_first_read is not None:
                        on_first_read(pids)
                else:
                    if all(p.poll() is not None for p in procs):
                        break
                    time.sleep(0.05)
                    continue
            for meter in meters.values():
                meter.sample()
            peaks = [max(a, peak_rss_mb(pid)) for a, pid in zip(peaks, pids, strict=True)]
            # inserted rows only: a re-delivery after a rebalance counts as a duplicate
            stored = sum(c["ioc_sink_rows_inserted_total"] for c in counts)
            flush_s = sum(c["ioc_sink_flush_seconds_sum"] for c in counts)
            flushes = sum(c["ioc_sink_flush_seconds_count"] for c in counts)
            if all(p.poll() is not None for p in procs):
                break
            if stored >= n_events and pipe.query(COUNT_SQL)[0][0] >= n_events:
                break
            time.sleep(0.5)
        for meter in meters.values():
            meter.sample()
        rows = pipe.query(COUNT_SQL)[0][0]
        wal = float(pipe.query(WAL_SQL)[0][0]) - wal_before
        raw_bytes, rollup_bytes = pipe.query(SIZE_SQL)[0]
        first, last = basis(pipe)
        problems = expected.compare(pipe.query(ROLLUP_SQL), by_commune=one_event)
        if rows != n_events:
            problems.insert(0, f"raw rows {rows}, expected {n_events}")
        with contextlib.suppress(Exception):
            pipe.stop_workers()
    elapsed = (last - first).total_seconds() if first and last else 0.0
    cpu = {k: round(m.used, 1) for k, m in meters.items()}
    return {"events": n_events, "stored": rows, "workers": workers, "one_event": one_event,
            "stages": list(stages),
            "events_per_s": round(n_events / elapsed) if elapsed else 0,
            "seconds": round(elapsed, 2),
            "startup_s": round(first_read - spawned, 2) if first_read else None,
            "cpu_s": cpu,
            "cpu_share": {k: round(v / elapsed, 2) if elapsed else None
                          for k, v in cpu.items()},
            "cpu_s_per_1000_events": {k: round(1000 * v / n_events, 3)
                                      for k, v in cpu.items()},
            "worker_peak_rss_mb": round(max(peaks, default=0.0)),
            "rollup_windows": len(expected.windows),
            "peak_rss_mb_by_process": [round(x) for x in peaks],
            "sink_transactions": int(flushes),
            "storage_bytes_per_event": {"raw": round(int(raw_bytes) / max(1, rows)),
                                        "rollup_1m": round(int(rollup_bytes) / max(1, rows)),
                                        "rollup_1m_per_window": round(
                                            int(rollup_bytes) / max(1, len(expected.windows))),
                                        "wal": round(wal / max(1, rows))},
            "sink_busy_share": round(flush_s / elapsed / workers, 2) if elapsed else None,
            "exact": not problems, "problems": problems[:5]}


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
SELECT count(*), count(*) FILTER (WHERE stored_at <= %(b)s + interval '3 seconds'),
       percentile_cont(0.5) WITHIN GROUP (ORDER BY lat_s),
       percentile_cont(0.99) WITHIN GROUP (ORDER BY lat_s)
FROM (SELECT stored_at, extract(epoch FROM stored_at - time) AS lat_s FROM sensor_readings
      WHERE time >= %(a)s AND time < %(b)s AND source_id NOT LIKE 'probe-%%'
      UNION ALL SELECT stored_at, extract(epoch FROM stored_at - time)
      FROM traffic_observations WHERE time >= %(a)s AND time < %(b)s
      UNION ALL SELECT stored_at, extract(epoch FROM stored_at - time) FROM service_events
      WHERE time >= %(a)s AND time < %(b)s) x
"""

GRACE_SQL = """
SELECT (SELECT count(*) FROM sensor_readings WHERE time >= %(a)s AND time < %(b)s
          AND source_id NOT LIKE 'probe-%%' AND stored_at <= %(b)s + interval '3 seconds')
     + (SELECT count(*) FROM traffic_observations WHERE time >= %(a)s AND time < %(b)s
          AND stored_at <= %(b)s + interval '3 seconds')
     + (SELECT count(*) FROM service_events WHERE time >= %(a)s AND time < %(b)s
          AND stored_at <= %(b)s + interval '3 seconds')
"""

FIRINGS_SQL = """
SELECT fingerprint, at, labels ->> 'commune_code', to_state FROM alert_transitions
WHERE rule_id = 'bench_probe_pm10' AND to_state IN ('firing', 'resolved')
  AND recorded_at >= %s
"""

PROBE_TIMES_SQL = """
SELECT (SELECT max(time) FROM sensor_readings WHERE commune_code = %(c)s
          AND metric = 'pm10' AND value > 900 AND time >= %(at)s - interval '1 minute'
          AND time < %(at)s),
       d.time, d.received_at, d.stored_at
FROM (SELECT 1) one LEFT JOIN LATERAL (
    SELECT time, received_at, stored_at FROM sensor_readings WHERE commune_code = %(c)s
      AND metric = 'pm10' AND time >= %(at)s + make_interval(secs => %(ooo)s)
      AND time < %(at)s + make_interval(secs => %(ooo)s + 30)
    ORDER BY time LIMIT 1) d ON true
"""
"""The breaching reading, and the deciding one's time, stage-1 read and row insert."""

PROBES = 32
"""Probe communes, one source each; each breaches in every other minute (so it fires and
resolves at alternate boundaries), and probe i's clock runs i x 60/PROBES s behind, so
the decisions spread over the minute instead of all falling at :10."""
PROBE_EVERY_S = 0.25


class _FiringWatch:
    """Polls for probe firings and notes when each became visible (committed): the
    transition's ``recorded_at`` is its transaction's start, earlier than the commit."""

    def __init__(self, conninfo: str, since: datetime, every_s: float = 0.05) -> None:
        import threading

        self.seen: dict[tuple[str, datetime], tuple[str, str, float]] = {}
        self._since, self._every = since, every_s
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, args=(conninfo,), daemon=True)
        self._thread.start()

    def _run(self, conninfo: str) -> None:
        with psycopg.connect(conninfo, autocommit=True) as conn:
            while not self._stop.wait(self._every):
                now = time.time()
                for fp, at, commune, state in conn.execute(FIRINGS_SQL,
                                                           (self._since,)).fetchall():
                    self.seen.setdefault((fp, at), (commune, state, now))

    def close(self) -> None:
        self._stop.set()
        self._thread.join(5)


def _cpu_s(pid: int) -> float:
    """CPU seconds (user + system) the process has used so far (/proc)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _probe_communes() -> list[str]:
    """Communes outside the workload's (Hanoi), so a probe scope's only source is its
    probe: its clock is the probe's own progress, nobody else's."""
    from benchmarks.workload import places

    hanoi = {c for c, _, _ in places()}
    return [c for c, _, _ in places(None) if c not in hanoi][:PROBES]


def _pct(values: list[float], q: float) -> float | None:
    if not values:
        return None
    values = sorted(values)
    k = (len(values) - 1) * q
    lo = int(k)
    hi = min(lo + 1, len(values) - 1)
    return round(values[lo] + (values[hi] - values[lo]) * (k - lo), 3)


def rates(settings: Settings, tmp: Path, steps: list[int], seconds: float = 30.0,
          worker_env: dict[str, str] | None = None, *, every_step: bool = False
          ) -> list[dict[str, Any]]:
    """Rising fixed rates; per step p50/p99 occurred_at->stored, and two alert latencies.

    Alerts follow closed minutes of event time (docs/architecture.md, "Time model"): a
    breach in minute M fires at boundary B = M + 1 min once the probe scope's clock passes
    B + ``alerts.out_of_orderness_s``. Probes are communes of their own, each with one
    source reporting every 0.25 s and one breaching reading in every other minute (it
    fires, then resolves at the next boundary). Probe i's device clock runs i x 60/PROBES s
    behind (occurred_at = now - offset), so its boundaries are decided at its own second
    of the minute and a step sees decisions at every phase of the batches; every
    latency is taken from when a reading was sent (occurred_at + its offset: the
    occurred_at of a correct clock). Per step, over the decisions whose deciding reading
    was sent at least 5 s into the step: ``*_alert_s``: the deciding reading (the first
    with occurred_at >= B + out_of_orderness, B the boundary of the transition) -> the
    transition visible in the database (firing and resolved; the pipeline's own latency,
    which the issue's targets apply to); ``*_alert_from_breach_s``: the breaching
    reading -> its firing visible (rest of the minute + out_of_orderness + pipeline).
    ``every_step``: run and report every step even after one fell behind (a short
    comparison on a loaded machine); per step also the worker's cores (/proc), the load
    average and where its batches' time went (``ioc_stream_phase_seconds``)."""
    import random
    from concurrent.futures import Future, ThreadPoolExecutor

    rules = tmp / "rules"
    rules.mkdir(parents=True, exist_ok=True)
    for f in (settings.resolve(settings.alerts.rules_dir)).glob("*.yaml"):
        (rules / f.name).write_text(f.read_text())
    (rules / "zz_bench.yaml").write_text(PROBE_RULE)
    ooo = float(settings.alerts.out_of_orderness_s)
    began = time.monotonic()
    probes = _probe_communes()
    offsets = {code: i * 60.0 / PROBES for i, code in enumerate(probes)}
    rng = random.Random(11)
    breach_at: dict[tuple[int, int], float] = {}  # (probe, minute) -> second of its breach
    out: list[dict[str, Any]] = []
    with pipeline(settings, tmp, partitions=6) as pipe:
        print(f"  rates: pipeline ready in {time.monotonic() - began:.0f} s", flush=True)
        worker = pipe.start_worker(extra_env={"IOC__ALERTS__RULES_DIR": str(rules),
                                              **(worker_env or {})})
        producer = producer_for(pipe, linger_ms=5)
        pool = Workload(seed=7).template_pool(500)
        watch = _FiringWatch(pipe.conninfo, datetime.now(UTC))
        run = probe_seq = 0
        next_probe = 0.0

        def reading(i: int, code: str, at: datetime) -> dict[str, Any]:
            nonlocal probe_seq
            minute = int(at.timestamp() // 60)
            second = at.second + at.microsecond / 1e6
            value = 10.0
            if minute % 2 == i % 2:  # this probe's breach minute: one reading > 900
                when = breach_at.setdefault((i, minute), rng.uniform(0, 59))
                if 0 <= when <= second:
                    breach_at[(i, minute)] = -1.0
                    value = 999.0
            probe_seq += 1
            return {"schema_version": 1, "event_id": f"probe-{probe_seq}",
                    "source_id": f"probe-{code}", "department": "bench", "feed": "sensor",
                    "occurred_at": at.isoformat(), "commune_code": code,
                    "body": {"metric": "pm10", "value": value, "unit": "ug/m3"}}

        def send_probes(history_s: float = 0.0) -> None:
            """One reading per probe (``history_s``: and one a second before it, so the
            probes decide a boundary every minute from the first step on)."""
            now = datetime.now(UTC)
            for i, code in enumerate(probes):
                at = now - timedelta(seconds=offsets[code])
                back = [at - timedelta(seconds=k) for k in range(int(history_s), 0, -1)]
                events = [reading(i, code, t) for t in [*back, at]]
                producer.send(pipe.topics["sensor"], key=f"probe-{code}".encode(),
                              value=orjson.dumps(events))

        def send_for(rate: int, t0: float, until: float) -> int:
            """Produce at ``rate`` (from perf time ``t0``) and the probes until ``until``."""
            nonlocal run, next_probe
            sent = 0
            while (now_perf := time.perf_counter()) < until:
                due = int(rate * (now_perf - t0)) - sent
                stamp_at = datetime.now(UTC)
                while due > 0:
                    feed, key, value, n = pool[run % len(pool)]
                    run += 1
                    producer.send(pipe.topics[feed], key=key, value=stamp(value, run, stamp_at))
                    sent += n
                    due -= n
                if now_perf >= next_probe:  # not counted: their clocks lag
                    next_probe = now_perf + PROBE_EVERY_S
                    send_probes()
                producer.flush()
                time.sleep(0.02)
            return sent

        def kept_up_later(step: tuple[int, datetime, datetime, int]) -> bool:
            time.sleep(4.0)  # the 3 s grace
            _, a, b, sent = step
            return bool(pipe.query(GRACE_SQL, {"a": a, "b": b})[0][0] >= 0.98 * sent)

        send_probes(history_s=150.0)
        send_for(0, time.perf_counter(), time.perf_counter() + 8.0)  # worker start-up
        done: list[tuple[int, datetime, datetime, int]] = []
        rss: dict[int, int] = {}
        phases: dict[int, dict[str, dict[str, float]]] = {}
        cpu: dict[int, float] = {}
        port = pipe.web_ports[-1]
        checks: list[Future[bool]] = []
        with ThreadPoolExecutor(1) as ex:
            for rate in steps:
                if len(checks) >= 2 and not checks[-2].result() and not every_step:
                    break  # the step before the last fell behind: no higher rate
                step_start, t0 = datetime.now(UTC), time.perf_counter()
                before, cpu0 = scrape_phases(port), _cpu_s(worker.pid)
                sent = send_for(rate, t0, t0 + seconds)
                done.append((rate, step_start, datetime.now(UTC), sent))
                phases[rate] = phase_shares(before, scrape_phases(port))
                cpu[rate] = round((_cpu_s(worker.pid) - cpu0) / seconds, 2)
                rss[rate] = round(peak_rss_mb(worker.pid))
                checks.append(ex.submit(kept_up_later, done[-1]))
            send_for(0, time.perf_counter(), time.perf_counter() + 4.0)  # the tail, probes on
        watch.close()
        producer.close()
        with contextlib.suppress(Exception):
            pipe.stop_workers()
        print(f"  rates: load done at {time.monotonic() - began:.0f} s", flush=True)
        for step in done:
            row = _step_row(pipe, watch, step, ooo, offsets, rss[step[0]])
            row["worker_cores"] = cpu[step[0]]
            row["load_average"] = list(os.getloadavg())
            row["phases"] = phases[step[0]]
            out.append(row)
            print(f"  rate {row['target_rate']:>6}/s: sent {row['sent']}, stored "
                  f"{row['stored_within_3s_grace']} within 3 s, stored p50/p99 "
                  f"{row['p50_stored_s']}/{row['p99_stored_s']} s; alert p50/p99 "
                  f"{row['p50_alert_s']}/{row['p99_alert_s']} s after the deciding reading, "
                  f"{row['p50_alert_from_breach_s']}/{row['p99_alert_from_breach_s']} s "
                  f"after the breach ({row['alerts']} alerts); "
                  f"{'kept up' if row['kept_up'] else 'FELL BEHIND'}", flush=True)
            if not row["kept_up"] and not every_step:
                break
    return out


def _step_row(pipe: Pipeline, watch: _FiringWatch, prev: tuple[int, datetime, datetime, int],
              ooo: float, offsets: dict[str, float], peak_rss: int) -> dict[str, Any]:
    rate, a, b, sent = prev
    window = {"a": a, "b": b}
    stored, in_grace, p50, p99 = pipe.query(LATENCY_SQL, window)[0]
    decided: list[float] = []
    breach: list[float] = []
    parts: list[tuple[float, float, float, float]] = []
    """Per decision: total, sent -> read by stage 1, read -> its row inserted by stage 2,
    inserted -> the transition visible (the rest of the write, evaluation, commit, poll)."""
    for (_, at), (commune, state, seen) in list(watch.seen.items()):
        if not a.timestamp() <= seen < b.timestamp() + 4.0:
            continue
        breached, deciding, read_at, stored_at = pipe.query(
            PROBE_TIMES_SQL, {"c": commune, "at": at, "ooo": ooo})[0]
        if deciding is None:
            continue
        sent_at = deciding.timestamp() + offsets[commune]
        if not a.timestamp() + 5.0 <= sent_at < b.timestamp():
            continue
        decided.append(seen - sent_at)
        parts.append((seen - sent_at, read_at.timestamp() - sent_at,
                      stored_at.timestamp() - read_at.timestamp(),
                      seen - stored_at.timestamp()))
        if breached is not None and state == "firing":
            breach.append(seen - breached.timestamp() - offsets[commune])
    seconds = (b - a).total_seconds()
    kept_up = in_grace >= 0.98 * sent and (p99 or 99) < 5.0
    return {"target_rate": rate, "sent": sent, "achieved_rate": round(sent / seconds),
            "stored": stored, "stored_within_3s_grace": in_grace,
            "p50_stored_s": round(p50 or 0, 3), "p99_stored_s": round(p99 or 0, 3),
            "alerts": len(decided),
            "p50_alert_s": _pct(decided, 0.5), "p99_alert_s": _pct(decided, 0.99),
            "max_alert_s": _pct(decided, 1.0),
            "p50_alert_from_breach_s": _pct(breach, 0.5),
            "p99_alert_from_breach_s": _pct(breach, 0.99),
            "alert_latency": "deciding reading's occurred_at -> firing visible",
            "alert_path": _path(parts),
            "kept_up": kept_up, "worker_peak_rss_mb": peak_rss}


def _path(parts: list[tuple[float, float, float, float]]) -> dict[str, Any]:
    """Where the deciding readings' time went: p50 and p99 of each part, and the three
    slowest decisions part by part (what the tail is made of)."""
    names = ("sent_to_read_s", "read_to_inserted_s", "inserted_to_visible_s")
    out: dict[str, Any] = {
        name: [_pct([p[i + 1] for p in parts], 0.5), _pct([p[i + 1] for p in parts], 0.99)]
        for i, name in enumerate(names)}
    out["slowest"] = [[round(x, 3) for x in p] for p in sorted(parts, reverse=True)[:3]]
    return out


def sink_rate(settings: Settings, tmp: Path, n_events: int = 100_000) -> dict[str, Any]:
    """The TimescaleSink alone: records already decoded and enriched."""
    from benchmarks.workload import places
    from ioccore.events.record import Record
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
