"""Failover figures on the real stack: how long events wait when a worker dies or restarts.

    python -m benchmarks.failover                 # all scenarios, prints a table
    python -m benchmarks.failover --scenario kill # one of: kill, restart, static, term

Probes: every 0.25 s one sensor event per source, for 12 sources in 12 communes (so every
raw and enriched partition carries probes); a poller records when each is stored. For
each probe, wait = stored - max(sent, fault). The figure of a scenario is the longest wait
of a probe sent in the 20 s after the fault: how long the slowest partition stalled.

- ``kill``: two workers, one SIGKILLed: its partitions must move to the survivor.
- ``restart``: one worker SIGKILLed and started again at once (dynamic membership).
- ``static``: the same with static membership (``stream.group_instance_prefix``).
- ``term``: one worker stopped with SIGTERM (a planned restart) and started again.
- ``db-outage``: the worker's database refuses connections for ``DB_OUTAGE_S`` (``ALTER
  DATABASE ... ALLOW_CONNECTIONS false`` and its sessions terminated: what a PostgreSQL
  restart does to a worker, without touching the shared server). Figures: recovery =
  longest wait of a probe after the database returned; the worker's log lines during
  the outage.
Each scenario runs in its own fresh database and topics (iocdev.sandbox.pipeline).
"""

from __future__ import annotations

import argparse
import json
import signal
import statistics
import tempfile
import threading
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psycopg
from iocdev.sandbox import Pipeline, envelope, pipeline
from kafka import KafkaProducer

from benchmarks.workload import places
from ioccore.settings import Settings, get_settings

PROBE_EVERY_S = 0.25
SOURCES = 12
AFTER_FAULT_S = 20.0
DB_OUTAGE_S = 30.0


