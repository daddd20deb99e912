"""Scenario timelines of the alert state machine, through the pure evaluator."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from alerts import lifecycle
from alerts.evaluator import Evaluator
from alerts.model import fingerprint
from tests.support.rulefiles import pm25_entry, rule_file
from tests.unit.alerts.alerts_helpers import (
    COMMUNES,
    minute,
    point,
    rules_from,
    run,
    seen,
    states,
    tick,
)


def pm25(kff: str = "0m", extra: str = "", window: str = "1m") -> str:
    return rule_file("aq", pm25_entry(
        "pm25_high", scope=None, window=window, threshold=55.5, clear=45.5, for_="5m",
        keep_firing_for=kff, extra=extra,
        summary="PM2.5 tại {commune} là {value:.1f} (ngưỡng {threshold})",
        summary_en="PM2.5 in {commune_en} is {value:.1f} (threshold {threshold})"))


def make(tmp_path: Path, kff: str = "0m", extra: str = "", **kw: Any) -> Evaluator:
    return Evaluator(rules_from(tmp_path, pm25(kff, extra)), COMMUNES, **kw)


def test_pending_then_firing_only_after_for(tmp_path: Path) -> None:
    ev = make(tmp_path)
    got = run(ev, {("00004", "pm25"): [20] * 3 + [80] * 10}, 13)
    assert states(got) == [(3, "state", "pending"), (8, "state", "firing")]
    firing = got[1][1]
    assert firing.labels["alertname"] == "pm25_high"
    assert firing.labels["commune_code"] == "00004" and firing.labels["province_code"] == "01"
    assert firing.annotations["summary_vi"] == "PM2.5 tại Phường Ba Đình là 80.0 (ngưỡng 55.5)"
    assert firing.annotations["summary_en"] == "PM2.5 in Ba Dinh Ward is 80.0 (threshold 55.5)"
    assert firing.fingerprint == fingerprint("pm25_high", {"commune_code": "00004",
                                                           "province_code": "01"})
    assert [t.seq for _, t in got] == [1, 2]


def test_pending_drops_back_to_inactive(tmp_path: Path) -> None:
    ev = make(tmp_path)
    got = run(ev, {("00004", "pm25"): [80, 80, 80, 20, 20]}, 5)
    assert states(got) == [(0, "state", "pending"), (3, "state", "inactive")]


def test_no_flapping_inside_the_hysteresis_band(tmp_path: Path) -> None:
    ev = make(tmp_path, renotify_every=None)
    # fires, then oscillates between 50 and 56 (inside 45.5..55.5 band and just above)
    values = [80.0] * 6 + [50.0, 56.0, 47.0, 55.0, 46.0] * 4 + [40.0]
    got = run(ev, {("00004", "pm25"): values}, len(values))
    assert states(got) == [(0, "state", "pending"), (5, "state", "firing"),
                           (26, "state", "resolved")]


def test_keep_firing_for(tmp_path: Path) -> None:
    ev = make(tmp_path, kff="3m")
    values = [80.0] * 6 + [20.0] * 2 + [80.0] + [20.0] * 5
    got = run(ev, {("00004", "pm25"): values}, len(values))
    # clear at 6-7 (2 min < 3m), back at 8, clear from 9: resolved at 12
    assert states(got) == [(0, "state", "pending"), (5, "state", "firing"),
                           (12, "state", "resolved")]


def test_acknowledge_then_resolve_and_new_episode(tmp_path: Path) -> None:
    ev = make(tmp_path)
    run(ev, {("00004", "pm25"): [80.0] * 6}, 6)
    (alert,) = ev.alerts.values()
    ack = lifecycle.acknowledge(alert, "nguyen.van.a", "đang xử lý", minute(6))
    assert (ack.from_state, ack.to_state, ack.actor, ack.note) == (
        "firing", "acknowledged", "nguyen.van.a", "đang xử lý")
    got = run(ev, {("00004", "pm25"): [80.0] * 8}, 2, start=6)
    assert got == []  # acknowledged: no re-notification, still acknowledged
    got = run(ev, {("00004", "pm25"): [80.0] * 8 + [20.0] * 3}, 2, start=8)
    assert states(got) == [(8, "state", "resolved")]
    assert got[0][1].from_state == "acknowledged"
    # the condition returns: a new episode, pending then firing again, seq continues
    got = run(ev, {("00004", "pm25"): [20.0] * 10 + [90.0] * 10}, 8, start=10)
    assert states(got) == [(10, "state", "pending"), (15, "state", "firing")]
    assert [t.seq for _, t in got] == [5, 6]


def test_renotify_while_firing_and_unacknowledged(tmp_path: Path) -> None:
    ev = make(tmp_path, extra="renotify_every: 10m", escalate_after=None)
    got = run(ev, {("00004", "pm25"): [80.0] * 40}, 40)
    assert states(got) == [(0, "state", "pending"), (5, "state", "firing"),
                           (15, "renotify", "firing"), (25, "renotify", "firing"),
                           (35, "renotify", "firing")]


def test_escalation_when_unacknowledged(tmp_path: Path) -> None:
    ev = make(tmp_path, extra="escalate: {after: 20m, severity: critical, receiver: duty}",
              renotify_every=None)
    got = run(ev, {("00004", "pm25"): [80.0] * 40}, 40)
    assert states(got) == [(0, "state", "pending"), (5, "state", "firing"),
                           (25, "escalate", "firing")]
    esc = got[-1][1]
    assert esc.severity == "critical" and esc.labels["severity"] == "critical"
    assert esc.receiver == "duty" and esc.labels["receiver"] == "duty"
    assert esc.replaces is not None and esc.replaces["severity"] == "warning"


def test_no_escalation_once_acknowledged(tmp_path: Path) -> None:
    ev = make(tmp_path, extra="escalate: {after: 20m, severity: critical}")
    run(ev, {("00004", "pm25"): [80.0] * 10}, 10)
    (alert,) = ev.alerts.values()
    lifecycle.acknowledge(alert, "op", None, minute(10))
    got = run(ev, {("00004", "pm25"): [80.0] * 60}, 50, start=10)
    assert got == []


def test_overrides_per_commune_and_province(tmp_path: Path) -> None:
    extra = ('overrides: [{commune: "00070", threshold: 30, clear: 25}, '
             '{province: "46", disabled: true}]')
    ev = make(tmp_path, extra=extra)
    got = run(ev, {("00004", "pm25"): [40.0] * 6, ("00070", "pm25"): [40.0] * 6,
                   ("19774", "pm25"): [90.0] * 6}, 6)
    assert {(t.labels["commune_code"], t.to_state) for _, t in got} == {
        ("00070", "pending"), ("00070", "firing")}
    assert got[-1][1].annotations["summary_en"] == "PM2.5 in Hoan Kiem Ward is 40.0 (threshold 30)"


def test_late_event_corrects_an_old_minute(tmp_path: Path) -> None:
    rules = rules_from(tmp_path, pm25(window="10m"))
    ev = Evaluator(rules, COMMUNES)
    run(ev, {("00004", "pm25"): [50.0] * 5}, 5)
    assert tick(ev, 5) == []
    # A late correction of minute 2 does not re-open minutes already evaluated, but the
    # next boundaries' windows (10 minutes) hold it.
    (t,) = tick(ev, 6, [point("00004", "pm25", 2, 200.0)])
    assert t.to_state == "pending" and t.value == 80.0 and t.at == minute(7)


def test_rate_of_change(tmp_path: Path) -> None:
    body = """
    groups:
      - name: flood
        rules:
          - id: rising
            feed: sensor
            metric: water_level
            aggregate: rate
            window: 30m
            op: ">"
            threshold: 0.5
            clear: 0.2
            severity: warning
            annotations:
              summary: {vi: "Nước lên {value:.2f} m/giờ", en: "Rising {value:.2f} m/h"}
    """
    ev = Evaluator(rules_from(tmp_path, body), COMMUNES)
    # +0.02 m a minute = 1.2 m/h, then flat
    values = [1.0 + 0.02 * i for i in range(20)] + [1.38] * 40
    got = run(ev, {("19774", "water_level"): values}, 60)
    assert states(got)[0] == (1, "state", "firing")
    assert got[0][1].annotations["summary_en"] == "Rising 1.20 m/h"
    assert states(got)[-1][2] == "resolved"


def test_kpi_rule_on_time_share(tmp_path: Path) -> None:
    body = """
    groups:
      - name: svc
        rules:
          - id: on_time_low
            kind: kpi
            feed: service
            numerator: service.resolved.on_time
            denominator: service.resolved
            window: 1d
            op: "<"
            threshold: 80
            clear: 85
            min_denominator: 10
            severity: warning
            annotations:
              summary: {vi: "Đúng hạn {value:.0f}%", en: "On time {value:.0f}%"}
    """
    ev = Evaluator(rules_from(tmp_path, body), COMMUNES)
    for n in range(30):
        got = tick(ev, n, [point("00004", "service.resolved", n, 1.0, count=4),
                           point("00004", "service.resolved.on_time", n, 1.0, count=3)])
        if n < 2:  # fewer than 10 dossiers: no verdict
            assert got == []
    (alert,) = ev.alerts.values()
    assert alert.state == "firing" and alert.annotations["summary_en"] == "On time 75%"


def test_absence_of_a_source_and_of_a_feed(tmp_path: Path) -> None:
    body = """
    groups:
      - name: feeds
        rules:
          - id: source_silent
            kind: absence
            by: source
            silent_for: 15m
            severity: warning
            annotations:
              summary: {vi: "{source_id} im lặng {value:.0f} phút", en: "{source_id} silent"}
          - id: feed_silent
            kind: absence
            by: feed
            feed: traffic
            silent_for: 15m
            severity: critical
            annotations:
              summary: {vi: "{feed} im lặng", en: "{feed} silent"}
    """
    ev = Evaluator(rules_from(tmp_path, body), COMMUNES, renotify_every=None)
    for n in range(40):
        sightings = [seen("aq-01", "sensor", "so-tnmt", "00004", n)]
        if n < 5:
            sightings.append(seen("cam-01", "traffic", "so-xay-dung", "00004", n))
        for t in tick(ev, n, sightings=sightings):
            assert n == 19, (n, t)
            assert t.to_state == "firing"
            if t.rule_id == "source_silent":
                assert t.annotations["summary_vi"] == "cam-01 im lặng 15 phút"
    fired = {a.rule_id: a for a in ev.alerts.values()}
    assert fired["source_silent"].labels["source_id"] == "cam-01"
    assert fired["feed_silent"].labels["feed"] == "traffic"
    got = tick(ev, 40, sightings=[seen("cam-01", "traffic", "so-xay-dung", "00004", 40)])
    assert {t.to_state for t in got} == {"resolved"}


def test_restore_continues_without_a_second_firing(tmp_path: Path) -> None:
    ev = make(tmp_path, renotify_every=None, escalate_after=None)
    run(ev, {("00004", "pm25"): [80.0] * 10}, 10)
    snapshot = [a for a in ev.alerts.values()]
    fresh = make(tmp_path, renotify_every=None, escalate_after=None)
    fresh.restore(snapshot)  # recovery: stored states and recent rollup_1m minutes
    fresh.observe([point("00004", "pm25", n, 80.0) for n in range(10)])
    got = run(fresh, {("00004", "pm25"): [80.0] * 20}, 5, start=10)
    assert got == []
    got = run(fresh, {("00004", "pm25"): [80.0] * 15 + [10.0] * 5}, 2, start=15)
    assert states(got) == [(15, "state", "resolved")]
