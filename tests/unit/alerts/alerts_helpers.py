"""Builders shared by the alerts unit tests."""

from __future__ import annotations

import textwrap
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from pathlib import Path

from alerts.evaluator import Evaluator
from alerts.model import CommuneInfo, Transition, WindowPoint
from alerts.ruleload import load_rules
from alerts.rules import RuleSet
from alerts.source_clocks import Sighting
from tests.support.clock import T0

COMMUNES = {
    "00004": CommuneInfo("Phường Ba Đình", "01", "Thành phố Hà Nội", "Ba Dinh Ward", "Ha Noi"),
    "00070": CommuneInfo("Phường Hoàn Kiếm", "01", "Thành phố Hà Nội", "Hoan Kiem Ward",
                         "Ha Noi"),
    "19774": CommuneInfo("Phường Kim Long", "46", "Thành phố Huế", "Kim Long Ward", "Hue"),
}


def rules_from(tmp_path: Path, body: str, name: str = "rules.yaml") -> RuleSet:
    path = tmp_path / name
    path.write_text(textwrap.dedent(body), encoding="utf-8")
    return load_rules([path])


def minute(n: int) -> datetime:
    return T0 + timedelta(minutes=n)


def point(commune: str, metric: str, n: int, value: float, count: int = 1,
          source: str | None = None) -> WindowPoint:
    province = COMMUNES[commune].province_code if commune in COMMUNES else "00"
    return WindowPoint(commune, province, metric, minute(n), count, value * count, value,
                       value, value, source)


def run(ev: Evaluator, series: Mapping[tuple[str, str], Sequence[float | None]], minutes: int,
        start: int = 0) -> list[tuple[int, Transition]]:
    """Feed one value per minute and evaluate every minute; (minute, transition) pairs."""
    out: list[tuple[int, Transition]] = []
    for n in range(start, start + minutes):
        points = [point(c, m, n, v) for (c, m), vals in series.items()
                  if n < len(vals) and (v := vals[n]) is not None]
        out.extend((n, t) for t in tick(ev, n, points))
    return out


def tick(ev: Evaluator, n: int, points: list[WindowPoint] | None = None,
         sightings: list[Sighting] | None = None) -> list[Transition]:
    """Minute ``n`` is complete: evaluate it (as ``ioc rules test`` does) and commit."""
    plan = ev.evaluate(points or [], sightings or [], wall_now=minute(n),
                       complete_until=minute(n + 1))
    ev.commit(plan)
    return plan.transitions


def seen(source: str, feed: str, department: str, commune: str, n: int) -> Sighting:
    province = COMMUNES[commune].province_code if commune in COMMUNES else "00"
    return Sighting(source, feed, department, commune, province, minute(n), minute(n))


def states(pairs: list[tuple[int, Transition]]) -> list[tuple[int, str, str]]:
    return [(n, t.kind, t.to_state) for n, t in pairs]
