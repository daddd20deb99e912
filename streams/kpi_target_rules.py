"""KPI target rules, a singleton kind: the current period's KPIs against their targets.

Run by the lock holder (:mod:`streams.singleton_rules`) every ``KPI_TARGETS_EVERY_S``:
it counts the KPIs of the current Vietnam-time day/week/month per province and tier
(:func:`ioccore.kpis.fetch_counts`, exact per dossier) with the targets in effect, lets
:class:`alerts.kpi_target_evaluator.KpiTargetEvaluator` decide, and stores the
transitions through the one evaluation step (:mod:`streams.evaluation`).

The counts are exact whatever the arrival order, batching or duplication of the
dossiers' events (each dossier is counted once, from the database), so the state a tick
reaches depends only on what is stored by then.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

import psycopg

from alerts.kpi_target_evaluator import KpiTargetEvaluator, TargetReading
from alerts.model import CommuneInfo
from alerts.notify import generator_url, receivers_for
from alerts.rules import KpiTargetRule, RuleSet
from alerts.store import load_states
from ioccore import kpis
from ioccore.settings import Settings
from streams.evaluation import EvaluationStep, Planned, Publish

KPI_TARGETS_EVERY_S = 60.0


def readings(rule: KpiTargetRule, rows: list[kpis.CountRow]) -> list[TargetReading]:
    """The rule's readings from one period's counts (by province, with rolled-up rows)."""
    kpi = next(k for k in kpis.KPIS if k.id == rule.kpi)
    out = []
    for row in rows:
        if row.tier != rule.tier:
            continue
        if (rule.scope == "nation") != (row.province_code is None):
            continue
        v = row.kpi(kpi)
        scope = {} if row.province_code is None else {"province_code": row.province_code}
        out.append(TargetReading(
            scope, None if v.value is None else 100.0 * v.value,
            None if v.target is None else 100.0 * v.target, v.denominator, row.period))
    return out


class KpiTargetRules:
    """The KPI target rules' evaluator, fed with the period's counts every tick."""

    name = "KPI target rules"
    every_s = KPI_TARGETS_EVERY_S

    def __init__(self, settings: Settings, rules: RuleSet,
                 communes: Mapping[str, CommuneInfo], *, publish: Publish | None = None
                 ) -> None:
        self._rules = rules.kpi_targets
        alerts = settings.alerts

        def make() -> KpiTargetEvaluator:
            return KpiTargetEvaluator(
                self._rules, communes=communes,
                renotify_every=timedelta(seconds=alerts.renotify_interval_s),
                escalate_after=timedelta(seconds=alerts.escalate_after_s))

        self.step = EvaluationStep(make, receivers=receivers_for(settings),
                                   generator_url=generator_url(settings), publish=publish)

    @property
    def has_rules(self) -> bool:
        return bool(self._rules)

    async def restore(self, conn: psycopg.AsyncConnection[Any]) -> None:
        self.step.discard()
        self.step.evaluator.restore(await load_states(
            conn, rule_ids=[r.id for r in self._rules], active_only=True))

    async def plan(self, conn: psycopg.AsyncConnection[Any], wall: datetime) -> Planned:
        today = kpis.vn_today(wall)
        by_rule: dict[str, list[TargetReading]] = {}
        counted: dict[str, list[kpis.CountRow]] = {}
        for rule in self._rules:
            if rule.period not in counted:
                start = kpis.period_start(today, rule.period)
                counted[rule.period] = await kpis.fetch_counts(
                    conn, grain=rule.period, start=start,
                    end=kpis.next_period(start, rule.period), by_province=True)
            by_rule[rule.id] = readings(rule, counted[rule.period])
        return await self.step.plan(conn, lambda ev: ev.evaluate(by_rule, wall))

    def commit(self, planned: Planned) -> None:
        self.step.commit(planned)

    async def publish(self, planned: Planned) -> None:
        await self.step.publish(planned)

    def discard(self) -> None:
        self.step.discard()