class Probes:
    """Sends probes and records when each is stored."""

    def __init__(self, pipe: Pipeline, settings: Settings) -> None:
        self.pipe = pipe
        self.sent: dict[str, float] = {}
        self.stored: dict[str, float] = {}
        self._stop = threading.Event()
        self.pause_polling = False
        self._tag = uuid.uuid4().hex[:6]
        self._communes = [code for code, *_ in places()][:SOURCES]
        self._producer = KafkaProducer(bootstrap_servers=settings.kafka.bootstrap_servers,
                                       acks="all", linger_ms=0,
                                       **settings.kafka.client_options())
        self._threads = [threading.Thread(target=self._send, daemon=True),
                         threading.Thread(target=self._poll, daemon=True)]

    def start(self) -> None:
        for t in self._threads:
            t.start()

    def stop(self) -> None:
        self._stop.set()
        for t in self._threads:
            t.join()
        self._producer.close()

    def _send(self) -> None:
        n = 0
        while not self._stop.is_set():
            now = time.time()
            for i, code in enumerate(self._communes):
                event_id = f"{self._tag}-{n}-{i}"
                body = envelope("sensor", event_id, f"fo-{i}", datetime.now(UTC),
                                {"metric": "pm25", "value": 10.0, "unit": "ug/m3"},
                                commune_code=code)
                self._producer.send(self.pipe.topics["sensor"], key=f"fo-{i}".encode(),
                                    value=json.dumps(body).encode())
                self.sent[event_id] = now
            self._producer.flush()
            n += 1
            self._stop.wait(PROBE_EVERY_S)

    def _poll(self) -> None:
        conn: psycopg.Connection[Any] | None = None
        while not self._stop.is_set():
            try:
                if self.pause_polling:
                    if conn is not None:
                        conn.close()
                        conn = None
                else:
                    conn = conn or psycopg.connect(self.pipe.conninfo, autocommit=True)
                    rows = conn.execute("SELECT event_id FROM sensor_readings"
                                        " WHERE source_id LIKE 'fo-%'").fetchall()
                    now = time.time()
                    for (event_id,) in rows:
                        self.stored.setdefault(str(event_id), now)
            except psycopg.Error:
                conn = None
            self._stop.wait(0.1)
        if conn is not None:
            conn.close()

    def flowing(self, timeout: float = 120.0) -> None:
        """Wait until every source's probes are stored within 2 s (the group settled)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            recent = [e for e, s in self.sent.items() if time.time() - 6 < s < time.time() - 3]
            if recent and all(e in self.stored and self.stored[e] - self.sent[e] < 2.0
                              for e in recent):
                return
            time.sleep(0.5)
        raise RuntimeError("probes never flowed; see the worker logs in " + str(self.pipe.tmp))

    def waits(self, fault: float) -> tuple[float, float, int]:
        """(longest wait after the fault, median before it, probes never stored)."""
        after = [e for e, s in self.sent.items() if fault <= s <= fault + AFTER_FAULT_S]
        before = [self.stored[e] - s for e, s in self.sent.items()
                  if fault - 10 <= s < fault and e in self.stored]
        lost = sum(1 for e in after if e not in self.stored)
        longest = max((self.stored[e] - max(self.sent[e], fault) for e in after
                       if e in self.stored), default=float("nan"))
        return longest, statistics.median(before) if before else float("nan"), lost


def db_outage(pipe: Pipeline, settings: Settings, probes: Probes) -> dict[str, Any]:
    admin = settings.database.conninfo(dbname="postgres")
    log = pipe.logs[0]
    with psycopg.connect(admin, autocommit=True) as conn:
        lines_before = len(log.read_bytes().splitlines())
        conn.execute(f'ALTER DATABASE "{pipe.dbname}" ALLOW_CONNECTIONS false')
        conn.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                     " WHERE datname = %s", (pipe.dbname,))
        probes.pause_polling = True
        time.sleep(DB_OUTAGE_S)
        lines = len(log.read_bytes().splitlines()) - lines_before
        conn.execute(f'ALTER DATABASE "{pipe.dbname}" ALLOW_CONNECTIONS true')
        back = time.time()
        probes.pause_polling = False
    time.sleep(AFTER_FAULT_S)
    sent_during = [e for e, s in probes.sent.items() if back - DB_OUTAGE_S <= s <= back]
    waits = [probes.stored[e] - back for e in sent_during if e in probes.stored]
    return {"scenario": "db-outage", "outage_s": DB_OUTAGE_S,
            "recovery_after_db_back_s": round(max(waits), 2) if waits else float("nan"),
            "probes_not_stored": sum(1 for e in sent_during if e not in probes.stored),
            "worker_log_lines_during_outage": lines}


def run(scenario: str, settings: Settings, tmp: Path) -> dict[str, Any]:
    with pipeline(settings, tmp / scenario, partitions=6) as pipe:
        if scenario == "db-outage":
            pipe.start_worker()
            probes = Probes(pipe, settings)
            probes.start()
            try:
                probes.flowing()
                return db_outage(pipe, settings, probes)
            finally:
                probes.stop()
        extra = ({"IOC__STREAM__GROUP_INSTANCE_PREFIX": f"bench-{uuid.uuid4().hex[:6]}"}
                 if scenario == "static" else {})
        workers = [pipe.start_worker(extra_env=extra)]
        if scenario == "kill":
            workers.append(pipe.start_worker(extra_env=extra))
        probes = Probes(pipe, settings)
        probes.start()
        try:
            probes.flowing()
            time.sleep(3)
            fault = time.time()
            if scenario == "term":
                workers[0].send_signal(signal.SIGTERM)
                workers[0].wait(timeout=60)
            else:
                workers[0].send_signal(signal.SIGKILL)
                workers[0].wait()
            if scenario != "kill":
                # same index 0 -> same instance id; same web URL, which faust's assignor
                # keeps in the member metadata the broker hands back to a static member
                pipe.start_worker(extra_env={
                    **extra, "IOC__STREAM__WORKER_WEB_PORT": str(pipe.web_ports[0])})
            time.sleep(AFTER_FAULT_S + 10)
        finally:
            probes.stop()
        longest, median, lost = probes.waits(fault)
    return {"scenario": scenario, "longest_wait_after_fault_s": round(longest, 2),
            "median_wait_before_s": round(median, 2), "probes_not_stored": lost,
            "session_timeout_s": settings.stream.session_timeout_s}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scenario",
                        choices=["kill", "restart", "static", "term", "db-outage"],
                        action="append")
    args = parser.parse_args()
    settings = get_settings()
    tmp = Path(tempfile.mkdtemp(prefix="ioc-failover-"))  # kept: the workers' logs
    print(f"worker logs under {tmp}", flush=True)
    for scenario in args.scenario or ["kill", "restart", "static", "term", "db-outage"]:
        print(json.dumps(run(scenario, settings, tmp)), flush=True)


if __name__ == "__main__":
    main()
