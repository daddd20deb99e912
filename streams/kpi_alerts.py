"""KPI target rules in the worker: the current period's KPIs against their targets.

Like the global rules (:mod:`streams.global_alerts`), these need every commune, so one
worker at a time evaluates them: the holder of their own PostgreSQL advisory lock. Every
``interval`` it counts the KPIs of the current Vietnam-time day/week/month per province
and tier (:func:`ioccore.kpis.fetch_counts`, exact per dossier) with the targets in
effect, lets :class:`alerts.kpi_targets.KpiTargetEvaluator` decide, and stores the
transitions through the alerts store (alert rows and outbox in one transaction).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg

from alerts.kpi_targets import KpiTargetEvaluator, TargetReading
from alerts.model import CommuneInfo, Transition
from alerts.notify import generator_url, receivers_for
from alerts.rules import KpiTargetRule, RuleSet
from alerts.store import load_states, persist
from ioccore import kpis, metrics
from ioccore.db.connections import aconnect
from ioccore.settings import Settings

log = logging.getLogger(__name__)

_LOCK_KEY = 0x10C_0017
KPI_TARGETS_EVERY_S = 60.0
Publish = Callable[[list[Transition]], Awaitable[None]]


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


class KpiTargetAlerts:
    """Evaluates the KPI target rules when this process holds the lock."""

    def __init__(self, settings: Settings, conninfo: str, rules: RuleSet,
                 communes: Mapping[str, CommuneInfo], publish: Publish | None = None) -> None:
        self._conninfo = conninfo
        self._rules = rules.kpi_targets
        self._settings = settings
        self._receivers = receivers_for(settings)
        self._generator_url = generator_url(settings)
        self._provinces = {c.province_code: c.province_name for c in communes.values()}
        self.publish = publish
        self._evaluator: KpiTargetEvaluator | None = None
        self._conn: psycopg.AsyncConnection[Any] | None = None

    @property
    def has_rules(self) -> bool:
        return bool(self._rules)

    async def _holder(self) -> psycopg.AsyncConnection[Any] | None:
        if self._conn is not None and not self._conn.closed:
            return self._conn
        conn = await aconnect(self._conninfo, purpose="kpi-rules", autocommit=True)
        row = await (await conn.execute("SELECT pg_try_advisory_lock(%s)", (_LOCK_KEY,))
                     ).fetchone()
        if not row or not row[0]:
            await conn.close()
            return None
        self._conn = conn
        alerts = self._settings.alerts
        self._evaluator = KpiTargetEvaluator(
            self._rules, province_names=self._provinces,
            renotify_every=timedelta(seconds=alerts.renotify_interval_s),
            escalate_after=timedelta(seconds=alerts.escalate_after_s))
        self._evaluator.restore(await load_states(
            conn, rule_ids=[r.id for r in self._rules], active_only=True))
        return conn

    async def tick(self, wall_now: datetime | None = None) -> int:
        """One evaluation; the number of transitions stored (0 if not the holder)."""
        if not self.has_rules:
            return 0
        try:
            conn = await self._holder()
            if conn is None or self._evaluator is None:
                return 0
            return await self._evaluate(conn, self._evaluator, wall_now or datetime.now(UTC))
        except psycopg.Error as exc:
            log.warning("KPI target evaluation failed: %s", exc)
            await self.close()
            return 0

    async def _evaluate(self, conn: psycopg.AsyncConnection[Any],
                        evaluator: KpiTargetEvaluator, wall: datetime) -> int:
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
        transitions = evaluator.evaluate(by_rule, wall)
        if not transitions:
            return 0
        result = await persist(conn, transitions, receivers=self._receivers,
                               generator_url=self._generator_url)
        if result.conflicts:
            evaluator.restore(await load_states(conn, fingerprints=sorted(result.conflicts)))
        for t in result.stored:
            metrics.ALERT_TRANSITIONS.labels(t.to_state, t.severity).inc()
        if self.publish is not None and result.stored:
            await self.publish(list(result.stored))
        return len(result.stored)

    async def close(self) -> None:
        if self._conn is not None:
            await self._conn.close()  # releases the lock
            self._conn = None
