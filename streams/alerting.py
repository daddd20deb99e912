"""Partition rules inside stage 2: window totals in, stored transitions out.

Contract of :class:`PartitionAlerts`:
- :meth:`evaluate` runs inside stage 2's batch transaction, after the rows were written,
  with the windows the rollup upsert returned and the records the database accepted
  (rows refused at storage never reach the evaluator);
- the first time the worker sees a commune (after a start, a rebalance or a failed
  transaction) it restores that commune's active alert states, recent rollup windows and
  sources' last sightings from the database, so a restart neither re-announces a firing
  alert nor resolves it for want of data;
- :meth:`discard` after a failed transaction, :meth:`committed` after a successful one;
- it evaluates only the rules a commune-partitioned worker can evaluate exactly
  (``RuleSet.partition_rules``): source and commune scope, absence by source.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg

from alerts.evaluator import Evaluator
from alerts.model import CommuneInfo, Transition, WindowPoint
from alerts.notify import generator_url, receivers_for
from alerts.rules import RuleSet
from alerts.step import Sighting, sightings
from alerts.store import load_states
from ioccore.db.connections import connect
from ioccore.events.record import UNASSIGNED, Record
from ioccore.settings import Settings
from streams.evaluation import EvaluationStep, Publish

log = logging.getLogger(__name__)


def commune_names(conninfo: str) -> dict[str, CommuneInfo]:
    """Names for annotations: from the database when boundaries are loaded, else the
    bundled reference."""
    try:
        with connect(conninfo, purpose="worker") as conn:
            rows = conn.execute(
                "SELECT commune_code, commune_name, province_code, province_name "
                "FROM current_communes").fetchall()
        if rows:
            return {str(c): CommuneInfo(str(n), str(p), str(pn)) for c, n, p, pn in rows}
    except psycopg.Error as exc:
        log.warning("alerts: commune names from the database failed: %s", exc)
    from geo.bundled import read_units  # not geo.reference: no pandas in a worker

    units = read_units()
    provinces = {u.code: u.name for u in units if u.level == "province"}
    return {u.code: CommuneInfo(u.name, u.province_code, provinces.get(u.province_code, ""))
            for u in units if u.level == "commune"}


@dataclass(frozen=True, slots=True)
class Evaluated:
    """What one batch's evaluation stored (handed to :meth:`PartitionAlerts.committed`)."""

    stored: list[Transition]
    newest_event: float | None


def evaluator_factory(settings: Settings, rules: RuleSet,
                      communes: Mapping[str, CommuneInfo]) -> Any:
    """A zero-argument maker of fresh evaluators for ``rules``."""
    def make() -> Evaluator:
        a = settings.alerts
        return Evaluator(
            rules, communes,
            renotify_every=timedelta(seconds=a.renotify_interval_s),
            escalate_after=timedelta(seconds=a.escalate_after_s),
            out_of_orderness=timedelta(seconds=a.out_of_orderness_s),
            idle_grace=timedelta(seconds=a.idle_grace_s),
            idle_grace_max=timedelta(seconds=a.idle_grace_max_s),
            max_sources=a.max_sources)
    return make


class PartitionAlerts:
    """Evaluates partition rules for the communes of this worker's partitions."""

    def __init__(self, settings: Settings, rules: RuleSet,
                 communes: Mapping[str, CommuneInfo], *, publish: Publish | None = None
                 ) -> None:
        self._metrics = rules.metrics()
        self._history = rules.longest_window() + timedelta(minutes=2)
        self._step = EvaluationStep(
            evaluator_factory(settings, rules.partition_rules(), communes),
            receivers=receivers_for(settings), generator_url=generator_url(settings),
            publish=publish)
        self._known: set[str] = set()

    @property
    def evaluator(self) -> Evaluator:
        return self._step.evaluator

    async def evaluate(self, conn: psycopg.AsyncConnection[Any], windows: list[WindowPoint],
                       stored: Sequence[Record], watermark: float,
                       wall_now: datetime | None = None, *, full: bool | None = None
                       ) -> Evaluated:
        """Evaluate after the batch's write, in its transaction; persist transitions.

        A batch evaluates only the scopes its windows and records (or idleness) changed;
        with no windows and no records (the idle tick) it evaluates every scope it
        knows (``full`` overrides either). Both give the same transitions
        (``tests/unit/alerts/test_changed_only.py``); the tick is the safety net."""
        communes = {w.commune_code for w in windows} | {r.commune_code for r in stored}
        communes.discard(UNASSIGNED)
        new = communes - self._known
        if new:
            await self._recover(conn, sorted(new), watermark)
            self._known |= new
        wall = wall_now or datetime.now(UTC)
        points = [w for w in windows if w.metric in self._metrics]
        changed_only = not full if full is not None else bool(windows or stored)
        saved = await self._step.run(conn, points, sightings(stored, wall), wall,
                                     changed_only=changed_only)
        newest = max((r.occurred_at.timestamp() for r in stored), default=None)
        return Evaluated(saved, newest)

    def settle(self) -> None:
        """The transaction committed: the evaluator's plan is final (before anything else
        evaluates)."""
        self._step.settle()

    async def committed(self, evaluated: Evaluated) -> None:
        await self._step.committed(evaluated.stored, evaluated.newest_event)

    def discard(self) -> None:
        """The batch's transaction failed: rebuild everything from the database."""
        self._step.discard()
        self._known.clear()

    def forget(self) -> None:
        """Partitions revoked: drop every commune's state (reloaded when seen again)."""
        self.evaluator.forget_communes(list(self._known))
        self._known.clear()

    async def _recover(self, conn: psycopg.AsyncConnection[Any], communes: list[str],
                       watermark: float) -> None:
        """First sight of communes: stored alert states, recent windows, sources.

        Without the windows a restarted worker would see "no data" for a firing alert
        and resolve it; the rollup table holds exactly what the evaluator saw before.
        """
        ev = self.evaluator
        ev.restore(await load_states(conn, communes=communes, active_only=True))
        # sources this very transaction touched (last_received_at = now()) show this
        # batch's progress, not what was evaluated before it: no floor from them
        cur = await conn.execute(
            "SELECT source_id, feed, department, commune_code, last_seen, last_received_at,"
            " last_received_at = now() FROM sources WHERE commune_code = ANY(%s)",
            (communes,))
        rows = await cur.fetchall()
        seen = [Sighting(source_id, feed, department, commune, "", newest, received)
                for source_id, feed, department, commune, newest, received, _ in rows]
        before = [s for s, row in zip(seen, rows, strict=True) if not row[-1]]
        ev.restore_sources(before, datetime.now(UTC))
        # each commune's windows back from its own sources' progress, not the worker's
        oldest = min((s.newest for s in seen), default=datetime.fromtimestamp(watermark, UTC))
        since = oldest - self._history
        cur = await conn.execute(
            "SELECT commune_code, province_code, metric, bucket, count, sum, min, max, last"
            " FROM rollup_1m WHERE commune_code = ANY(%s) AND metric = ANY(%s)"
            " AND bucket >= %s", (communes, sorted(self._metrics), since))
        ev.observe(WindowPoint(*row) for row in await cur.fetchall())
