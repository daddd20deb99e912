"""Partition rules inside stage 2: window totals in, stored transitions out.

Contract of :class:`PartitionAlerts`:
- :meth:`evaluate` runs inside stage 2's batch transaction, after the rows were written,
  with the windows the rollup upsert returned and the records the database accepted
  (rows refused at storage never reach the evaluator);
- the first time the worker sees a commune (after a start, a rebalance or a failed
  transaction) it restores that commune's active alert states, recent rollup windows and
  sources' last sightings from the database, so a restart neither re-announces a firing
  alert nor resolves it for want of data;
- :meth:`commit` after its transaction committed (before anything else evaluates),
  :meth:`discard` after a failed one, :meth:`publish` once the batch is done;
- it evaluates only the rules a commune-partitioned worker can evaluate exactly
  (``RuleSet.partition_rules``): source and commune scope, absence by source.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg

from alerts.evaluator import Evaluator
from alerts.model import CommuneInfo, WindowPoint
from alerts.notify import generator_url, receivers_for
from alerts.rules import RuleSet
from alerts.source_clocks import sightings
from alerts.store import load_sightings, load_states, load_windows
from ioccore.db.connections import connect
from ioccore.events.record import UNASSIGNED, Record
from ioccore.settings import Settings
from streams.evaluation import EvaluationStep, Planned, Publish

log = logging.getLogger(__name__)


def commune_names(conninfo: str) -> dict[str, CommuneInfo]:
    """Names for annotations (Vietnamese and, where the boundaries have them, English):
    from the database when boundaries are loaded, else the bundled reference."""
    try:
        with connect(conninfo, purpose="worker") as conn:
            rows = conn.execute(
                "SELECT c.commune_code, c.commune_name, c.province_code, c.province_name,"
                " c.commune_name_en, p.province_name_en FROM current_communes c"
                " LEFT JOIN current_provinces p USING (province_code)").fetchall()
        if rows:
            return {str(c): CommuneInfo(str(n), str(p), str(pn), ne, pne)
                    for c, n, p, pn, ne, pne in rows}
    except psycopg.Error as exc:
        log.warning("alerts: commune names from the database failed: %s", exc)
    from geo.bundled import read_units  # not geo.reference: no pandas in a worker

    units = read_units()
    provinces = {u.code: u.name for u in units if u.level == "province"}
    return {u.code: CommuneInfo(u.name, u.province_code, provinces.get(u.province_code, ""))
            for u in units if u.level == "commune"}


def evaluator_factory(settings: Settings, rules: RuleSet,
                      communes: Mapping[str, CommuneInfo]) -> Callable[[], Evaluator]:
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

    async def plan(self, conn: psycopg.AsyncConnection[Any], windows: list[WindowPoint],
                   stored: Sequence[Record], watermark: float,
                   wall_now: datetime | None = None, *, full: bool | None = None
                   ) -> Planned:
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
        seen = sightings(stored, wall)
        newest = max((r.occurred_at.timestamp() for r in stored), default=None)
        return await self._step.plan(
            conn, lambda ev: ev.evaluate(points, seen, wall_now=wall,
                                         changed_only=changed_only),
            newest_event=newest)

    def commit(self, planned: Planned) -> None:
        """The transaction committed: the plan is final (call before anything else
        evaluates)."""
        self._step.commit(planned)

    async def publish(self, planned: Planned) -> None:
        await self._step.publish(planned)

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
        # sources this very transaction touched show this batch's progress, not what was
        # evaluated before it: no floor from them
        rows = await load_sightings(conn, communes=communes)
        ev.restore_sources([s for s, touched in rows if not touched], datetime.now(UTC))
        # each commune's windows back from its own sources' progress, not the worker's
        oldest = min((s.newest for s, _ in rows),
                     default=datetime.fromtimestamp(watermark, UTC))
        since = oldest - self._history
        ev.observe(await load_windows(conn, self._metrics, dict.fromkeys(communes, since)))
