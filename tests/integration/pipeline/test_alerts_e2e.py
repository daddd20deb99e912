"""Alerts end to end: events -> worker -> alert state in TimescaleDB -> Alertmanager.

Real broker, real worker processes, real database, real Alertmanager. A worker killed
with SIGKILL and restarted must neither lose the alert nor announce it twice.
"""

from __future__ import annotations

import signal
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from iocdev.sandbox import Pipeline, batches, envelope

from ioccore.settings import Settings
from tests.support.rulefiles import pm25_rule, rules_env

pytestmark = [pytest.mark.integration, pytest.mark.slow]

COMMUNE = "00004"  # Phường Ba Đình, Hà Nội
def readings(start: datetime, values: list[float], tag: str) -> list[dict[str, Any]]:
    return [envelope("sensor", f"{tag}-{start.timestamp()}-{i}", "aq-e2e",
                     start + timedelta(seconds=i), {"metric": "pm25", "value": v,
                                                    "unit": "ug/m3"},
                     commune_code=COMMUNE)
            for i, v in enumerate(values)]


def am_alerts(settings: Settings, tag: str, active: bool = True) -> list[dict[str, Any]]:
    r = httpx.get(f"{settings.alertmanager.url}/api/v2/alerts",
                  params={"filter": f'test_run="{tag}"', "active": str(active).lower(),
                          "silenced": "true", "inhibited": "true"}, timeout=5)
    r.raise_for_status()
    return list(r.json())


def wait(check: Any, timeout: float = 60.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        got = check()
        if got:
            return got
        time.sleep(0.5)
    raise AssertionError("condition not met in time")


def test_alert_fires_is_delivered_survives_sigkill_and_resolves(
        pipe: Pipeline, tmp_path: Path) -> None:
    tag = uuid.uuid4().hex[:8]
    env = rules_env(tmp_path, pm25_rule(f"e2e_pm25_high_{tag}", label=tag,
                                        summary="PM2.5 in {commune_en} is {value:.0f}"))
    where = f"FROM alert_transitions WHERE rule_id = 'e2e_pm25_high_{tag}' AND kind = 'state'"
    transitions = f"SELECT to_state {where} ORDER BY seq"
    count = f"SELECT count(*) {where}"
    t0 = datetime.now(UTC).replace(second=0, microsecond=0) - timedelta(minutes=4)

    # A minute is evaluated once the source has reported past its end (docs/alerts.md,
    # "Time"): each step below ends with a reading 30 s into the next minute.
    def closing(minute: int, value: float) -> list[dict[str, Any]]:
        return [envelope("sensor", f"{tag}-close-{minute}", "aq-e2e",
                         t0 + timedelta(minutes=minute, seconds=30),
                         {"metric": "pm25", "value": value, "unit": "ug/m3"},
                         commune_code=COMMUNE)]

    worker = pipe.start_worker(extra_env=env)
    pipe.produce("sensor", batches(readings(t0, [150.0, 170.0, 160.0], tag)
                                   + closing(1, 150.0), 10))
    pipe.wait_for(count, 1)
    assert [r[0] for r in pipe.query(transitions)] == ["firing"]
    firing = wait(lambda: am_alerts(pipe.settings, tag))
    assert firing[0]["labels"]["commune_code"] == COMMUNE
    assert firing[0]["labels"]["severity"] == "warning"
    annotations = firing[0]["annotations"]
    assert any("Ba Đình" in v for v in annotations.values()), annotations  # commune name

    # Killed and restarted: the next high minute must not announce the alert again.
    worker.send_signal(signal.SIGKILL)
    worker.wait()
    pipe.start_worker(extra_env=env)
    pipe.produce("sensor", batches(readings(t0 + timedelta(minutes=1), [180.0, 190.0], tag)
                                   + closing(2, 185.0), 10))
    pipe.wait_for("SELECT count(*) FROM sensor_readings", 7)
    time.sleep(3)
    assert [r[0] for r in pipe.query(transitions)] == ["firing"]
    deliveries = pipe.query("SELECT count(*) FROM alert_outbox WHERE receiver = 'alertmanager'"
                            " AND delivered_at IS NOT NULL")[0][0]
    assert deliveries == 1

    # Back under the clear threshold: resolved, and Alertmanager is told (endsAt).
    pipe.produce("sensor", batches(readings(t0 + timedelta(minutes=3), [20.0, 25.0], tag)
                                   + closing(4, 22.0), 10))
    pipe.wait_for(count, 2)
    assert [r[0] for r in pipe.query(transitions)] == ["firing", "resolved"]
    wait(lambda: not am_alerts(pipe.settings, tag), timeout=60)
