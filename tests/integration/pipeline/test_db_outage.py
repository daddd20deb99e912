"""The worker's database goes away and comes back (13.1, 13.3): nothing is lost or
double-counted, ``/readyz`` says the database is down (states only, no exception text),
the worker logs a bounded number of lines, and it carries on by itself.

The outage is real but confined to this test's database: ``ALLOW_CONNECTIONS false``
plus terminating its sessions is what a PostgreSQL restart does to a worker, without
touching the shared server. (Recovery time is a figure: ``benchmarks/failover.py``.)
"""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import psycopg
import pytest
from iocdev.sandbox import Pipeline, envelope

pytestmark = [pytest.mark.integration, pytest.mark.slow, pytest.mark.partitions(2)]


def readings(tag: str, start: datetime, n: int) -> bytes:
    events: list[dict[str, Any]] = [
        envelope("sensor", f"{tag}-{i}", f"aq-{i % 4}", start + timedelta(seconds=i),
                 {"metric": "pm25", "value": 20.0, "unit": "ug/m3"}, commune_code="00004")
        for i in range(n)]
    return json.dumps(events).encode()


def test_a_database_outage_loses_nothing_and_is_reported_not_shouted(
        pipe: Pipeline, pg_conninfo: str, record_property: Any) -> None:
    t0 = datetime.now(UTC).replace(second=0, microsecond=0) - timedelta(minutes=3)
    pipe.start_worker()
    web = f"http://127.0.0.1:{pipe.web_ports[0]}"
    pipe.produce("sensor", [(b"aq-0", readings("before", t0, 50))])
    pipe.wait_for("SELECT count(*) FROM sensor_readings", 50)

    log = pipe.logs[0]
    with psycopg.connect(pg_conninfo, autocommit=True) as admin:
        lines_before = len(log.read_bytes().splitlines())
        admin.execute(f'ALTER DATABASE "{pipe.dbname}" ALLOW_CONNECTIONS false')
        admin.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                      " WHERE datname = %s", (pipe.dbname,))
        try:
            for k in range(5):  # events keep coming during the outage
                pipe.produce("sensor", [(f"aq-{k}".encode(), readings(
                    f"during{k}", t0 + timedelta(minutes=1), 40))])
            time.sleep(12)
            ready = httpx.get(f"{web}/readyz", timeout=10)
            lines = len(log.read_bytes().splitlines()) - lines_before
        finally:
            admin.execute(f'ALTER DATABASE "{pipe.dbname}" ALLOW_CONNECTIONS true')
        back = time.monotonic()
    pipe.wait_for("SELECT count(*) FROM sensor_readings", 250, timeout=60)
    record_property("stack.db_outage_recovery_s", round(time.monotonic() - back, 2))
    record_property("stack.db_outage_log_lines", lines)

    assert ready.status_code == 503
    body = ready.json()
    assert body["status"] == "not ready" and body["failed"] == ["database"]
    assert body["checks"] == {"kafka": "ok", "database": "failed"}
    assert set(body["down_since"]) == {"database"}
    assert "Error" not in ready.text and "connection" not in ready.text  # no exception text
    assert lines < 60, f"{lines} log lines in a 12 s outage"
    # exact: every event once, rolled up once
    assert pipe.query("SELECT count(*), count(DISTINCT event_id) FROM sensor_readings"
                      ) == [(250, 250)]
    assert pipe.query("SELECT sum(count)::int FROM rollup_1m WHERE metric = 'pm25'"
                      ) == [(250,)]
    # ready again by itself: a stage whose retry is in its back-off (up to
    # retry_max_s) and the page's one-second cache may trail the stored rows a little
    deadline = time.monotonic() + 10
    while True:
        after = httpx.get(f"{web}/readyz", timeout=10).json()
        if after["status"] == "ready" or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert after["status"] == "ready" and after["down_since"] == {}
