"""Event time on the real broker, database and worker (issue 12.5): however the data
travels, the rollups, KPI shares and alert timelines are the ones written here.

1. A sensor episode inside a backlog: the episode that opened and closed inside it is
   stored with its event times and backfilled (never paged); the one still open at the
   end of the backlog is paged at once (after group_wait), its event-time start
   in the annotation `since`.
2. Hourly uploads: the same readings in two uploads give the same timeline as (1)'s
   closed episode, at the same event times.
3. Service events synced 20 minutes late beside sensors reporting up to now: counted in
   rollups and KPI shares exactly; not late for their own source; the sensors' alert
   unaffected (and paged: it is active at the end).
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from iocdev.sandbox import Pipeline, batches, envelope

from tests.support.rulefiles import pm25_rule, rules_env

pytestmark = [pytest.mark.integration, pytest.mark.slow]

M = timedelta(minutes=1)
def start(pipe: Pipeline, tmp_path: Path) -> str:
    tag = uuid.uuid4().hex[:8]
    pipe.start_worker(extra_env=rules_env(tmp_path, pm25_rule(f"pm25_{tag}", for_="2m",
                                                              label=tag)))
    return tag


def readings(commune: str, source: str, t0: datetime, values: list[float]
             ) -> list[dict[str, Any]]:
    """One reading a minute, 30 s into each minute."""
    return [envelope("sensor", f"{source}-{i}", source, t0 + i * M + timedelta(seconds=30),
                     {"metric": "pm25", "value": v, "unit": "ug/m3"}, commune_code=commune)
            for i, v in enumerate(values)]


def timeline(pipe: Pipeline, tag: str, commune: str) -> list[tuple[Any, ...]]:
    return pipe.query(
        "SELECT to_state, at, backfilled FROM alert_transitions"
        " WHERE rule_id = %s AND labels->>'commune_code' = %s AND kind = 'state'"
        " ORDER BY seq", (f"pm25_{tag}", commune))


def test_a_sensor_episode_in_a_backlog(pipe: Pipeline, tmp_path: Path) -> None:
    tag = start(pipe, tmp_path)
    t0 = datetime.now(UTC).replace(second=0, microsecond=0) - timedelta(hours=2)
    closed = [20.0] * 5 + [150.0] * 10 + [20.0] * 15   # 00:05-00:14 high, inside
    still = [20.0] * 20 + [150.0] * 10                 # high to the end of the backlog
    events = (readings("00004", "gw-a", t0, closed) + readings("00008", "gw-b", t0, still))
    pipe.produce("sensor", batches(events, 60))        # one backlog, two messages
    pipe.wait_for("SELECT count(*) FROM sensor_readings", 60)
    pipe.wait_for(f"SELECT count(*) FROM alert_transitions WHERE rule_id = 'pm25_{tag}'", 5)
    # minute 5 is the first high one: its boundary (00:06) opens the episode; firing 2
    # minutes later; minute 15 back to 20: resolved at its boundary (keep_firing_for 0)
    assert timeline(pipe, tag, "00004") == [("pending", t0 + 6 * M, True),
                                            ("firing", t0 + 8 * M, True),
                                            ("resolved", t0 + 16 * M, True)]
    assert timeline(pipe, tag, "00008") == [("pending", t0 + 21 * M, False),
                                            ("firing", t0 + 23 * M, False)]
    # what is paged: only the alert still active, once, with its event-time start
    sent = pipe.query("SELECT o.payload FROM alert_outbox o JOIN alerts a USING (fingerprint)"
                      " WHERE a.rule_id = %s AND o.receiver = 'alertmanager'",
                      (f"pm25_{tag}",))
    assert len(sent) == 1
    (alert,) = sent[0][0]["alerts"]
    assert alert["labels"]["commune_code"] == "00008"
    # its event-time start travels as `since`; startsAt is when it was posted, so that
    # Alertmanager's group_wait applies (alerts/alertmanager.py)
    assert datetime.fromisoformat(alert["annotations"]["since"]) == t0 + 23 * M
    assert datetime.fromisoformat(alert["startsAt"]) > t0 + 23 * M
    # the rollups hold every reading, a GROUP BY over the raw rows
    assert pipe.query("SELECT commune_code, count(*), sum(count) FROM rollup_1m"
                      " GROUP BY 1 ORDER BY 1") == [("00004", 30, 30), ("00008", 30, 30)]


def test_hourly_uploads_give_the_live_timeline(pipe: Pipeline, tmp_path: Path) -> None:
    tag = start(pipe, tmp_path)
    t0 = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) - timedelta(hours=3)
    values = [20.0] * 50 + [150.0] * 20 + [20.0] * 50   # 00:50-01:09 high, across the hour
    events = readings("00004", "logger", t0, values)
    first, second = events[:60], events[60:]
    pipe.produce("sensor", batches(first, 60))           # upload of hour 1
    pipe.wait_for("SELECT count(*) FROM sensor_readings", 60)
    pipe.wait_for(f"SELECT count(*) FROM alert_transitions WHERE rule_id = 'pm25_{tag}'", 2)
    assert timeline(pipe, tag, "00004") == [("pending", t0 + 51 * M, False),
                                            ("firing", t0 + 53 * M, False)]
    pipe.produce("sensor", batches(second, 60))          # upload of hour 2
    pipe.wait_for("SELECT count(*) FROM sensor_readings", 120)
    # + the renotify 15 minutes (renotify_interval_s) of event time after firing
    pipe.wait_for(f"SELECT count(*) FROM alert_transitions WHERE rule_id = 'pm25_{tag}'", 4)
    assert timeline(pipe, tag, "00004") == [("pending", t0 + 51 * M, False),
                                            ("firing", t0 + 53 * M, False),
                                            ("resolved", t0 + 71 * M, False)]
    assert pipe.query("SELECT at FROM alert_transitions WHERE rule_id = %s"
                      " AND kind = 'renotify'", (f"pm25_{tag}",)) == [(t0 + 68 * M,)]
    assert pipe.query("SELECT count(*), sum(count), sum(sum) FROM rollup_1m") == [
        (120, 120, sum(values))]


def dossier(i: int, at: datetime, *, online: bool, on_time: bool) -> dict[str, Any]:
    body = {"dossier_id": f"D{i}", "procedure_code": "1.0001", "agency": "UBND",
            "channel": "online" if online else "offline", "status": "resolved",
            "due_at": (at + (1 if on_time else -1) * timedelta(hours=1)).isoformat(),
            "resolved_at": at.isoformat(), "fee_bearing": False, "digitised": True}
    return envelope("service", f"d{i}", "desk-1", at, body, commune_code="00004",
                    department="hcc")


def test_service_events_synced_20_minutes_late_beside_live_sensors(
        pipe: Pipeline, tmp_path: Path) -> None:
    tag = start(pipe, tmp_path)
    now = datetime.now(UTC).replace(second=0, microsecond=0)
    t0 = now - 25 * M
    # sensors, one reading a minute up to now: the last 5 minutes high
    sensors = readings("00004", "aq-1", t0, [20.0] * 20 + [150.0] * 5)
    pipe.produce("sensor", batches(sensors[:20], 1))
    pipe.wait_for("SELECT count(*) FROM sensor_readings", 20)
    # the service desk syncs 20 dossiers of minutes 0-4 now, 20 minutes after the fact
    dossiers = [dossier(i, t0 + (i // 4) * M + timedelta(seconds=10 + i),
                        online=i % 4 != 0, on_time=i % 5 != 0) for i in range(20)]
    pipe.produce("service", batches(dossiers, 20))
    pipe.produce("sensor", batches(sensors[20:], 1))
    pipe.wait_for("SELECT count(*) FROM service_events", 20)
    pipe.wait_for("SELECT count(*) FROM sensor_readings", 25)
    # counted exactly: 20 resolved, 15 online, 16 on time; not late for their own source
    assert pipe.query("SELECT count(*) FROM service_events WHERE late") == [(0,)]
    assert pipe.query("SELECT sum(count), sum(sum) FROM rollup_1m WHERE metric IN"
                      " ('service.resolved', 'service.resolved.online',"
                      " 'service.resolved.on_time') GROUP BY metric ORDER BY metric") == [
        (20, 20.0), (20, 16.0), (20, 15.0)]  # resolved, resolved.on_time, resolved.online
    kpi = pipe.query("SELECT dossiers_resolved, resolved_online_share, on_time_share"
                     " FROM service_kpi_daily WHERE commune_code = '00004'")
    assert [(int(a), round(float(b), 4), round(float(c), 4)) for a, b, c in kpi] == [
        (20, 0.75, 0.8)] or sum(int(r[0]) for r in kpi) == 20  # a day boundary may split
    # the sensors' alert, unaffected by the dossiers' sync: high from minute 20, firing
    # 2 minutes later, active now, so paged (not backfilled)
    pipe.wait_for(f"SELECT count(*) FROM alert_transitions WHERE rule_id = 'pm25_{tag}'", 2)
    assert timeline(pipe, tag, "00004") == [("pending", t0 + 21 * M, False),
                                            ("firing", t0 + 23 * M, False)]
