"""KPI target rules (:class:`alerts.rules.KpiTargetRule`): readings in, transitions out.

Pure, like the window evaluator, and with the same protocol (``evaluate`` returns a
:class:`~alerts.undo.Plan`; ``commit`` it once its transitions are stored, or ``discard``
it): the singleton runner (:mod:`streams.singleton_rules`) counts the KPIs of the current
period from the database and passes one :class:`TargetReading` per rule and scope; this
module applies the margin, the hysteresis and the lifecycle (:func:`alerts.lifecycle.step`:
``for``, ``keep_firing_for``, reminders, escalation). A scope that has no reading any
more (a new period with no dossiers yet) resolves.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from alerts.annotations import number, province_names, render_all
from alerts.lifecycle import Timing, step
from alerts.model import AlertState, CommuneInfo, Severity, Transition, fingerprint
from alerts.rules import KpiTargetRule
from alerts.undo import AlertBook, Plan


@dataclass(frozen=True, slots=True)
class TargetReading:
    """One scope of one rule: the share so far and its target, in percent."""

    scope: Mapping[str, str]
    """``{}`` for the nation, ``{"province_code": "01"}`` for a province."""
    value: float | None
    target: float | None
    denominator: int
    period: date


def threshold(rule: KpiTargetRule, target: float) -> float:
    return target - rule.margin


class KpiTargetEvaluator(AlertBook):
    """Alert states of the KPI target rules; restore them after a restart."""

    def __init__(self, rules: Sequence[KpiTargetRule], *,
                 communes: Mapping[str, CommuneInfo] | None = None,
                 renotify_every: timedelta | None = timedelta(hours=12),
                 escalate_after: timedelta | None = None) -> None:
        self.rules = tuple(rules)
        self.communes = dict(communes or {})
        self.renotify_every = renotify_every
        self.escalate_after = escalate_after
        super().__init__()

    def evaluate(self, readings: Mapping[str, Sequence[TargetReading]], now: datetime
                 ) -> Plan:
        """Transitions at ``now`` given each rule's readings (by rule id)."""
        self.discard()
        plan = self._log.plan = Plan(wall_now=now)
        out: list[Transition] = []
        for rule in self.rules:
            seen: set[str] = set()
            timing = self._timing(rule)
            for reading in readings.get(rule.id, ()):
                scope = self._scope(rule, reading)
                fp = fingerprint(rule.id, scope)
                seen.add(fp)
                a = self.alerts.get(fp)
                cond = self._condition(rule, reading, a)
                if a is None:
                    if not cond:
                        continue
                    a = AlertState(
                        fingerprint=fp, rule_id=rule.id, state="inactive",
                        severity=rule.severity,
                        labels={"alertname": rule.id, "severity": rule.severity,
                                **rule.labels, **scope})
                    self._log.set(self.alerts, fp, a)
                elif not cond and not a.active:
                    continue
                else:
                    a = self._log.touch(self.alerts, fp)
                a.last_value = reading.value
                a.annotations = self._annotations(rule, reading)
                out.extend(_step(plan, a, cond, now, timing, rule.severity))
            for fp, a in list(self.alerts.items()):
                if a.rule_id == rule.id and fp not in seen and a.active:
                    a = self._log.touch(self.alerts, fp)
                    a.last_value = None
                    out.extend(_step(plan, a, False, now, timing, a.severity))
        plan.transitions = out
        return plan

    @staticmethod
    def _scope(rule: KpiTargetRule, reading: TargetReading) -> dict[str, str]:
        return {**reading.scope, "kpi": rule.kpi, "tier": rule.tier}

    @staticmethod
    def _condition(rule: KpiTargetRule, reading: TargetReading, a: AlertState | None
                   ) -> bool:
        if reading.value is None or reading.target is None:
            return False
        if reading.denominator < rule.min_denominator:
            return False
        limit = threshold(rule, reading.target)
        if a is not None and a.active:
            limit += rule.hysteresis
        return reading.value < limit

    def _timing(self, rule: KpiTargetRule) -> Timing:
        esc = rule.escalation
        return Timing(
            for_=rule.for_, keep_firing_for=rule.keep_firing_for,
            renotify_every=rule.renotify_every or self.renotify_every,
            escalate_after=(esc.after or self.escalate_after) if esc else None,
            escalate_severity=esc.severity if esc else None,
            escalate_receiver=esc.receiver if esc else None)

    def _annotations(self, rule: KpiTargetRule, reading: TargetReading) -> dict[str, str]:
        province = reading.scope.get("province_code")
        name, name_en = province_names(self.communes, province)
        values = {
            "province_code": province, "province": name, "province_en": name_en,
            "value": reading.value, "severity": rule.severity, "rule": rule.id,
            "kpi": rule.kpi, "tier": rule.tier, "period": reading.period.isoformat(),
            "threshold": (None if reading.target is None
                          else _number(threshold(rule, reading.target))),
            "clear": (None if reading.target is None
                      else _number(threshold(rule, reading.target) + rule.hysteresis)),
            "window": rule.period,
        }
        return render_all(rule, values)


def _step(plan: Plan, a: AlertState, cond: bool, now: datetime, timing: Timing,
          severity: Severity) -> list[Transition]:
    """:func:`alerts.lifecycle.step`, noting in the plan a ``clear_since`` that moved
    without a transition: readings are not replayed after a restart, so the stored row
    must hold it for ``keep_firing_for`` to end when it would have without one."""
    before = a.clear_since
    out = step(a, cond, now, timing, severity)
    if not out and a.active and a.clear_since != before:
        plan.marks[a.fingerprint] = (a.seq, a.clear_since)
    return out


def _number(value: float) -> float | int:
    return number(round(value, 2))
