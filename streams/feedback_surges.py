"""Surge rules over citizen reports, a singleton kind (:mod:`streams.singleton_rules`).

Reports are written by the API (``ioccore.feedback.store``), not through Kafka and
stage 2, so their rules (feed ``feedback``) are evaluated from the database by the lock
holder, with the other singleton kinds, by :class:`alerts.surges.SurgeEvaluator`.

What a tick reads:

* the horizon: the wall clock minus ``alerts.feedback_settle_s``, floored to the minute;
* the changes: per commune and category, the earliest report time among the reports
  stored since the previous read (minus ``REREAD``: a report transaction that began
  before that read committed after it), plus every report for a minute after the
  previous horizon (not fully evaluated yet, however long ago it was stored);
* for changes at or before the previous horizon (late reports) and restored active
  alerts: their stored ledger (``alert_transitions``);
* the counts (``rollup_1m``) from where each job needs them to the horizon.

The horizon is stored with the transitions (``alert_cursors``, fingerprint
:data:`PROGRESS`), so a new holder resumes exactly there: nothing is evaluated twice or
skipped, and a report stored meanwhile is read as a change (late if needed).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

import psycopg

from alerts.model import AlertState, CommuneInfo
from alerts.notify import generator_url, receivers_for
from alerts.rules import RuleSet
from alerts.store import load_states, save_cursors
from alerts.surges import Change, LedgerEntry, Series, SurgeEvaluator
from alerts.windows import floor_minute
from ioccore.settings import Settings
from streams.evaluation import EvaluationStep, Planned, Publish
from streams.global_rules import database_now

REREAD = timedelta(minutes=5)
PROGRESS = "feedback-surges"
"""The ``alert_cursors`` row (fingerprint and rule id) holding the evaluated horizon."""


class Reads:
    """Where a tick's input comes from: the database (:class:`SqlReads`) or, in the
    property tests, a model of it."""

    async def now(self) -> datetime:
        raise NotImplementedError

    async def changes(self, metrics: list[str], stored_since: datetime | None,
                      after: datetime | None) -> list[Change]:
        raise NotImplementedError

    async def ledgers(self, fingerprints: list[str]) -> dict[str, list[LedgerEntry]]:
        raise NotImplementedError

    async def states(self, fingerprints: list[str]) -> list[AlertState]:
        raise NotImplementedError

    async def counts(self, ranges: Mapping[tuple[str, str], datetime], until: datetime
                     ) -> dict[tuple[str, str], Series]:
        raise NotImplementedError


_CHANGES = """
SELECT commune_code, province_code, 'feedback.received.' || service_code AS metric,
       min(received_at)
FROM feedback_reports
WHERE commune_code IS NOT NULL
  AND 'feedback.received.' || service_code = ANY(%(metrics)s)
  AND (%(since)s::timestamptz IS NULL OR stored_at > %(since)s
       OR received_at >= %(after)s)
