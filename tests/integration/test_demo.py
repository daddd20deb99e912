"""`ioc demo` end to end against the real stack, on its own database, topics, consumer
group and ports (the settings come from IOC__* variables, which the demo's children
inherit), so it never disturbs the default `ioc` database or another demo."""

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
from iocdev.supervise import free_port

from ioccore.settings import ROOT, Settings
from ioccore.topics import delete_topics

FEEDS = ("sensor", "traffic", "service", "enriched", "deadletter", "alerts")


@pytest.mark.integration
@pytest.mark.slow
def test_short_demo_stores_rows_rollups_and_writes_the_report(
        stack: Settings, tmp_path: Path, record_property: Callable[[str, object], None]) -> None:
    tag = uuid.uuid4().hex[:8]
    dbname = f"ioc_demo_{tag}"
    env = dict(os.environ)
    env.update({
        "IOC__DATABASE__DBNAME": dbname,
        "IOC__STREAM__APP_ID": f"ioc-demo-{tag}",
        "IOC__STREAM__WORKER_WEB_PORT": str(free_port()),
        "IOC__API__PORT": str(free_port()),
    })
    topics = [f"demo{tag}.{key}" for key in FEEDS]
    for key, name in zip(FEEDS, topics, strict=True):
        env[f"IOC__KAFKA__TOPICS__{key.upper()}__NAME"] = name
    report_dir = tmp_path / "report"
    admin = stack.database.owner_conninfo(dbname="postgres")
    t0 = time.monotonic()
    try:
        proc = subprocess.run(
            [sys.executable, "-m", "ioc.cli", "demo", "--span", "20m", "--speedup", "600",
             "--rate", "3000", "--report-dir", str(report_dir)],
            env=env, cwd=ROOT, capture_output=True, text=True, timeout=420, check=False)
        wall = time.monotonic() - t0
        output = proc.stdout + proc.stderr
        assert proc.returncode == 0, output
        assert "report: " in proc.stdout
        assert "console: http://" in proc.stdout  # the operator console's URL

        html = report_dir / "report.html"
        png = report_dir / "map.png"
        assert html.exists() and png.exists(), output
        page = html.read_text(encoding="utf-8")
        assert len(re.findall(r"data:image/png;base64,", page)) == 5
        assert "approximate" in page.lower()
        assert "tier gap (commune − province)" in page  # the registry gave tiers
        assert png.read_bytes().startswith(b"\x89PNG")

        with psycopg.connect(stack.database.conninfo(dbname=dbname)) as conn:
            counts = {t: conn.execute(f"SELECT count(*) FROM {t}").fetchone()[0]  # type: ignore[index]
                      for t in ("sensor_readings", "traffic_observations",
                                "service_events", "rollup_1m")}
        assert all(n > 0 for n in counts.values()), counts
        # 20 simulated minutes at 3000 events per wall second and 600x: about 6,000
        # events, 1 % of them malformed.
        raw = sum(v for k, v in counts.items() if k != "rollup_1m")
        assert raw > 4_000, counts
        record_property("stack.demo_wall_s", round(wall, 1))
        record_property("stack.demo_rows", counts)

        # Everything the demo started is stopped: no pid records are left behind.
        run_dir = stack.stack.root / "run"
        assert list(run_dir.glob(f"demo@{dbname}-*.json")) == []
    finally:
        delete_topics(stack.kafka, topics)
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f"DROP DATABASE IF EXISTS {dbname} WITH (FORCE)".encode())
