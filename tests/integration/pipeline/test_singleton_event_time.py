"""The province rule ``pm25_province_unhealthy`` (config/rules/air_quality.yaml) on the
real broker, database and worker: the same PM2.5 episode, published paced, in one burst
and in hourly uploads, fires and resolves at the same event-time minutes (issue 22).

Three provinces, one commune each, one mode each, in one worker whose singleton runner
ticks every 2 s: a paced province is read many times while its data arrives, a burst
province once after three hours arrived, an hourly one after each hour's upload.
"""

from __future__ import annotations

import shutil
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from iocdev.sandbox import Pipeline, batches, envelope

from ioccore.settings import ROOT

pytestmark = [pytest.mark.integration, pytest.mark.slow]

M = timedelta(minutes=1)
RULE = "pm25_province_unhealthy"
# 1-hour average above 55.5 with at least 30 readings, for 15 minutes; clears below 45.5
VALUES = [20.0] * 60 + [120.0] * 40 + [20.0] * 80
MODES = {"paced": ("00004", "01"), "burst": ("00691", "08"), "hourly": ("01273", "04")}


def readings(commune: str, t0: datetime) -> list[dict[str, Any]]:
    return [envelope("sensor", f"{commune}-{i}", f"aq-{commune}",
                     t0 + i * M + timedelta(seconds=30),
                     {"metric": "pm25", "value": v, "unit": "ug/m3"}, commune_code=commune)
            for i, v in enumerate(VALUES)]


def stored(pipe: Pipeline, commune: str) -> int:
    return int(pipe.query("SELECT count(*) FROM sensor_readings WHERE commune_code = %s",
                          (commune,))[0][0])


def wait_stored(pipe: Pipeline, commune: str, n: int, timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while stored(pipe, commune) < n:
        assert time.monotonic() < deadline, f"{commune}: {stored(pipe, commune)} of {n}"
        time.sleep(0.3)


def timeline(pipe: Pipeline, province: str) -> list[tuple[str, datetime]]:
    return [(s, at) for s, at in pipe.query(
        "SELECT to_state, at FROM alert_transitions WHERE rule_id = %s AND kind = 'state'"
        " AND labels->>'province_code' = %s ORDER BY seq", (RULE, province))]


def test_a_province_episode_fires_and_resolves_at_the_same_minutes_however_it_arrives(
        pipe: Pipeline, tmp_path: Path) -> None:
    rules = tmp_path / "rules"
    rules.mkdir()
    shutil.copy(ROOT / "config" / "rules" / "air_quality.yaml", rules)
    pipe.start_worker(extra_env={"IOC__ALERTS__RULES_DIR": str(rules),
                                 "IOC__ALERTS__SINGLETON_EVERY_S": "2"})
    # the lock holder runs before any data arrives (as in production)
    deadline = time.monotonic() + 120
    while "singleton rules: this worker evaluates" not in pipe.logs[0].read_text():
        assert time.monotonic() < deadline, "no singleton-rules holder"
        time.sleep(0.5)
    time.sleep(5)
    t0 = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) - timedelta(hours=4)
    events = {mode: readings(commune, t0) for mode, (commune, _) in MODES.items()}

    def paced() -> None:
        for e in events["paced"]:  # one reading a message, ~3 event minutes a second
            pipe.produce("sensor", batches([e], 1))

    thread = threading.Thread(target=paced)
    thread.start()
    pipe.produce("sensor", batches(events["burst"], 200))  # three hours at once
    hourly = events["hourly"]
    for hour in range(3):  # an hour's upload, then the next when the runner has read it
        pipe.produce("sensor", batches(hourly[60 * hour:60 * (hour + 1)], 60))
        wait_stored(pipe, MODES["hourly"][0], 60 * (hour + 1))
        time.sleep(5)
    thread.join()
    for commune, _ in MODES.values():
        wait_stored(pipe, commune, len(VALUES))
    # pending at the 22nd high minute's end (average > 55.5), firing 15 minutes later;
    # resolved when 15 high minutes are left in the hour (average < 45.5)
    expected = [("pending", t0 + 82 * M), ("firing", t0 + 97 * M),
                ("resolved", t0 + 145 * M)]
    pipe.wait_for(f"SELECT count(*) FROM alert_transitions WHERE rule_id = '{RULE}'"
                  " AND kind = 'state'", 3 * len(expected), timeout=120)
    got = {mode: timeline(pipe, province) for mode, (_, province) in MODES.items()}
    assert got == dict.fromkeys(MODES, expected)
