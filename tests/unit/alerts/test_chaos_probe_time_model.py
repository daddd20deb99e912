"""The chaos suite's probe under the event-time model (docs/architecture.md, "Time model").

A probe is three 900 µg/m³ readings from the probe commune's one source; that source then
reports low readings (the chaos load). The probe alert must come when the commune's
clock passes the probe minute's end + out-of-orderness, not before, and not only after
the idle grace. These cases are why the probe rule aggregates with ``max`` and why the
load keeps probe communes reporting past their minute (``iocdev.chaos.load``).
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from iocdev.chaos.load import PROBE_RULE, PROBE_VALUE

from alerts.evaluator import Evaluator
from alerts.model import Transition, WindowPoint
from alerts.source_clocks import Sighting
from tests.support.clock import T0
from tests.unit.alerts.alerts_helpers import COMMUNES, rules_from

S = timedelta(seconds=1)
COMMUNE, SOURCE = "00004", "chaos-00004"


def make(tmp: Path, rule: str = PROBE_RULE) -> Evaluator:
    return Evaluator(rules_from(tmp, rule.format(tag="t")), COMMUNES, renotify_every=None,
                     escalate_after=None, out_of_orderness=10 * S, idle_grace=600 * S)


def minute0(count: int, total: float, high: float) -> WindowPoint:
    """The probe minute's rollup total as the sink returns it."""
    return WindowPoint(COMMUNE, "01", "pm25", T0, count, total, 1.0, high, 1.0)


def step(ev: Evaluator, points: list[WindowPoint], newest_s: float | None,
         wall_s: float) -> list[Transition]:
    """One committed evaluation: a batch whose newest event is ``newest_s`` (None: the
    idle tick), evaluated at wall time ``wall_s`` (seconds after T0)."""
    seen = [] if newest_s is None else [
        Sighting(SOURCE, "sensor", "chaos", COMMUNE, "01", T0 + newest_s * S, T0 + wall_s * S)]
    plan = ev.evaluate(points, seen, wall_now=T0 + wall_s * S)
    ev.commit(plan)
    return plan.transitions


def probe_then_background(ev: Evaluator) -> None:
    """Probe at :35; 20 low readings (sum 500) of the same source at :40, same minute."""
    assert step(ev, [minute0(3, 3 * PROBE_VALUE, PROBE_VALUE)], 35, 35.2) == []
    assert step(ev, [minute0(23, 3 * PROBE_VALUE + 500, PROBE_VALUE)], 40, 40.2) == []


def test_probe_fires_once_its_source_reports_past_minute_end_plus_out_of_orderness(
        tmp_path: Path) -> None:
    ev = make(tmp_path)
    probe_then_background(ev)
    assert step(ev, [], 69, 69.1) == []  # clock 1:09: boundary 1:00 not yet covered
    fired = step(ev, [], 71, 71.1)  # clock - 10 s = 1:01 >= 1:00: the minute closes
    assert [(t.to_state, t.value) for t in fired] == [("firing", PROBE_VALUE)]
    assert fired[0].at == T0 + 60 * S
    assert step(ev, [], 140, 140.1) == []  # keeps firing, no second transition


def test_a_source_that_stops_inside_the_probe_minute_alerts_only_after_its_idle_grace(
        tmp_path: Path) -> None:
    ev = make(tmp_path)
    probe_then_background(ev)
    for wall in (100, 300, 620):  # the idle tick: the source is not idle yet
        assert step(ev, [], None, wall) == []
    fired = step(ev, [], None, 40.2 + 600 + 11)  # idle: its clock runs on the wall clock
    assert [t.to_state for t in fired] == ["firing"]


def test_an_averaging_probe_rule_is_diluted_by_its_sources_later_readings(
        tmp_path: Path) -> None:
    ev = make(tmp_path, PROBE_RULE.replace("aggregate: max", "aggregate: avg"))
    probe_then_background(ev)  # avg (2700 + 500) / 23 = 139 < 500
    assert step(ev, [], 71, 71.1) == []
