"""The same job on Apache Flink SQL, in the same run as ioc's benchmarks.

A fresh pipeline (topics, database with ioc's schema) is preloaded with one-event
messages (``commune_code`` set, so no geo join is needed); the PyFlink job
(``benchmarks/flink/job.py``) runs in its own process and virtualenv at parallelism 1
or 2, reads the backlog to its end and stops. Rate = events / (last durable row - first
message read), as for ioc: its raw rows carry ``received_at`` (when Flink processed the
message) and ``stored_at`` (the database's clock at insert), its rollups ``updated_at``.
Without raw rows (rollups only) the basis is job running -> job done (the JDBC sinks
flush and close before the job counts as finished); both are reported. Its raw rows and every
one-minute rollup are then checked against the totals the generator tallied.
"""

from __future__ import annotations

import json
import os
import subprocess
import threading
import time
import uuid
from pathlib import Path
from typing import Any

from iocdev.sandbox import pipeline

from benchmarks.cpu import (
    CpuMeter,
    descendants,
    kafka_pids,
    peak_rss_mb,
    postgres_backends,
    postgres_pids,
)
from benchmarks.flink.install import ensure_runtime, kafka_properties
from benchmarks.pipeline import basis
from benchmarks.preload import preload
from benchmarks.workload import Expected, Workload
from ioccore.settings import Settings

JOB = Path(__file__).with_name("job.py")
ROLLUP_SQL = ("SELECT commune_code, metric, bucket, count, sum, min, max FROM rollup_1m")
RAW_SQL = ("SELECT (SELECT count(*) FROM sensor_readings) + "
           "(SELECT count(*) FROM traffic_observations) + (SELECT count(*) FROM service_events)")


def run(settings: Settings, tmp: Path, n_events: int, *, parallelism: int,
        raw: bool = True, span_s: float = 240.0, timeout_s: float = 900.0) -> dict[str, Any]:
    rt = ensure_runtime(settings)
    expected = Expected()
    with pipeline(settings, tmp, partitions=6) as pipe:
        workload = Workload(seed=11, tag="f", one_event=True, expected=expected)
        start = _span_start(span_s)
        preload(pipe, workload, n_events, start=start, span_s=span_s)
        db = settings.database
        config = {
            "name": f"ioc-peer-p{parallelism}", "parallelism": parallelism, "raw": raw,
            "topics": [pipe.topics[f] for f in ("sensor", "traffic", "service")],
            "bootstrap": settings.kafka.bootstrap_servers,
            "group": f"flink-{uuid.uuid4().hex[:8]}",
            "kafka": kafka_properties(settings.kafka),
            "jdbc": {"url": f"jdbc:postgresql://{db.host}:{db.port}/{pipe.dbname}"
                            "?reWriteBatchedInserts=true",
                     "user": db.user,
                     "password": db.password.get_secret_value() if db.password else None},
            "flush_rows": 5000,
            "jars": [str(j) for j in rt.jars()],
        }
        cfg = tmp / f"flink-p{parallelism}.json"
        cfg.touch(mode=0o600)
        cfg.write_text(json.dumps(config))
        log = tmp / f"flink-p{parallelism}.log"
        env = dict(os.environ, TZ="UTC", PYFLINK_GATEWAY_DISABLED="false")
        with log.open("wb") as err:
            proc = subprocess.Popen([str(rt.python), str(JOB), str(cfg)], stdout=subprocess.PIPE,
                                    stderr=err, env=env, cwd=tmp)
        phases: dict[str, float] = {}
        status: list[str] = []
        reader = threading.Thread(target=_read_phases, args=(proc, phases, status), daemon=True)
        reader.start()
        job = CpuMeter(lambda: descendants([proc.pid]))
        pg = CpuMeter(postgres_pids)
        kafka = CpuMeter(lambda: kafka_pids(settings))
        # the job's own backends (its JDBC sinks): the server is shared
        own_pg = CpuMeter(lambda: postgres_backends(pipe.dbname))
        meters = (job, pg, kafka, own_pg)
        peak_rss = 0.0
        deadline = time.monotonic() + timeout_s
        measuring = False
        try:
            while proc.poll() is None and time.monotonic() < deadline:
                if "running" in phases and not measuring:
                    for meter in meters:
                        meter.start()
                    measuring = True
                if measuring:
                    for meter in meters:
                        meter.sample()
                    peak_rss = max([peak_rss] + [peak_rss_mb(p)
                                                 for p in descendants([proc.pid])])
                time.sleep(0.25)
        finally:
            if proc.poll() is None:
                proc.kill()
            proc.wait()
            reader.join(timeout=5)
        if "done" not in phases or "running" not in phases:
            raise RuntimeError(f"the Flink job did not finish (exit {proc.returncode}); "
                               f"see {log}:\n{log.read_text(errors='replace')[-3000:]}")
        ready_to_done = phases["done"] - phases["running"]
        elapsed = ready_to_done
        if raw:  # the same basis as ioc's: first message read -> last durable row
            first, last = basis(pipe)
            if first and last:
                elapsed = (last - first).total_seconds()
        stored = pipe.query(RAW_SQL)[0][0]
        problems = expected.compare(pipe.query(ROLLUP_SQL))
        if raw and stored != n_events:
            problems.insert(0, f"raw rows {stored}, expected {n_events}")
    return {
        "system": "flink", "parallelism": parallelism, "raw_rows": raw, "events": n_events,
        "events_per_s": round(n_events / elapsed), "seconds": round(elapsed, 2),
        "ready_to_done_s": round(ready_to_done, 2),
        "startup_s": round(phases["running"] - phases["start"], 2),
        "job_status": status[-1] if status else None,
        "exact": not problems, "problems": problems[:5],
        "windows": len(expected.windows),
        "cpu_s": {"flink": round(job.used, 1), "postgres": round(pg.used, 1),
                  "kafka": round(kafka.used, 1), "postgres_backends": round(own_pg.used, 1)},
        "peak_rss_mb": round(peak_rss),
    }


def _span_start(span_s: float) -> Any:
    from datetime import UTC, datetime, timedelta

    return datetime.now(UTC) - timedelta(seconds=span_s)


def _read_phases(proc: subprocess.Popen[bytes], phases: dict[str, float],
                 status: list[str]) -> None:
    if proc.stdout is None:
        return
    for line in proc.stdout:
        try:
            msg = json.loads(line)
        except ValueError:
            continue
        phases[str(msg["phase"])] = float(msg["t"])
        if "status" in msg:
            status.append(str(msg["status"]))
