"""An isolated pipeline: unique topics, a fresh database, real worker processes.

Integration tests and benchmarks each get their own topics, consumer group (faust app
id) and database, so they never see each other's events, and workers are real
``ioc worker`` processes (SIGKILL means what it says). Workers are stopped by the pid
this module started, never by name.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
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

from ioc.core.settings import ROOT, Settings, TopicSettings
from ioc.core.topics import delete_topics, ensure_topics

FEED_KEYS = ("sensor", "traffic", "service", "enriched", "deadletter", "alerts")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Pipeline:
    """Names and settings of one test's isolated pipeline."""

    settings: Settings
    dbname: str
    app_id: str
    topics: dict[str, str]
    partitions: int
    workers: list[subprocess.Popen[bytes]] = field(default_factory=list)
    logs: list[Path] = field(default_factory=list)
    web_ports: list[int] = field(default_factory=list)
    """The web (/metrics, /healthz, /readyz) port of each worker started, in order."""
    tmp: Path = Path("/tmp")

    @property
    def conninfo(self) -> str:
        return self.settings.database.conninfo(dbname=self.dbname)

    def env(self, web_port: int, app_id: str | None = None) -> dict[str, str]:
        env = dict(os.environ)
        env["IOC__DATABASE__DBNAME"] = self.dbname
        env["IOC__STREAM__APP_ID"] = app_id or self.app_id
        env["IOC__STREAM__WORKER_WEB_PORT"] = str(web_port)
        env["IOC__STREAM__BATCH_WITHIN_S"] = "0.2"
        for key, name in self.topics.items():
            env[f"IOC__KAFKA__TOPICS__{key.upper()}__NAME"] = name
        return env

    def start_worker(self, app_id: str | None = None, extra_env: dict[str, str] | None = None
                     ) -> subprocess.Popen[bytes]:
        log = self.tmp / f"worker-{len(self.logs)}.log"
        self.logs.append(log)
        port = free_port()
        self.web_ports.append(port)
        env = self.env(port, app_id)
        env.update(extra_env or {})
        proc = subprocess.Popen(
            [sys.executable, "-m", "ioc.cli", "worker", "--geo-source", "reference"],
            env=env, cwd=ROOT,
            stdout=log.open("wb"), stderr=subprocess.STDOUT,
        )
        self.workers.append(proc)
        return proc

    def stop_workers(self) -> None:
        for proc in self.workers:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in self.workers:
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
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
                    raise AssertionError(f"worker exited {proc.returncode}:\n{tail(log)}")
            time.sleep(0.3)
        logs = "\n".join(tail(p) for p in self.logs)
        raise AssertionError(f"{sql!r} = {value!r}, expected {expected!r}\n{logs}")


def tail(path: Path, lines: int = 40) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


@contextlib.contextmanager
def fresh_database(settings: Settings, prefix: str = "ioc_test") -> Iterator[tuple[str, str]]:
    """A uniquely named database with every migration applied: ``(name, conninfo)``;
    dropped (connections forced off) afterwards."""
    from ioc.core.db.migrate import apply_migrations

    name = f"{prefix}_{uuid.uuid4().hex[:10]}"
    admin = settings.database.owner_conninfo(dbname="postgres")  # migrations: the owner
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    try:
        conninfo = settings.database.conninfo(dbname=name)  # the application role
        apply_migrations(settings.database.owner_conninfo(dbname=name))
        yield name, conninfo
    finally:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)")
                         .format(sql.Identifier(name)))


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
