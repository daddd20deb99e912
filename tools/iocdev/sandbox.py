"""An isolated pipeline: unique topics, a fresh database, real worker processes.

Integration tests and benchmarks each get their own topics, consumer group (faust app
id) and database, so they never see each other's events, and workers are real
``ioc worker`` processes (SIGKILL means what it says), started and stopped by
:mod:`iocdev.supervise` (own process group, pid plus start time, never by name).
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import time
import uuid
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import psycopg
from kafka import KafkaProducer
from psycopg import sql

from ioccore.settings import Settings, TopicSettings
from ioccore.topics import delete_topics, ensure_topics
from iocdev import supervise
from iocdev.stack.postgres import drop_database
from iocdev.supervise import Process, free_port, log_tail

FEED_KEYS = ("sensor", "traffic", "service", "enriched", "deadletter", "alerts")


@dataclass
class Pipeline:
    """Names and settings of one test's isolated pipeline."""

    settings: Settings
    dbname: str
    app_id: str
    topics: dict[str, str]
    partitions: int
    workers: list[Process] = field(default_factory=list)
    logs: list[Path] = field(default_factory=list)
    web_ports: list[int] = field(default_factory=list)
    """The web (/metrics, /healthz, /readyz) port of each worker started, in order."""
    tmp: Path = Path("/tmp")

    @property
    def conninfo(self) -> str:
        return self.settings.database.conninfo(dbname=self.dbname)

    def stored_readings(self) -> int:
        """Rows in ``sensor_readings``; -1 while the database does not answer (a fault)."""
        try:
            with psycopg.connect(self.conninfo, connect_timeout=3) as conn:
                row = conn.execute("SELECT count(*) FROM sensor_readings").fetchone()
            return int(row[0]) if row else 0
        except psycopg.Error:
            return -1

    def wait_storing(self, timeout: float, interval: float,
                     explain: Callable[[], str]) -> None:
        """Until rows are being stored right now (so a fault lands mid-batch); else
        RuntimeError with ``explain()``."""
        first = self.stored_readings()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            time.sleep(interval)
            now = self.stored_readings()
            if now > first > 0:
                return
            first = max(first, now)
        raise RuntimeError(explain())

    def env(self, web_port: int, app_id: str | None = None) -> dict[str, str]:
        """A worker's environment: ours, plus the services of ``self.settings`` (which may
        name another stack than the environment does, as the chaos suite's) and this
        pipeline's database, consumer group and topics."""
        env = dict(os.environ)
        env.update(service_env(self.settings))
        env["IOC__DATABASE__DBNAME"] = self.dbname
        env["IOC__STREAM__APP_ID"] = app_id or self.app_id
        env["IOC__STREAM__WORKER_WEB_PORT"] = str(web_port)
        for key, name in self.topics.items():
            env[f"IOC__KAFKA__TOPICS__{key.upper()}__NAME"] = name
        # department topics of this pipeline only: workers read every topic the pattern
        # matches, including ones created while they run
        prefix = self.topics["sensor"].rsplit(".", 1)[0]
        env["IOC__KAFKA__DEPARTMENT_TOPIC_PATTERN"] = f"{prefix}.dept.{{department}}.{{feed}}.v1"
        return env

    def start_worker(self, app_id: str | None = None, extra_env: dict[str, str] | None = None
                     ) -> Process:
        """Start one ``ioc worker`` on a free web port; returns once the process exists."""
        n = len(self.logs)
        log = self.tmp / f"worker-{n}.log"
        self.logs.append(log)
        port = free_port()
        self.web_ports.append(port)
        env = self.env(port, app_id)
        env.update(extra_env or {})
        proc = supervise.spawn(
            f"worker-{n}", supervise.ioc_argv("worker", "--geo-source", "reference"),
            log=log, cwd=self.tmp, env=env, append=False)
        self.workers.append(proc)
        return proc

    def stop_workers(self, timeout: float = 30.0) -> None:
        """SIGTERM every worker still ours (resumed first if paused); SIGKILL of its group
        after ``timeout``."""
        for proc in self.workers:
            proc.resume()
            proc.send_signal(signal.SIGTERM)
        for proc in self.workers:
            proc.stop(timeout=timeout)
        self.workers.clear()

    def produce(self, feed: str, messages: Iterable[tuple[bytes | None, bytes]]) -> int:
        producer = KafkaProducer(bootstrap_servers=self.settings.kafka.bootstrap_servers,
                                 acks="all", linger_ms=5, max_request_size=2_000_000,
                                 **self.settings.kafka.client_options())
        n = 0
        for key, value in messages:
            producer.send(self.topics[feed], key=key, value=value)
            n += 1
        producer.flush()
        producer.close()
        return n

    def query(self, sql: str, params: Any = None) -> list[tuple[Any, ...]]:
        with psycopg.connect(self.conninfo) as conn:
            return conn.execute(sql.encode(), params).fetchall()

    def wait_for(self, sql: str, expected: Any, timeout: float = 90.0) -> Any:
        """Poll ``sql`` (one value) until it equals ``expected``; fail with the worker logs."""
        deadline = time.monotonic() + timeout
        value: Any = None
        while time.monotonic() < deadline:
            value = self.query(sql)[0][0]
            if value == expected:
                return value
            for proc, log in zip(self.workers, self.logs, strict=False):
                if proc.poll() is not None and proc.returncode not in (0, -9, -15):
                    raise AssertionError(f"worker exited {proc.returncode}:\n{log_tail(log)}")
            time.sleep(0.3)
        logs = "\n".join(log_tail(p) for p in self.logs)
        raise AssertionError(f"{sql!r} = {value!r}, expected {expected!r}\n{logs}")


