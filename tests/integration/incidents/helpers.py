"""Helpers of the incident tests: configuration, alert rows, the runner as a process."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg

from alerts.incidents import rota, sops
from alerts.incidents.config import IncidentConfig
from alerts.incidents.machine import Sla
from ioccore.settings import ROOT, Settings

AUTO = frozenset({"water_level_alarm_3", "pm25_1h_very_unhealthy", "traffic_incident"})


def config(*, ack: timedelta = timedelta(minutes=15), every: timedelta = timedelta(minutes=30),
           reopen: timedelta = timedelta(hours=1)) -> IncidentConfig:
    sla = Sla(ack, timedelta(hours=4), every)
    found, errors = sops.check(sorted((ROOT / "config" / "sops").glob("*.yaml")))
    assert not errors
    return IncidentConfig(sla={"critical": sla, "warning": sla, "info": sla},
                          sops=sops.by_rule(found), rota=rota.load(ROOT / "config" /
                                                                  "duty_rota.yaml"),
                          auto_rules=AUTO, reopen_window=reopen,
                          console_url="http://127.0.0.1:18080/console/?incident=")


def put_alert(conninfo: str, fp: str, *, rule: str = "water_level_alarm_3",
              province: str = "01", commune: str = "00004", state: str = "firing",
              started: datetime, department: str = "pctt",
              severity: str = "critical") -> None:
    """Insert or update an alert row as the evaluator would leave it."""
    labels = {"alertname": rule, "commune_code": commune, "province_code": province,
              "severity": severity, "department": department}
    with psycopg.connect(conninfo, autocommit=True) as conn:
        conn.execute(
            "INSERT INTO alerts (fingerprint, rule_id, state, severity, labels, annotations,"
            " commune_code, province_code, seq, started_at, firing_at, updated_at,"
            " resolved_at) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, 1, %s, %s, %s, %s)"
            " ON CONFLICT (fingerprint) DO UPDATE SET state = excluded.state,"
            " started_at = excluded.started_at, firing_at = excluded.firing_at,"
            " updated_at = excluded.updated_at, resolved_at = excluded.resolved_at,"
            " seq = alerts.seq + 1",
            (fp, rule, state, severity, json.dumps(labels),
             json.dumps({"summary": f"Mực nước cao ({fp})"}), commune, province, started,
             started, started, started if state == "resolved" else None))


def runner_process(settings: Settings, dbname: str, log: Path,
                   **env: str) -> subprocess.Popen[bytes]:
    """``ioc incidents run`` against ``dbname`` (a real process; stop it by its pid)."""
    full = {**os.environ, "IOC__DATABASE__DBNAME": dbname,
            "IOC__INCIDENTS__POLL_INTERVAL_S": "0.05", **env}
    out = log.open("ab")
    return subprocess.Popen([sys.executable, "-m", "ioc.cli", "incidents", "run"],
                            env=full, stdout=out, stderr=subprocess.STDOUT, cwd=ROOT)


def rows(conninfo: str, query: str, *params: Any) -> list[tuple[Any, ...]]:
    with psycopg.connect(conninfo) as conn:
        return conn.execute(query.encode(), params).fetchall()
