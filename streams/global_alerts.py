"""Rules that need every commune: province scope, and absence by feed or department.

A commune-partitioned worker sees only its own communes, so these rules run in exactly
one worker at a time: the holder of a PostgreSQL advisory lock (held by a dedicated
connection; if that worker dies the lock is released and another takes over on its next
tick). The holder evaluates from the database, not from the stream: one-minute window
totals from ``rollup_1m`` (what Grafana shows) and sources' wall-clock
``last_received_at``, every ``interval`` seconds, so a feed that stops entirely is still
noticed. State goes through the same store as every other alert.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg

from alerts.evaluator import Evaluator
from alerts.model import CommuneInfo, WindowPoint
from alerts.notify import generator_url, receivers_for
from alerts.rules import RuleSet
from alerts.store import load_states, persist
from ioc.core import metrics
from ioc.core.settings import Settings
from streams.alerting import Publish

log = logging.getLogger(__name__)

_LOCK_KEY = 0x10C_0003


class GlobalAlerts:
    """Evaluates the global rules when this process holds the lock."""

    def __init__(self, settings: Settings, conninfo: str, rules: RuleSet,
                 communes: Mapping[str, CommuneInfo], publish: Publish | None = None) -> None:
        self._conninfo = conninfo
        self._rules = rules.global_rules()
        self._metrics = sorted(self._rules.metrics())
        self._history = self._rules.longest_window() + timedelta(minutes=2)
        self._receivers = receivers_for(settings)
        self._generator_url = generator_url(settings)
        self._communes = communes
        self.publish = publish
        self._evaluator: Evaluator | None = None
        self._conn: psycopg.AsyncConnection[Any] | None = None
        self._settings = settings

    @property
    def has_rules(self) -> bool:
        return bool(self._rules.rules)

    async def _holder(self) -> psycopg.AsyncConnection[Any] | None:
        """The lock's connection when this process holds the lock, else None."""
        if self._conn is not None and not self._conn.closed:
            return self._conn
        conn = await psycopg.AsyncConnection.connect(self._conninfo, autocommit=True)
        row = await (await conn.execute("SELECT pg_try_advisory_lock(%s)", (_LOCK_KEY,))
                     ).fetchone()
        if not row or not row[0]:
            await conn.close()
            return None
        self._conn = conn
        self._evaluator = Evaluator(
            self._rules, self._communes,
            renotify_every=timedelta(seconds=self._settings.alerts.renotify_interval_s),
            escalate_after=timedelta(seconds=self._settings.alerts.escalate_after_s))
        ids = [r.id for r in self._rules.rules]
        self._evaluator.restore(await load_states(conn, rule_ids=ids, active_only=True))
        log.info("global alert rules: this worker evaluates %d rules", len(ids))
        return conn

    async def tick(self, wall_now: datetime | None = None) -> int:
        """One evaluation; returns the number of transitions stored (0 if not the holder)."""
        if not self.has_rules:
            return 0
        try:
            conn = await self._holder()
            if conn is None or self._evaluator is None:
                return 0
            return await self._evaluate(conn, self._evaluator, wall_now or datetime.now(UTC))
        except psycopg.Error as exc:
            log.warning("global alert evaluation failed: %s", exc)
            await self.close()
            return 0

    async def _evaluate(self, conn: psycopg.AsyncConnection[Any], evaluator: Evaluator,
                        wall: datetime) -> int:
        row = await (await conn.execute(
            "SELECT max(last_at) FROM rollup_1m WHERE metric = ANY(%s)", (self._metrics,))
                     ).fetchone()
        watermark: datetime = row[0] if row and row[0] else wall
        if self._metrics:
            cur = await conn.execute(
                "SELECT commune_code, province_code, metric, bucket, count, sum, min, max, last"
                " FROM rollup_1m WHERE metric = ANY(%s) AND bucket >= %s",
                (self._metrics, watermark - self._history))
            evaluator.observe(WindowPoint(*r) for r in await cur.fetchall())
        cur = await conn.execute(
            "SELECT source_id, feed, department, coalesce(commune_code, ''), last_received_at"
            " FROM sources")
        for source_id, feed, department, commune, seen in await cur.fetchall():
            evaluator.observe_source(source_id, feed, department, commune, seen)
        transitions = evaluator.evaluate(watermark, wall_now=wall)
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
