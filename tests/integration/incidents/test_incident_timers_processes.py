"""Escalation timers across real processes: two ``ioc incidents run`` racing on the
same due timers fire each once; pending escalations survive a SIGKILL and fire once
after the restart."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import psycopg
import pytest
from iocdev.sandbox import fresh_database

from alerts.incidents import store
from ioccore.settings import Settings
from tests.integration.incidents.helpers import config, rows, runner_process

pytestmark = [pytest.mark.integration, pytest.mark.slow]
CFG = config()


@pytest.fixture
def db(stack: Settings) -> Iterator[tuple[str, str]]:
    with fresh_database(stack, "ioc_inct") as found:
        yield found


async def _incidents(conninfo: str, n: int) -> None:
    at = datetime.now(UTC)
    async with await psycopg.AsyncConnection.connect(conninfo, autocommit=True) as conn:
        for i in range(n):
            await store.create(conn, CFG, title=f"sự cố {i}", rule_id="traffic_incident",
                               province_code="01", department="sxd",
                               severity="critical", actor="test", at=at)


def _wait(predicate: object, timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():  # type: ignore[operator]
            return
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def _started(log: Path) -> bool:
    return log.exists() and "incident runner" in log.read_text(errors="replace")


def _stop(proc: subprocess.Popen[bytes], sig: int = signal.SIGTERM) -> None:
    if proc.poll() is None:
        os.kill(proc.pid, sig)
    proc.wait(timeout=15)


def _count(conninfo: str) -> int:
    return int(rows(conninfo, "SELECT count(*) FROM incident_escalations")[0][0])


def test_two_processes_never_escalate_twice(db: tuple[str, str], stack: Settings,
                                                  tmp_path: Path) -> None:
    name, conninfo = db
    n = 300
    asyncio.run(_incidents(conninfo, n))
    logs = [tmp_path / "a.log", tmp_path / "b.log"]
    procs = [runner_process(stack, name, log) for log in logs]
    try:
        _wait(lambda: all(_started(log) for log in logs), 60, "both runners")
        with psycopg.connect(conninfo, autocommit=True) as conn:  # all due at once
            conn.execute("UPDATE incident_timers SET due_at = now() WHERE kind = 'ack'")
        _wait(lambda: _count(conninfo) >= n, 60, f"{n} escalations")
        time.sleep(1.0)  # anything doubled would show now
    finally:
        for p in procs:
            _stop(p)
    assert _count(conninfo) == n
    assert rows(conninfo, "SELECT count(DISTINCT timer_id), count(DISTINCT incident_id)"
                          " FROM incident_escalations") == [(n, n)]
    assert rows(conninfo, "SELECT count(*) FROM alert_outbox WHERE fingerprint LIKE"
                          " 'incident-%%'") == [(n,)]
    assert rows(conninfo, "SELECT count(*) FROM incident_timers WHERE kind = 'ack'"
                          " AND level = 1 AND fired_at IS NULL") == [(0,)]
    by = rows(conninfo, "SELECT fired_by, count(*) FROM incident_escalations GROUP BY 1")
    text = "".join(log.read_text(errors="replace") for log in logs)
    assert "Traceback" not in text and "UniqueViolation" not in text, text[-2000:]
    print(f"escalations per runner: {sorted(c for _, c in by)}")


def test_pending_escalations_survive_a_kill_and_fire_once(
        db: tuple[str, str], stack: Settings, tmp_path: Path) -> None:
    name, conninfo = db
    asyncio.run(_incidents(conninfo, 5))
    log = tmp_path / "runner.log"
    first = runner_process(stack, name, log)
    try:
        _wait(lambda: _started(log), 60, "the runner")
        with psycopg.connect(conninfo, autocommit=True) as conn:
            conn.execute("UPDATE incident_timers SET due_at = now() + interval '3 s'"
                         " WHERE kind = 'ack'")
    finally:
        _stop(first, signal.SIGKILL)  # before anything was due
    time.sleep(3.5)
    assert _count(conninfo) == 0  # due, and nobody running: still pending
    second = runner_process(stack, name, log)
    try:
        _wait(lambda: _count(conninfo) == 5, 60, "the escalations after the restart")
    finally:
        _stop(second)
    third = runner_process(stack, name, log)
    try:
        _wait(lambda: log.read_text(errors="replace").count("incident runner") >= 3, 60,
              "the third runner")
        time.sleep(1.0)
    finally:
        _stop(third)
    assert _count(conninfo) == 5
    assert rows(conninfo, "SELECT count(*) FROM incident_timers WHERE kind = 'ack'"
                          " AND level = 2 AND fired_at IS NULL") == [(5,)]  # next level waits
