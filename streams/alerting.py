"""Alert evaluation inside stage 2: window totals in, stored transitions out.

Contract of :class:`AlertStage`:
- called after each committed sink batch with the windows that batch changed, the
  batch's records and the worker's event-time watermark;
- restores the stored state of a commune's alerts the first time the worker sees that
  commune (after a start or a rebalance), so a restart never re-announces an alert that
  is already firing;
- stores transitions, alert rows and outbox rows in one transaction (``alerts.store``,
  idempotent on fingerprint and sequence), then publishes the stored transitions;
- evaluates only the rules a commune-partitioned worker can evaluate exactly
  (``RuleSet.partition_rules``): source and commune scope, absence by source.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg

from alerts.evaluator import Evaluator
from alerts.model import CommuneInfo, Transition, WindowPoint
from alerts.notify import generator_url, receivers_for
from alerts.rules import RuleSet
from alerts.store import load_states, persist
from ioc.core import metrics
from ioc.core.events.record import UNASSIGNED, Record
from ioc.core.settings import Settings
from streams.sinks.timescale import WindowTotal

log = logging.getLogger(__name__)

Publish = Callable[[list[Transition]], Awaitable[None]]


def commune_names(conninfo: str) -> dict[str, CommuneInfo]:
    """Names for annotations: from the database when boundaries are loaded, else the
    bundled reference."""
    try:
        with psycopg.connect(conninfo) as conn:
            rows = conn.execute(
                "SELECT commune_code, commune_name, province_code, province_name "
                "FROM current_communes").fetchall()
        if rows:
            return {str(c): CommuneInfo(str(n), str(p), str(pn)) for c, n, p, pn in rows}
    except psycopg.Error as exc:
        log.warning("alerts: commune names from the database failed: %s", exc)
    from geo.reference import read_reference

    ref = read_reference()
    provinces = {str(r.code): str(r.name) for r in ref.provinces.itertuples()}
    return {str(r.code): CommuneInfo(str(r.name), str(r.province_code),
                                     provinces.get(str(r.province_code), ""))
            for r in ref.communes.itertuples()}


class AlertStage:
    """Feeds the evaluator and persists what it decides."""

    def __init__(self, settings: Settings, conninfo: str, rules: RuleSet,
                 communes: Mapping[str, CommuneInfo], publish: Publish | None = None) -> None:
        self._conninfo = conninfo
        self._receivers = receivers_for(settings)
        self._generator_url = generator_url(settings)
        self.publish = publish
        self._metrics = rules.metrics()
        self._history = rules.longest_window() + timedelta(minutes=2)
        self.evaluator = Evaluator(
            rules.partition_rules(), communes,
            renotify_every=timedelta(seconds=settings.alerts.renotify_interval_s),
            escalate_after=timedelta(seconds=settings.alerts.escalate_after_s))
        self._known: set[str] = set()
        self._conn: psycopg.AsyncConnection[Any] | None = None

    async def _connection(self) -> psycopg.AsyncConnection[Any]:
        if self._conn is None or self._conn.closed:
            self._conn = await psycopg.AsyncConnection.connect(self._conninfo, autocommit=True)
        return self._conn

    def forget(self) -> None:
        """Drop every commune's state (partitions revoked): reload when seen again."""
        self.evaluator.forget_communes(list(self._known))
        self._known.clear()

    async def __call__(self, windows: list[WindowTotal], records: list[Record],
                       watermark: float) -> None:
        conn = await self._connection()
        communes = {w.commune_code for w in windows} | {r.commune_code for r in records}
        communes.discard(UNASSIGNED)
        new = communes - self._known
        if new:
            await self._recover(conn, sorted(new), watermark)
            self._known |= new
        self.evaluator.observe(
            WindowPoint(w.commune_code, w.province_code, w.metric, w.bucket, w.count, w.sum,
                        w.min, w.max, w.last)
            for w in windows if w.metric in self._metrics)
        seen: dict[str, Record] = {}
        for rec in records:
            seen[rec.source_id] = rec
        wall = datetime.now(UTC)
        for source_id, rec in seen.items():
            self.evaluator.observe_source(source_id, rec.feed, rec.department,
                                          rec.commune_code, wall,
                                          province_code=rec.province_code)
        transitions = self.evaluator.evaluate(datetime.fromtimestamp(watermark, UTC),
                                              wall_now=wall)
        if not transitions:
            return
        result = await persist(conn, transitions, receivers=self._receivers,
                               generator_url=self._generator_url)
        if result.conflicts:
            self.evaluator.restore(await load_states(conn, fingerprints=sorted(result.conflicts)))
        newest = max((r.occurred_at.timestamp() for r in records), default=time.time())
        for t in result.stored:
            metrics.ALERT_TRANSITIONS.labels(t.to_state, t.severity).inc()
            metrics.LATENCY_ALERT.observe(max(0.0, time.time() - newest))
        if self.publish is not None and result.stored:
            await self.publish(list(result.stored))

    async def _recover(self, conn: psycopg.AsyncConnection[Any], communes: list[str],
                       watermark: float) -> None:
        """First sight of communes: their stored alert states and recent window totals.

        Without the windows a restarted worker would see "no data" for a firing alert
        and resolve it; the rollup table holds exactly what the evaluator saw before.
        """
        self.evaluator.restore(await load_states(conn, communes=communes, active_only=True))
        since = datetime.fromtimestamp(watermark, UTC) - self._history
        cur = await conn.execute(
            "SELECT commune_code, province_code, metric, bucket, count, sum, min, max, last"
            " FROM rollup_1m WHERE commune_code = ANY(%s) AND metric = ANY(%s)"
            " AND bucket >= %s", (communes, sorted(self._metrics), since))
        self.evaluator.observe(WindowPoint(*row) for row in await cur.fetchall())

    async def close(self) -> None:
        if self._conn is not None:
            await self._conn.close()
            self._conn = None