def service_env(settings: Settings) -> dict[str, str]:
    """``IOC__*`` variables that point a child process at the services of ``settings``."""
    return {
        "IOC__STACK__HOME": str(settings.stack.root),
        "IOC__KAFKA__BOOTSTRAP_SERVERS": settings.kafka.bootstrap_servers,
        "IOC__KAFKA__CONTROLLER_PORT": str(settings.kafka.controller_port),
        "IOC__DATABASE__HOST": settings.database.host,
        "IOC__DATABASE__PORT": str(settings.database.port),
        "IOC__ALERTMANAGER__HOST": settings.alertmanager.host,
        "IOC__ALERTMANAGER__PORT": str(settings.alertmanager.port),
        "IOC__API__PORT": str(settings.api.port),
    }


@contextlib.contextmanager
def fresh_database(settings: Settings, prefix: str = "ioc_test") -> Iterator[tuple[str, str]]:
    """A uniquely named database with every migration applied: ``(name, conninfo)``;
    dropped (connections forced off) afterwards."""
    from ioccore.db.migrate import apply_migrations

    name = f"{prefix}_{uuid.uuid4().hex[:10]}"
    admin = settings.database.owner_conninfo(dbname="postgres")  # migrations: the owner
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    try:
        conninfo = settings.database.conninfo(dbname=name)  # the application role
        apply_migrations(settings.database.owner_conninfo(dbname=name))
        yield name, conninfo
    finally:
        drop_database(settings.database, name)


@contextlib.contextmanager
def pipeline(settings: Settings, tmp: Path, partitions: int = 3) -> Iterator[Pipeline]:
    """A fresh database (migrated) and fresh topics; torn down afterwards."""
    tmp.mkdir(parents=True, exist_ok=True)
    tag = uuid.uuid4().hex[:10]
    topics = {key: f"t{tag}.{key}" for key in FEED_KEYS}
    specs = [TopicSettings(name=name, partitions=partitions, retention_hours=24)
             for name in topics.values()]
    with fresh_database(settings) as (dbname, _):
        ensure_topics(settings.kafka, specs)
        pipe = Pipeline(settings, dbname, f"ioc-test-{tag}", topics, partitions, tmp=tmp)
        try:
            yield pipe
        finally:
            pipe.stop_workers()
            delete_topics(settings.kafka, list(topics.values()))


