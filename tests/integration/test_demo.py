"""`ioc demo` end to end against the real stack, twice, on its own databases, topics,
consumer group and ports (the settings come from IOC__* variables, which the demo's
children inherit), so it never disturbs the default `ioc` database or another demo."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import psycopg
import pytest
from iocdev.settings import DevSettings
from iocdev.supervise import free_port

from ioccore.settings import ROOT, Settings
from ioccore.topics import delete_topics

FEEDS = ("sensor", "traffic", "service", "enriched", "deadletter", "alerts")


def _demo(env: dict[str, str], report_dir: Path) -> tuple[str, float, str]:
    """One `ioc demo` run: (its output, wall seconds, the database it named)."""
    t0 = time.monotonic()
    proc = subprocess.run(
        [sys.executable, "-m", "ioc.cli", "demo", "--span", "20m", "--speedup", "600",
         "--rate", "3000", "--report-dir", str(report_dir)],
        env=env, cwd=ROOT, capture_output=True, text=True, timeout=420, check=False)
    wall = time.monotonic() - t0
    output = proc.stdout + proc.stderr
    assert proc.returncode == 0, output
    found = re.search(r"^database: (\S+) \(this run's own", proc.stdout, re.MULTILINE)
    assert found, output
    return proc.stdout, wall, found.group(1)


def _raw_counts(stack: Settings, dbname: str) -> dict[str, int]:
    with psycopg.connect(stack.database.conninfo(dbname=dbname)) as conn:
        return {t: conn.execute(f"SELECT count(*) FROM {t}").fetchone()[0]  # type: ignore[index]
                for t in ("sensor_readings", "traffic_observations", "service_events",
                          "rollup_1m")}


@pytest.mark.slow
def test_demo_twice_in_one_checkout_each_run_stores_its_own_events(
        stack: DevSettings, tmp_path: Path,
        record_property: Callable[[str, object], None]) -> None:
    """The README's first command, run twice with the stack left running: the same seed
    publishes the same (source_id, event_id) pairs, and each run still stores them (in a
    database of its own) and passes; the second drops the first's database."""
    tag = uuid.uuid4().hex[:8]
    base = f"ioc_demo_{tag}"
    env = dict(os.environ)
    env.update({
        "IOC__DATABASE__DBNAME": base,
        "IOC__STREAM__APP_ID": f"ioc-demo-{tag}",
        "IOC__STREAM__WORKER_WEB_PORT": str(free_port()),
        "IOC__API__PORT": str(free_port()),
    })
    topics = [f"demo{tag}.{key}" for key in FEEDS]
    for key, name in zip(FEEDS, topics, strict=True):
        env[f"IOC__KAFKA__TOPICS__{key.upper()}__NAME"] = name
    admin = stack.database.owner_conninfo(dbname="postgres")
    try:
        report_dir = tmp_path / "report"
        out, wall, first = _demo(env, report_dir)
        assert "report: " in out
        assert "console: http://" in out  # the operator console's URL

        html = report_dir / "report.html"
        png = report_dir / "map.png"
        assert html.exists() and png.exists(), out
        page = html.read_text(encoding="utf-8")
        assert len(re.findall(r"data:image/png;base64,", page)) == 5
        assert "approximate" in page.lower()
        assert "tier gap (commune − province)" in page  # the registry gave tiers
        assert png.read_bytes().startswith(b"\x89PNG")

        counts = _raw_counts(stack, first)
        assert all(n > 0 for n in counts.values()), counts
        # 20 simulated minutes at 3000 events per wall second and 600x: about 6,000
        # events, 1 % of them malformed.
        raw = sum(v for k, v in counts.items() if k != "rollup_1m")
        assert raw > 4_000, counts
        record_property("stack.demo_wall_s", round(wall, 1))
        record_property("stack.demo_rows", counts)

        # Everything the demo started is stopped: no pid records are left behind.
        run_dir = stack.stack.root / "run"
        assert list(run_dir.glob(f"demo@{base}-*.json")) == []

        time.sleep(1.0)  # run databases are named by the second they started
        out, wall, second = _demo(env, tmp_path / "report-2")
        assert second != first and f"dropped earlier demo runs {first}" in out, out
        again = _raw_counts(stack, second)
        assert sum(v for k, v in again.items() if k != "rollup_1m") > 4_000, again
        with psycopg.connect(admin) as conn:
            left = [r[0] for r in conn.execute(
                "SELECT datname FROM pg_database WHERE datname LIKE %s", (f"{base}_demo_%",))]
        assert left == [second]
        record_property("stack.demo_second_wall_s", round(wall, 1))
    finally:
        delete_topics(stack.kafka, topics)
        with psycopg.connect(admin, autocommit=True) as conn:
            for (name,) in conn.execute("SELECT datname FROM pg_database WHERE datname LIKE %s",
                                        (f"{base}%",)).fetchall():
                conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'.encode())
