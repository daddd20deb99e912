"""``ioc simulate-reports`` into a real database: reports, statuses and ratings stored
through the API's write path, KPIs to show, and a re-run that adds nothing."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import psycopg

from tests.integration.feedback.conftest import FeedbackDb

IOC = str(Path(sys.executable).with_name("ioc"))


def test_simulated_reports_are_stored_once(feedback_db: FeedbackDb) -> None:
    env = dict(os.environ, IOC__DATABASE__DBNAME=feedback_db.name)
    until = datetime.now(UTC).replace(second=0, microsecond=0).isoformat()
    argv = [IOC, "simulate-reports", "--province", "01", "--hours", "36", "--rain", "8:6",
            "--until", until]  # a fixed end: a re-run in a later minute stores nothing
    # 36 hours hold a whole Vietnamese working day whatever the hour the test runs at:
    # 12 hours of night alone can end with no report resolved yet
    run = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr[-3000:]
    first = run.stdout
    assert " reports" in first and not first.startswith("0 reports")
    again = subprocess.run(argv, env=env, check=True, capture_output=True, text=True,
                           timeout=300).stdout
    assert again.startswith("0 reports, 0 statuses")
    with psycopg.connect(feedback_db.conninfo) as conn:
        statuses: dict[str, int] = dict(conn.execute(
            "SELECT status, count(*) FROM feedback_state s JOIN feedback_reports r"
            " USING (report_id) WHERE r.source_id = 'sim-app' GROUP BY 1").fetchall())
        departments = {r[0] for r in conn.execute(
            "SELECT DISTINCT department FROM feedback_reports WHERE source_id = 'sim-app'")}
    assert statuses.get("resolved", 0) > 0 and statuses.get("assigned", 0) > 0
    assert departments <= {"construction", "env", "transport"}