# ------------------------------------------------------------------ event builders
def envelope(feed: str, event_id: str, source_id: str, occurred_at: datetime,
             body: dict[str, Any], *, commune_code: str | None = None,
             location: tuple[float, float] | None = None, department: str = "dept"
             ) -> dict[str, Any]:
    env: dict[str, Any] = {
        "schema_version": 1, "event_id": event_id, "source_id": source_id,
        "department": department, "feed": feed, "occurred_at": occurred_at.isoformat(),
        "body": body,
    }
    if commune_code is not None:
        env["commune_code"] = commune_code
    if location is not None:
        env["location"] = {"lat": location[0], "lon": location[1]}
    return env


def batches(events: list[dict[str, Any]], size: int,
            key: Callable[[dict[str, Any]], str] = lambda e: str(e["source_id"])
            ) -> Iterator[tuple[bytes, bytes]]:
    """Batch envelopes per source (the Kafka key), ``size`` events per message."""
    by_key: dict[str, list[dict[str, Any]]] = {}
    for e in events:
        by_key.setdefault(key(e), []).append(e)
    for k, evs in by_key.items():
        for i in range(0, len(evs), size):
            yield k.encode(), json.dumps(evs[i:i + size]).encode()


# ------------------------------------------------------------------ private Prometheus
PROMETHEUS_BIN = "/usr/bin/prometheus"
"""Debian's Prometheus, installed by ``ioc stack up``."""


@dataclass
class PrivatePrometheus:
    """A Prometheus of one test's own, scraping ``targets`` every second."""

    base: str
    process: Process

    def query(self, expr: str) -> list[dict[str, Any]]:
        """The instant vector of ``expr`` ([] while it is not answering yet)."""
        return prom_query(self.base, expr)

    def wait_for(self, expr: str, timeout: float = 60.0) -> list[dict[str, Any]]:
        """Poll ``expr`` until it has samples; fail with Prometheus' log."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            result = self.query(expr)
            if result:
                return result
            time.sleep(0.5)
        raise AssertionError(f"{expr!r} had no samples within {timeout:.0f} s\n"
                             f"{self.process.describe()}")


def prom_query(base: str, expr: str) -> list[dict[str, Any]]:
    """``GET /api/v1/query`` on a Prometheus at ``base``; [] when it does not answer."""
    import httpx

    try:
        response = httpx.get(f"{base}/api/v1/query", params={"query": expr}, timeout=5)
    except httpx.TransportError:
        return []
    if response.status_code != 200:
        return []
    result: list[dict[str, Any]] = response.json()["data"]["result"]
    return result


@contextlib.contextmanager
def private_prometheus(targets: list[str], tmp: Path, job: str = "ioc-worker",
                       rule_files: list[Path] | None = None) -> Iterator[PrivatePrometheus]:
    """Start a private Prometheus scraping ``targets`` (host:port) every second and
    evaluating ``rule_files``; stopped afterwards."""
    import yaml

    tmp.mkdir(parents=True, exist_ok=True)
    port = free_port()
    config = tmp / "prometheus.yml"
    config.write_text(yaml.safe_dump({
        "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
        "rule_files": [str(f) for f in rule_files or []],
        "scrape_configs": [{"job_name": job, "scrape_interval": "1s",
                            "static_configs": [{"targets": targets}]}]}))
    proc = supervise.spawn(
        "prometheus", [PROMETHEUS_BIN, f"--config.file={config}",
                       f"--web.listen-address=127.0.0.1:{port}",
                       f"--storage.tsdb.path={tmp / 'prom'}",
                       "--storage.tsdb.retention.time=1h"],
        log=tmp / "prometheus.log", cwd=tmp)
    try:
        yield PrivatePrometheus(f"http://127.0.0.1:{port}", proc)
    finally:
        proc.stop(timeout=20)
