"""Global rules, a singleton kind: province scope, and absence by feed or department.

Evaluated from the database by the lock holder (:mod:`streams.singleton_rules`): window
totals from ``rollup_1m`` (what Grafana shows) and sources' progress from ``sources``.
The evaluator is the one stage 2 uses, with its time guarantee: every province scope is
evaluated at every minute boundary its data covers, in order, whatever arrived between
two ticks (a live feed, an hourly upload, a backlog), and each scope's progress is stored
with its transitions (``alert_cursors``), so a new holder resumes where the last stopped.

What a tick reads: the sources whose data arrived since the previous read (every source
on the first tick of a holder), and, for their communes, the window totals from where
their province's scopes still need them: the slowest of its scopes' stored progress
minus the longest window. For a province not evaluated yet: a commune first heard of
since the previous read is read whole (all its data arrived since), and so is one on a
holder's first tick when other provinces have stored progress (the province is new);
one this holder has read before, from its newest data then minus the longest window.
Only the very first start (no stored progress at all: a new installation or the
upgrade that added it) reads, like stage 2 recovering a commune, from the newest data
minus the longest window.
Re-reading a window is harmless (a repeated minute replaces).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from datetime import datetime, timedelta
from typing import Any

import psycopg

from alerts.evaluator import Evaluator
from alerts.model import AlertState, CommuneInfo, fingerprint
from alerts.notify import generator_url, receivers_for
from alerts.rules import AbsenceRule, RuleSet
from alerts.source_clocks import EPOCH, Sighting
from alerts.store import load_cursors, load_sightings, load_states, load_windows, save_cursors
from ioccore.settings import Settings
from streams.alerting import evaluator_factory
from streams.evaluation import EvaluationStep, Planned, Publish

REREAD = timedelta(minutes=5)
"""Sources whose ``last_received_at`` is this close before the previous read are read
again: a stage-2 transaction that began before that read committed after it."""


class Reads:
    """Where a tick's input comes from: the database (:class:`SqlReads`) or, in the
    arrival-invariance tests, a model of it."""

    async def now(self) -> datetime:
        raise NotImplementedError

    async def sightings(self, received_since: datetime | None) -> list[Sighting]:
        raise NotImplementedError

    async def windows(self, metrics: Iterable[str], since: Mapping[str, datetime]
                      ) -> list[Any]:
        raise NotImplementedError


async def database_now(conn: psycopg.AsyncConnection[Any]) -> datetime:
    """The database's clock: singleton rules judge time by it, never by a worker's."""
    row = await (await conn.execute("SELECT now()")).fetchone()
    if row is None:
        raise RuntimeError("SELECT now() returned no row")
    value: datetime = row[0]
    return value


class SqlReads(Reads):
    def __init__(self, conn: psycopg.AsyncConnection[Any]) -> None:
        self._conn = conn

    async def now(self) -> datetime:
        return await database_now(self._conn)

    async def sightings(self, received_since: datetime | None) -> list[Sighting]:
        return [s for s, _ in await load_sightings(self._conn,
                                                   received_since=received_since)]

    async def windows(self, metrics: Iterable[str], since: Mapping[str, datetime]
                      ) -> list[Any]:
        return await load_windows(self._conn, metrics, since)


class GlobalRules:
    """The global rules' evaluator, fed from the database every tick."""

    name = "global rules"

    def __init__(self, settings: Settings, rules: RuleSet,
                 communes: Mapping[str, CommuneInfo], *, publish: Publish | None = None,
                 make_evaluator: Callable[[], Evaluator] | None = None) -> None:
        self._rules = rules.global_rules()
        self.every_s = settings.alerts.singleton_every_s
        self.rule_ids = [r.id for r in self._rules.rules]
        self._metrics = sorted(self._rules.metrics())
        self._history = self._rules.longest_window() + timedelta(minutes=2)
        self._province_rules = [r.id for r in self._rules.rules
                                if not isinstance(r, AbsenceRule) and r.scope == "province"]
        self._communes = communes
        self.step = EvaluationStep(
            make_evaluator or evaluator_factory(settings, self._rules, communes),
            receivers=receivers_for(settings), generator_url=generator_url(settings),
            publish=publish)
        self._read_at: datetime | None = None
        self._reading_at: datetime | None = None
        self._newest: dict[str, datetime] = {}
        """Per commune this holder has read: its sources' newest event time then."""
        self._reading: dict[str, datetime] = {}
        self._stored_progress = False

    @property
    def has_rules(self) -> bool:
        return bool(self._rules.rules)

    @property
    def evaluator(self) -> Evaluator:
        return self.step.evaluator

    async def restore(self, conn: psycopg.AsyncConnection[Any]) -> None:
        self.discard()
        self.resume(await load_cursors(conn, self.rule_ids),
                    await load_states(conn, rule_ids=self.rule_ids, active_only=True))

    def resume(self, cursors: Mapping[str, datetime], active: Iterable[AlertState]) -> None:
        """A new holder: the scopes' stored progress, then the active alerts. An active
        alert resumes at its last stored change instead, as stage 2's do: the minutes
        since are evaluated again from the stored windows, which rebuilds what was not
        stored (``keep_firing_for``'s clear_since, reminders) and repeats no transition."""
        states = list(active)
        again = {a.fingerprint for a in states}
        self._stored_progress = bool(cursors)
        self.evaluator.resume({fp: at for fp, at in cursors.items() if fp not in again})
        self.evaluator.restore(states)

    async def plan(self, conn: psycopg.AsyncConnection[Any], wall: datetime) -> Planned:
        planned = await self.plan_from(SqlReads(conn), wall, conn)
        await save_cursors(conn, planned.plan.cursors)
        return planned

    async def plan_from(self, reads: Reads, wall: datetime,
                        conn: psycopg.AsyncConnection[Any] | None = None) -> Planned:
        """Read what changed and evaluate it (storing the transitions when ``conn``)."""
        self._reading_at = await reads.now()
        seen = await reads.sightings(None if self._read_at is None
                                     else self._read_at - REREAD)
        points = (await reads.windows(self._metrics, self._since(seen))
                  if self._metrics else [])

        def evaluate(ev: Evaluator) -> Any:
            return ev.evaluate(points, seen, wall_now=wall)

        if conn is None:
            return Planned(evaluate(self.evaluator))
        return await self.step.plan(conn, evaluate)

    def _since(self, seen: list[Sighting]) -> dict[str, datetime]:
        """Per commune with new data: the first window minute to read (module docstring)."""
        newest: dict[str, datetime] = {}
        for s in seen:
            if s.commune_code and (s.commune_code not in newest
                                   or newest[s.commune_code] < s.newest):
                newest[s.commune_code] = s.newest
        ev = self.evaluator
        first_tick = self._read_at is None
        out: dict[str, datetime] = {}
        for commune, latest in newest.items():
            info = self._communes.get(commune)
            province = info.province_code if info else ev.windows.province_of.get(commune)
            cursors = [] if province is None else [
                c for c in (ev.cursors.get(fingerprint(rule_id, {"province_code": province}))
                            for rule_id in self._province_rules) if c is not None]
            if cursors:
                out[commune] = min(cursors) - self._history
            elif first_tick and not self._stored_progress:
                out[commune] = latest - self._history  # a first start: as stage 2 recovers
            elif commune in self._newest:
                out[commune] = self._newest[commune] - self._history
            else:
                out[commune] = EPOCH
        self._reading = newest
        return out

    def commit(self, planned: Planned) -> None:
        self.step.commit(planned)
        self._read_at = self._reading_at
        for commune, at in self._reading.items():
            if commune not in self._newest or self._newest[commune] < at:
                self._newest[commune] = at

    async def publish(self, planned: Planned) -> None:
        await self.step.publish(planned)

    def discard(self) -> None:
        self.step.discard()
        self._read_at = None
        self._newest.clear()