GROUP BY 1, 2, 3
"""


class SqlReads(Reads):
    def __init__(self, conn: psycopg.AsyncConnection[Any]) -> None:
        self._conn = conn

    async def now(self) -> datetime:
        return await database_now(self._conn)

    async def changes(self, metrics: list[str], stored_since: datetime | None,
                      after: datetime | None) -> list[Change]:
        rows = await (await self._conn.execute(_CHANGES, {
            "metrics": metrics, "since": stored_since, "after": after})).fetchall()
        return [Change(c, p, m, floor_minute(first)) for c, p, m, first in rows]

    async def ledgers(self, fingerprints: list[str]) -> dict[str, list[LedgerEntry]]:
        out: dict[str, list[LedgerEntry]] = defaultdict(list)
        rows = await (await self._conn.execute(
            "SELECT fingerprint, kind, to_state, at FROM alert_transitions"
            " WHERE fingerprint = ANY(%s) ORDER BY fingerprint, seq",
            (fingerprints,))).fetchall()
        for fp, kind, to_state, at in rows:
            out[fp].append((kind, to_state, at))
        return dict(out)

    async def states(self, fingerprints: list[str]) -> list[AlertState]:
        return await load_states(self._conn, fingerprints=fingerprints)

    async def counts(self, ranges: Mapping[tuple[str, str], datetime], until: datetime
                     ) -> dict[tuple[str, str], Series]:
        if not ranges:
            return {}
        keys = sorted(ranges)
        rows = await (await self._conn.execute(
            "SELECT r.commune_code, r.metric, r.bucket, r.count FROM rollup_1m r"
            " JOIN unnest(%s::text[], %s::text[], %s::timestamptz[]) AS k(c, m, since)"
            "   ON r.commune_code = k.c AND r.metric = k.m"
            " WHERE r.bucket >= k.since AND r.bucket < %s",
            ([c for c, _ in keys], [m for _, m in keys], [ranges[k] for k in keys],
             until))).fetchall()
        by_key: dict[tuple[str, str], dict[datetime, int]] = defaultdict(dict)
        for commune, metric, bucket, count in rows:
            by_key[(commune, metric)][bucket] = int(count)
        return {k: Series(v) for k, v in by_key.items()}


class FeedbackSurges:
    """The surge rules' evaluator, fed from the database every tick."""

    name = "feedback surges"

    def __init__(self, settings: Settings, rules: RuleSet,
                 communes: Mapping[str, CommuneInfo], *, publish: Publish | None = None
                 ) -> None:
        self._rules = rules.feedback_rules()
        alerts = settings.alerts
        self.every_s = alerts.singleton_every_s
        self.settle = timedelta(seconds=alerts.feedback_settle_s)
        self.rule_ids = [r.id for r in self._rules]
        self._metrics = sorted({r.metric for r in self._rules})

        def make() -> SurgeEvaluator:
            return SurgeEvaluator(
                self._rules, communes,
                renotify_every=timedelta(seconds=alerts.renotify_interval_s),
                escalate_after=timedelta(seconds=alerts.escalate_after_s),
                backfill_after=self.settle + timedelta(minutes=2))

        self.step = EvaluationStep(make, receivers=receivers_for(settings),
                                   generator_url=generator_url(settings), publish=publish)
        self._read_at: datetime | None = None
        self._reading_at: datetime | None = None

    @property
    def has_rules(self) -> bool:
        return bool(self._rules)

    @property
    def evaluator(self) -> SurgeEvaluator:
        return self.step.evaluator

    async def restore(self, conn: psycopg.AsyncConnection[Any]) -> None:
        self.discard()
        row = await (await conn.execute(
            "SELECT evaluated_until FROM alert_cursors WHERE fingerprint = %s",
            (PROGRESS,))).fetchone()
        states = await load_states(conn, rule_ids=self.rule_ids, active_only=True)
        self.evaluator.resume(row[0] if row else None, states)

    async def plan(self, conn: psycopg.AsyncConnection[Any], wall: datetime) -> Planned:
        planned = await self.plan_from(SqlReads(conn), wall, conn)
        horizon = self.evaluator.horizon
        if horizon is not None:
            await save_cursors(conn, {PROGRESS: (PROGRESS, horizon)})
        return planned

    async def plan_from(self, reads: Reads, wall: datetime,
                        conn: psycopg.AsyncConnection[Any] | None = None) -> Planned:
        """Read what changed and evaluate it up to the horizon (storing the transitions
        when ``conn``; the horizon is then in ``self.evaluator`` until commit or discard)."""
        ev = self.evaluator
        self._reading_at = await reads.now()
        previous = ev.horizon
        since = (None if previous is None else
                 (self._read_at if self._read_at is not None else previous) - REREAD)
        changes = await reads.changes(self._metrics, since, previous)
        late = sorted(ev.late(changes))
        ledgers = await reads.ledgers(late) if late else {}
        missing = [fp for fp in late if fp not in ev.alerts]
        if missing:
            ev.restore(await reads.states(missing))
        jobs = ev.jobs(changes, ledgers)
        ranges: dict[tuple[str, str], datetime] = {}
        for job in jobs:
            start = job.first_minute
            ranges[job.key] = min(start, ranges.get(job.key, start))
        horizon = floor_minute(wall - self.settle)
        series = await reads.counts(ranges, horizon)

        def evaluate(e: SurgeEvaluator) -> Any:
            return e.evaluate(jobs, series, ledgers, horizon, wall)

        if conn is None:
            return Planned(evaluate(ev))
        return await self.step.plan(conn, evaluate)

    def commit(self, planned: Planned) -> None:
        self.step.commit(planned)
        self._read_at = self._reading_at

    async def publish(self, planned: Planned) -> None:
        await self.step.publish(planned)

    def discard(self) -> None:
        self.step.discard()
        self._read_at = None

