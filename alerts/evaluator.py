"""The evaluator: window totals and source sightings in, transitions out. No I/O.

One evaluator per stage-2 worker (for the communes of its partitions), fed with
:meth:`Evaluator.observe` and :meth:`Evaluator.observe_source`, asked for transitions
with :meth:`Evaluator.evaluate` at the partition's event-time watermark. After a restart
or a rebalance, :meth:`Evaluator.restore` loads the alerts' persisted state, so an alert
already firing is not announced again.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from alerts.durations import format_duration
from alerts.lifecycle import Timing, step
from alerts.model import AlertState, CommuneInfo, Transition, WindowPoint, fingerprint
from alerts.rules import (
    AbsenceRule,
    ComparedRule,
    KpiRule,
    Limits,
    Rule,
    RuleSet,
    ThresholdRule,
    compare,
)
from alerts.templates import render
from alerts.windows import MINUTE, WindowStore, aggregate, floor_minute, merge


@dataclass(frozen=True, slots=True)
class SourceSighting:
    source_id: str
    feed: str
    department: str
    commune_code: str
    province_code: str
    seen_at: datetime


@dataclass(frozen=True, slots=True)
class _Reading:
    """What one rule sees for one scope at one evaluation."""

    scope: dict[str, str]
    value: float | None
    limits: Limits | None
    guards_ok: bool = True


class Evaluator:
    """Pure alert evaluation for a set of communes (see module docstring)."""

    def __init__(
        self,
        rules: RuleSet,
        communes: Mapping[str, CommuneInfo],
        *,
        renotify_every: timedelta | None = timedelta(seconds=900),
        escalate_after: timedelta | None = timedelta(seconds=1800),
    ) -> None:
        self.rules = rules
        self.communes = communes
        self.renotify_every = renotify_every
        self.escalate_after = escalate_after
        self.windows = WindowStore()
        self.sources: dict[str, SourceSighting] = {}
        self.alerts: dict[str, AlertState] = {}
        self._by_rule: dict[str, set[str]] = defaultdict(set)
        self._retention = rules.longest_window() + MINUTE
        self._pruned_at: datetime | None = None

    # -- input ---------------------------------------------------------------------------
    def observe(self, points: Iterable[WindowPoint]) -> None:
        """Window totals (new or corrected minutes); a repeated minute replaces the old one."""
        for point in points:
            self.windows.put(point)

    def observe_source(self, source_id: str, feed: str, department: str, commune_code: str,
                       seen_at: datetime, province_code: str | None = None) -> None:
        """A source was heard from at ``seen_at`` (for absence rules; keeps the latest)."""
        have = self.sources.get(source_id)
        if have is not None and have.seen_at >= seen_at:
            return
        province = province_code or self._province(commune_code) or "unassigned"
        self.sources[source_id] = SourceSighting(source_id, feed, department, commune_code,
                                                 province, seen_at)

    def restore(self, states: Iterable[AlertState]) -> None:
        """Replace the state of these alerts with persisted state (restart, conflict)."""
        for a in states:
            self.alerts[a.fingerprint] = a
            self._by_rule[a.rule_id].add(a.fingerprint)

    def forget_communes(self, communes: Iterable[str]) -> None:
        """Drop the alerts of communes this evaluator no longer owns (after a rebalance)."""
        gone = set(communes)
        for fp, a in list(self.alerts.items()):
            if a.labels.get("commune_code") in gone:
                del self.alerts[fp]
                self._by_rule[a.rule_id].discard(fp)

    # -- evaluation ----------------------------------------------------------------------
    def evaluate(self, now: datetime, wall_now: datetime | None = None) -> list[Transition]:
        """Transitions at event time ``now``; absence rules use ``wall_now`` (default now)."""
        self._prune(now)
        out: list[Transition] = []
        for rule in self.rules:
            if isinstance(rule, AbsenceRule):
                readings = self._absence(rule, wall_now or now)
                at = wall_now or now
            else:
                readings = self._compared(rule, now)
                at = now
            out.extend(self._advance(rule, readings, at))
        return out

    def active(self) -> list[AlertState]:
        """Alerts pending, firing or acknowledged."""
        return [a for a in self.alerts.values() if a.active]

    def _advance(self, rule: Rule, readings: Iterable[_Reading], at: datetime
                 ) -> list[Transition]:
        out: list[Transition] = []
        seen: set[str] = set()
        timing = self._timing(rule)
        for reading in readings:
            fp = fingerprint(rule.id, reading.scope)
            seen.add(fp)
            a = self.alerts.get(fp)
            cond = self._condition(rule, reading, a)
            if a is None:
                if not cond:
                    continue
                a = self._new_state(rule, fp, reading)
            elif not cond and not a.active:
                continue
            a.last_value = reading.value
            base = reading.limits.severity if reading.limits else rule.severity
            a.annotations = self._annotations(rule, reading)
            out.extend(step(a, cond, at, timing, base))
        for fp in list(self._by_rule.get(rule.id, ())):
            a = self.alerts[fp]
            if fp in seen or not a.active:
                continue
            a.last_value = None  # no data any more: the condition is false
            out.extend(step(a, False, at, timing, a.severity))
        return out

    def _condition(self, rule: Rule, reading: _Reading, a: AlertState | None) -> bool:
        if reading.value is None or not reading.guards_ok:
            return False
        if isinstance(rule, AbsenceRule):
            return reading.value >= rule.silent_for.total_seconds() / 60
        if reading.limits is None:
            return False
        in_episode = a is not None and a.active
        limit = reading.limits.clear if in_episode else reading.limits.threshold
        return compare(rule.op, reading.value, limit)

    def _new_state(self, rule: Rule, fp: str, reading: _Reading) -> AlertState:
        severity = reading.limits.severity if reading.limits else rule.severity
        labels = {"alertname": rule.id, "severity": severity, **rule.labels, **reading.scope}
        a = AlertState(fingerprint=fp, rule_id=rule.id, state="inactive", severity=severity,
                       labels=labels)
        self.alerts[fp] = a
        self._by_rule[rule.id].add(fp)
        return a

    def _timing(self, rule: Rule) -> Timing:
        esc = rule.escalation
        return Timing(
            for_=rule.for_,
            keep_firing_for=rule.keep_firing_for,
            renotify_every=rule.renotify_every or self.renotify_every,
            escalate_after=(esc.after or self.escalate_after) if esc else None,
            escalate_severity=esc.severity if esc else None,
            escalate_receiver=esc.receiver if esc else None,
        )

    # -- readings per rule kind -----------------------------------------------------------
    def _compared(self, rule: ThresholdRule | KpiRule, now: datetime) -> Iterator[_Reading]:
        metric = rule.metric if isinstance(rule, ThresholdRule) else rule.denominator
        keys = list(self.windows.keys(metric))
        if rule.scope == "province":
            provinces: dict[str, list[str]] = defaultdict(list)
            for commune, source in keys:
                if source is None:
                    provinces[self.windows.province_of.get(commune, "unassigned")].append(commune)
            for province, communes in provinces.items():
                limits = rule.limits(None, province)
                value = self._value(rule, communes, None, now)
                yield _Reading({"province_code": province}, value, limits,
                               self._guards(rule, communes, None, now))
            return
        for commune, source in keys:
            if (source is None) != (rule.scope == "commune"):
                continue
            province = self.windows.province_of.get(commune, "unassigned")
            scope = {"commune_code": commune, "province_code": province}
            if source is not None:
                scope["source_id"] = source
            limits = rule.limits(commune, province)
            yield _Reading(scope, self._value(rule, [commune], source, now), limits,
                           self._guards(rule, [commune], source, now))

    def _guards(self, rule: ThresholdRule | KpiRule, communes: list[str], source: str | None,
                now: datetime) -> bool:
        if not isinstance(rule, ThresholdRule) or not rule.when:
            return True
        for g in rule.when:
            parts = [self.windows.minutes(c, source, g.metric, now, rule.window)
                     for c in communes]
            value = aggregate(g.aggregate, parts[0] if len(parts) == 1 else merge(parts))
            if value is None or not compare(g.op, value, g.threshold):
                return False
        return True

    def _value(self, rule: ThresholdRule | KpiRule, communes: list[str], source: str | None,
               now: datetime) -> float | None:
        def series(metric: str) -> list[Any]:
            parts = [self.windows.minutes(c, source, metric, now, rule.window) for c in communes]
            return parts[0] if len(parts) == 1 else merge(parts)

        if isinstance(rule, ThresholdRule):
            return aggregate(rule.aggregate, series(rule.metric), rule.min_count)
        denominator: int = sum(t.count for _, t in series(rule.denominator))
        if denominator < rule.min_denominator:
            return None
        # Numerators are 0/1 metrics (docs/architecture.md): their window sum counts the
        # events that meet the condition; the denominator's count is the base.
        numerator: float = sum(t.sum for _, t in series(rule.numerator))
        return 100.0 * numerator / denominator

    def _absence(self, rule: AbsenceRule, now: datetime) -> Iterator[_Reading]:
        latest: dict[tuple[tuple[str, str], ...], datetime] = {}
        for s in self.sources.values():
            if rule.feed and s.feed != rule.feed:
                continue
            if rule.department and s.department != rule.department:
                continue
            if rule.sources and s.source_id not in rule.sources:
                continue
            if rule.by == "source":
                scope = {"source_id": s.source_id, "feed": s.feed, "department": s.department,
                         "commune_code": s.commune_code, "province_code": s.province_code}
            elif rule.by == "feed":
                scope = {"feed": s.feed}
            else:
                scope = {"department": s.department}
                if rule.feed:
                    scope["feed"] = rule.feed
            key = tuple(sorted(scope.items()))
            if key not in latest or latest[key] < s.seen_at:
                latest[key] = s.seen_at
        for key, seen_at in latest.items():
            silent_min = max(0.0, (now - seen_at).total_seconds() / 60)
            yield _Reading(dict(key), round(silent_min, 1), None)

    # -- helpers -------------------------------------------------------------------------
    def _province(self, commune: str) -> str | None:
        info = self.communes.get(commune)
        return info.province_code if info else self.windows.province_of.get(commune)

    def _annotations(self, rule: Rule, reading: _Reading) -> dict[str, str]:
        if not rule.annotations:
            return {}
        scope = reading.scope
        commune = scope.get("commune_code")
        info = self.communes.get(commune) if commune else None
        province = scope.get("province_code") or (info.province_code if info else None)
        province_info = info or next(
            (c for c in self.communes.values() if c.province_code == province), None)
        values: dict[str, Any] = {
            "commune": info.name if info else commune,
            "commune_en": (info.name_en or info.name) if info else commune,
            "commune_code": commune,
            "province": province_info.province_name if province_info else province,
            "province_en": ((province_info.province_name_en or province_info.province_name)
                            if province_info else province),
            "province_code": province,
            "source_id": scope.get("source_id"),
            "feed": scope.get("feed") or getattr(rule, "feed", None),
            "department": scope.get("department"),
            "value": reading.value,
            "severity": rule.severity,
            "rule": rule.id,
        }
        if isinstance(rule, ThresholdRule):
            values["metric"] = rule.metric
        if isinstance(rule, ComparedRule):
            values["window"] = format_duration(rule.window)
            if reading.limits:
                values["threshold"] = _number(reading.limits.threshold)
                values["clear"] = _number(reading.limits.clear)
        else:
            values["window"] = format_duration(rule.silent_for)
            values["threshold"] = _number(rule.silent_for.total_seconds() / 60)
        out: dict[str, str] = {}
        for ann in rule.annotations:
            out[f"{ann.name}_vi"] = render(ann.vi, values)
            out[f"{ann.name}_en"] = render(ann.en, values)
        return out

    def _prune(self, now: datetime) -> None:
        minute = floor_minute(now)
        if self._pruned_at == minute:
            return
        self._pruned_at = minute
        self.windows.prune(minute - self._retention)


def _number(value: float) -> float | int:
    """``80.0`` renders as ``80`` in annotations; ``55.5`` stays."""
    return int(value) if float(value).is_integer() else value
