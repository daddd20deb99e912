"""The time model, case by case (docs/architecture.md): per-source progress and the late
marker, a clock running ahead, idleness, a backlog, the plan/commit contract."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

from alerts.evaluator import Evaluator
from alerts.model import WindowPoint
from alerts.notify import plan as notify_plan
from alerts.source_clocks import Sighting
from ioccore.events.source_progress import SourceProgress
from tests.support.clock import T0
from tests.support.rulefiles import pm25_entry, rule_file
from tests.unit.alerts.alerts_helpers import COMMUNES, rules_from

M = timedelta(minutes=1)

RULE = rule_file("aq", pm25_entry("pm25_high", scope=None, window="5m", threshold=80,
                                  clear=60, for_="10m", keep_firing_for="5m",
                                  summary="PM2.5 {value:.1f}"))


def make(tmp: Path, **kw: timedelta) -> Evaluator:
    return Evaluator(rules_from(tmp, RULE), COMMUNES, renotify_every=None,
                     escalate_after=None, **kw)  # type: ignore[arg-type]


def pt(n: int, value: float, commune: str = "00004") -> WindowPoint:
    return WindowPoint(commune, "01", "pm25", T0 + n * M, 1, value, value, value, value)


def seen(source: str, newest: datetime, wall: datetime, commune: str = "00004",
         oldest: datetime | None = None) -> Sighting:
    return Sighting(source, "sensor", "env", commune, "01", newest, wall, oldest)


def test_late_is_judged_against_the_events_own_source() -> None:
    p = SourceProgress(allowed_lateness_s=300)
    t = T0.timestamp()
    p.advance(["fast"], [t + 240 + 3600])  # a device an hour (and 4 min) ahead
    p.advance(["ok"], [t])
    # the other source's events a minute old are not late; the fast one's own are
    assert p.mark(["ok", "ok", "fast"], [t - 60, t + 30, t + 60]) == [False, False, True]
    # in arrival order within a batch: a backlog in order is not late
    assert p.mark(["gw"] * 3, [t, t + 600, t + 200]) == [False, False, True]


def test_a_clock_running_ahead_does_not_advance_its_neighbours_minutes(tmp_path: Path
                                                                        ) -> None:
    ev = make(tmp_path)
    wall = T0 + 30 * M
    # "fast" says it is 00:34; "slow" has only reached 00:20: the commune waits for slow
    plan = ev.evaluate([pt(n, 90.0) for n in range(0, 21)],
                       [seen("fast", T0 + 34 * M, wall), seen("slow", T0 + 20 * M, wall)],
                       wall_now=wall)
    ev.commit(plan)
    (alert,) = ev.alerts.values()
    assert ev.cursors[alert.fingerprint] == T0 + 19 * M  # 00:20 - 60 s, floored
    assert alert.state == "firing"


def test_a_backlog_fires_at_its_event_time_and_a_quiet_scope_resolves_after_idleness(
        tmp_path: Path) -> None:
    """Issue 12's case: a condition held through a 110-minute backlog; the source then
    went quiet. The alert fires inside the backlog (for = 10 min of event time), is
    delivered at once with startsAt at its event-time start, and resolves on wall-clock
    time once the source is idle."""
    ev = make(tmp_path, idle_grace=timedelta(minutes=10), idle_grace_max=timedelta(minutes=30))
    wall = T0 + 140 * M
    plan = ev.evaluate([pt(n, 95.0) for n in range(110)],
                       [seen("gw", T0 + 110 * M - timedelta(seconds=5), wall,
                             oldest=T0)], wall_now=wall)
    ev.commit(plan)
    firing = [t for t in plan.transitions if t.to_state == "firing"]
    assert [(t.from_state, t.at, t.backfilled) for t in firing] == [
        ("pending", T0 + 11 * M, False)]
    assert firing[0].since == T0 + 11 * M
    assert {n.receiver for n in notify_plan(firing[0], ["alertmanager", "webhook"], [],
                                            generator_url="")} == {"alertmanager", "webhook"}
    # quiet: nothing moves before the (adaptive, capped) idle grace, then it resolves
    for minutes in (5, 20, 29):
        p = ev.evaluate(wall_now=wall + minutes * M)
        ev.commit(p)
        assert p.transitions == []
    p = ev.evaluate(wall_now=wall + 31 * M)
    ev.commit(p)
    # the last data minute (01:49) leaves the 5-minute window at 01:55; 5 min more of
    # keep_firing_for: resolved at 02:00 of event time
    assert [(t.to_state, t.at) for t in p.transitions] == [("resolved", T0 + 120 * M)]


def test_an_episode_inside_a_backlog_is_backfilled_and_not_paged(tmp_path: Path) -> None:
    ev = make(tmp_path)
    values = [20.0] * 10 + [95.0] * 20 + [20.0] * 30
    wall = T0 + 120 * M
    plan = ev.evaluate([pt(n, v) for n, v in enumerate(values)],
                       [seen("gw", T0 + 60 * M, wall, oldest=T0)], wall_now=wall)
    ev.commit(plan)
    states = [(t.to_state, t.at, t.backfilled) for t in plan.transitions]
    # 5-min average above 80 from the boundary 00:15; firing 10 min later; under the
    # clear level (60) at 00:33, resolved after keep_firing_for (5 min)
    assert states == [("pending", T0 + 15 * M, True), ("firing", T0 + 25 * M, True),
                      ("resolved", T0 + 38 * M, True)]
    firing = plan.transitions[1]
    sent = notify_plan(firing, ["alertmanager", "webhook"], [], generator_url="")
    assert [n.receiver for n in sent] == ["webhook"]
    assert sent[0].payload["backfilled"] is True


def test_an_uncommitted_plan_is_undone(tmp_path: Path) -> None:
    """The transaction that stored the plan failed: the evaluator is as before it, and
    the retried batch makes the same transitions."""
    ev = make(tmp_path)
    wall = T0 + 30 * M
    windows = [pt(n, 95.0) for n in range(25)]
    sight = [seen("s", T0 + 25 * M, wall)]
    first = ev.evaluate(windows, sight, wall_now=wall)
    assert first.transitions
    ev.discard()
    assert ev.alerts == {} and ev.cursors == {} and ev.sources == {}
    again = ev.evaluate(windows, sight, wall_now=wall)
    assert again.transitions == first.transitions
    third = ev.evaluate(windows, sight, wall_now=wall)  # a plan left open is undone too
    assert third.transitions == first.transitions
    ev.commit(third)
    assert ev.evaluate(windows, sight, wall_now=wall).transitions == []


def test_memory_is_bounded(tmp_path: Path) -> None:
    ev = Evaluator(rules_from(tmp_path, RULE), COMMUNES, max_sources=50)
    wall = T0
    for i in range(200):
        wall = T0 + i * timedelta(seconds=1)
        ev.commit(ev.evaluate([], [seen(f"s{i}", wall, wall, "00070")], wall_now=wall))
    ev.commit(ev.evaluate(wall_now=wall + 2 * M))
    assert len(ev.sources) == 50
    # windows older than any evaluation can read again (clock - window - out-of-orderness
    # - 2 min = 04:52:50) are dropped
    ev.commit(ev.evaluate([pt(n, 10.0) for n in range(300)],
                          [seen("x", T0 + 300 * M, wall + 3 * M)], wall_now=wall + 3 * M))
    assert ev.windows.first("00004", None, "pm25") == T0 + 293 * M
