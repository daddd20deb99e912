"""Absence rules ("a feed silent for 15 minutes"): readings from sources' arrival times.

Absence is about arrival, so these readings use the wall clock, not event time: the
value is the minutes since the scope's newest arrival. A scope is one source, one feed
or one department (``AbsenceRule.by``).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from datetime import datetime

from alerts.model import AlertState, Reading
from alerts.rules import AbsenceRule
from alerts.source_clocks import SourceState


def absence_readings(rule: AbsenceRule, sources: Mapping[str, SourceState], now: datetime,
                     only: set[str] | None = None) -> Iterator[Reading]:
    """One reading per scope of ``rule`` (``only``: of these sources alone)."""
    latest: dict[tuple[tuple[str, str], ...], datetime] = {}
    candidates: Iterable[tuple[str, SourceState]] = (
        sources.items() if only is None
        else ((i, sources[i]) for i in only if i in sources))
    for source_id, s in candidates:
        if rule.feed and s.feed != rule.feed:
            continue
        if rule.department and s.department != rule.department:
            continue
        if rule.sources and source_id not in rule.sources:
            continue
        if rule.by == "source":
            scope = {"source_id": source_id, "feed": s.feed, "department": s.department,
                     "commune_code": s.commune_code, "province_code": s.province_code}
        elif rule.by == "feed":
            scope = {"feed": s.feed}
        else:
            scope = {"department": s.department}
            if rule.feed:
                scope["feed"] = rule.feed
        key = tuple(sorted(scope.items()))
        if key not in latest or latest[key] < s.received_at:
            latest[key] = s.received_at
    for key, seen_at in latest.items():
        silent_min = max(0.0, (now - seen_at).total_seconds() / 60)
        yield Reading(dict(key), round(silent_min, 1), None)


def silent_heard(rule: AbsenceRule, active: list[AlertState], heard: set[str]) -> set[str]:
    """Of the sources heard from now, those that can resolve one of ``active`` (the
    rule's active alerts)."""
    if not active:
        return set()
    if rule.by != "source":
        return heard
    return {a.labels.get("source_id", "") for a in active} & heard
