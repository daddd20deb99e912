"""Surge rules over citizen reports: counts of reports per commune, exact under late reports.

A surge rule (feed ``feedback``, :func:`alerts.rules.RuleSet.feedback_rules`) counts the
reports of one category per commune over a window (``feedback.received.<code>`` in
``rollup_1m``, written when a report is stored) and fires at ``op threshold``. Reports do
not travel through Kafka, so this evaluator is fed from the database by the singleton
kind :mod:`streams.feedback_surges`. It has the protocol of the other evaluators
(``evaluate`` returns a :class:`~alerts.undo.Plan`, then ``commit`` or ``discard``) and
the lifecycle of every rule (:func:`alerts.lifecycle.step`: ``keep_firing_for``,
reminders, escalation; annotations by :mod:`alerts.annotations`).

Time: a report's event time is its time as stored. Every minute boundary up to the
*horizon* (wall clock minus ``alerts.feedback_settle_s``) is evaluated once, in order.
A report stored later for a minute at or before the horizon is *late*: the windows it
falls in are evaluated again (a replay from a quiet point: the start of the stored
episode it falls in, else its own minute) and the stored ledger is corrected to the
replay. Surge rules are monotone (counts, ``>``/``>=``, no ``for``; the loader enforces
it), so more reports only add firing time, and a correction only appends: a missing
stretch becomes a re-opened episode (``firing`` then ``resolved``, backfilled when it is
over), and an alert firing now whose episode must start earlier is resolved and fired
again at the right start. The alert timeline, read as :func:`firing_intervals` of the
ledger, is then the same whatever the order, batching, replay or lateness of the
reports, and whenever the evaluator ran (``tests/unit/alerts/test_surges.py``).
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from alerts.annotations import annotate
from alerts.backfill import mark_backfilled
from alerts.lifecycle import Timing, step, transition
from alerts.model import (
    AlertState,
    CommuneInfo,
    Reading,
    Severity,
    State,
    Transition,
    fingerprint,
)
from alerts.rules import ThresholdRule, compare
from alerts.undo import MISSING, AlertBook, Plan
from alerts.windows import floor_minute

MINUTE = timedelta(minutes=1)
Interval = tuple[datetime, datetime | None]
"""``[start, end)`` in event time; ``end`` ``None`` while it lasts."""
LedgerEntry = tuple[str, str, datetime]
"""``(kind, to_state, at)`` of one stored transition, in ``seq`` order."""


@dataclass(frozen=True, slots=True)
class Change:
    """Reports stored since the previous read for one commune and metric."""

    commune_code: str
    province_code: str
    metric: str
    first: datetime
    """The earliest minute (report time) among them."""


@dataclass(frozen=True, slots=True)
class Job:
    """One rule and commune to evaluate this round."""

    rule: ThresholdRule
    commune_code: str
    province_code: str
    fingerprint: str
    forward_from: datetime
    """The first minute boundary never evaluated."""
    replay_from: datetime | None = None
    """Late reports: boundaries from here to the previous horizon are evaluated again."""

    @property
    def key(self) -> tuple[str, str]:
        return (self.commune_code, self.rule.metric)

    @property
    def first_minute(self) -> datetime:
        """The first minute of counts this job reads."""
        start = self.replay_from or self.forward_from
        return start - self.rule.window


class Series:
    """The report counts of one commune and metric by minute."""

    def __init__(self, counts: Mapping[datetime, int]) -> None:
        self.minutes = sorted(counts)
        self._prefix = [0]
        for m in self.minutes:
            self._prefix.append(self._prefix[-1] + counts[m])

    def total(self, start: datetime, end: datetime) -> int:
        """Reports in the minutes ``[start, end)``."""
        return (self._prefix[bisect_left(self.minutes, end)]
                - self._prefix[bisect_left(self.minutes, start)])

    def next_at(self, at: datetime) -> datetime | None:
        """The first minute at or after ``at`` holding reports."""
        i = bisect_left(self.minutes, at)
        return self.minutes[i] if i < len(self.minutes) else None


EMPTY = Series({})


def merge(intervals: Iterable[Interval]) -> list[Interval]:
    """Sorted, non-empty, non-touching intervals covering the same event time."""
    out: list[Interval] = []
    for start, end in sorted((iv for iv in intervals if iv[1] is None or iv[1] > iv[0]),
                             key=lambda iv: iv[0]):
        if out and (out[-1][1] is None or start <= out[-1][1]):
            prev_start, prev_end = out[-1]
            out[-1] = (prev_start, None if end is None or prev_end is None
                       else max(prev_end, end))
        else:
            out.append((start, end))
    return out


def firing_intervals(ledger: Iterable[LedgerEntry]) -> list[Interval]:
    """When an alert was firing (or acknowledged), from its transitions in ``seq`` order:
    the alert timeline this module keeps exact."""
    raw: list[Interval] = []
    opened: datetime | None = None
    for kind, to_state, at in ledger:
        if kind != "state":
            continue
        if to_state in ("firing", "acknowledged"):
            opened = at if opened is None else opened
        elif to_state in ("resolved", "inactive") and opened is not None:
            raw.append((opened, at))
            opened = None
    if opened is not None:
        raw.append((opened, None))
    return merge(raw)


def difference(target: Sequence[Interval], have: Sequence[Interval]) -> list[Interval]:
    """The parts of ``target`` that ``have`` does not cover (both merged)."""
    out: list[Interval] = []
    for start, end in target:
        cursor: datetime | None = start
        for h_start, h_end in have:
            if cursor is None or (end is not None and h_start >= end):
                break
            if h_end is not None and h_end <= cursor:
                continue
            if h_start > cursor:
                out.append((cursor, h_start))
            cursor = h_end
        if cursor is not None and (end is None or cursor < end):
            out.append((cursor, end))
    return out


def reconcile(have: Sequence[Interval], target: Sequence[Interval]
              ) -> list[tuple[State, datetime]]:
    """The state transitions ``(to_state, at)`` to append to a ledger whose timeline is
    ``have`` so that it reads ``target`` (module docstring); nothing when it already
    covers it. Firing time is only ever added."""
    missing = difference(target, have)
    if not missing:
        return []
    out: list[tuple[State, datetime]] = []
    rest = list(have)
    if rest and rest[-1][1] is None:  # firing now: close it, re-open at the right start
        out.append(("resolved", rest[-1][0]))
        rest.pop()
        missing = difference(target, rest)
    for start, end in missing:
        out.append(("firing", start))
        if end is not None:
            out.append(("resolved", end))
    return out


class SurgeEvaluator(AlertBook):
    """Alert states of the surge rules and the horizon evaluated up to."""

    def __init__(self, rules: Sequence[ThresholdRule], communes: Mapping[str, CommuneInfo],
                 *, renotify_every: timedelta | None = timedelta(seconds=900),
                 escalate_after: timedelta | None = timedelta(seconds=1800),
                 backfill_after: timedelta = timedelta(minutes=2)) -> None:
        self.rules = tuple(rules)
        self.communes = communes
        self.renotify_every = renotify_every
        self.escalate_after = escalate_after
        self.backfill_after = backfill_after
        super().__init__()
        self._progress: dict[str, datetime] = {}
        self._replay: set[str] = set()
        """Active alerts restored from the database: replayed from their episode's start
        on the next evaluation (rebuilds ``keep_firing_for``'s clear time)."""

    # -- the evaluator protocol (streams.evaluation) ---------------------------------------
    @property
    def horizon(self) -> datetime | None:
        """The last minute boundary evaluated (``None``: nothing yet, a first start)."""
        return self._progress.get("horizon")

    def resume(self, horizon: datetime | None, states: Iterable[AlertState]) -> None:
        """A new lock holder: the stored horizon and the active alerts."""
        if horizon is not None:
            self._progress["horizon"] = horizon
        self.restore(states)
        self._replay |= {a.fingerprint for a in states if a.active}

    def commit(self, plan: Plan) -> None:
        """The plan is stored: final, and its ended episodes leave memory."""
        super().commit(plan)
        for fp in [fp for fp, a in self.alerts.items() if not a.active]:
            del self.alerts[fp]  # stored; a new episode is re-based on the stored row

    # -- what to read ----------------------------------------------------------------------
    def scope(self, rule: ThresholdRule, commune: str, province: str) -> tuple[str, dict[str, str]]:
        scope = {"commune_code": commune, "province_code": province}
        return fingerprint(rule.id, scope), scope

    def late(self, changes: Iterable[Change]) -> set[str]:
        """Fingerprints whose stored ledger the next :meth:`jobs` needs: those with reports
        for a minute already evaluated, and restored active alerts."""
        out = set(self._replay)
        horizon = self.horizon
        if horizon is None:
            return out
        for ch in changes:
            for rule in self.rules:
                if rule.metric == ch.metric and ch.first < horizon:
                    out.add(self.scope(rule, ch.commune_code, ch.province_code)[0])
        return out

    def jobs(self, changes: Iterable[Change], ledgers: Mapping[str, Sequence[LedgerEntry]]
             ) -> list[Job]:
        """What the next evaluation does, by fingerprint: changed communes (replayed from a
        quiet point when late) and active alerts (their windows move on)."""
        horizon = self.horizon
        first: dict[str, tuple[ThresholdRule, Change]] = {}
        for ch in changes:
            for rule in self.rules:
                if rule.metric != ch.metric:
                    continue
                fp = self.scope(rule, ch.commune_code, ch.province_code)[0]
                if fp not in first or ch.first < first[fp][1].first:
                    first[fp] = (rule, ch)
        out: dict[str, Job] = {}
        for fp, (rule, ch) in first.items():
            if horizon is None:
                out[fp] = Job(rule, ch.commune_code, ch.province_code, fp, ch.first + MINUTE)
                continue
            replay = None
            if ch.first < horizon:
                replay = _quiet_point(firing_intervals(ledgers.get(fp, ())), ch.first)
            out[fp] = Job(rule, ch.commune_code, ch.province_code, fp, horizon + MINUTE,
                          replay)
        by_id = {r.id: r for r in self.rules}
        for a in self.active():
            active_rule = by_id.get(a.rule_id)
            if a.fingerprint in out or active_rule is None or horizon is None:
                continue
            commune, province = a.labels["commune_code"], a.labels["province_code"]
            replay = None
            if a.fingerprint in self._replay:
                replay = _quiet_point(firing_intervals(ledgers.get(a.fingerprint, ())),
                                      horizon - MINUTE)
            out[a.fingerprint] = Job(active_rule, commune, province, a.fingerprint,
                                     horizon + MINUTE, replay)
        return list(out.values())

    # -- evaluation ------------------------------------------------------------------------
    def evaluate(self, jobs: Iterable[Job], series: Mapping[tuple[str, str], Series],
                 ledgers: Mapping[str, Sequence[LedgerEntry]], horizon: datetime,
                 wall_now: datetime) -> Plan:
        """Evaluate the jobs up to ``horizon`` (a minute boundary); corrections first."""
        self.discard()
        plan = self._log.plan = Plan(wall_now=wall_now)
        previous = self.horizon
        horizon = max(horizon, previous) if previous is not None else horizon
        out: list[Transition] = []
        for job in jobs:
            counts = series.get(job.key, EMPTY)
            plan.scopes += 1
            if job.replay_from is not None and previous is not None:
                out.extend(self._correct(job, counts, ledgers.get(job.fingerprint, ()),
                                         previous, plan))
            out.extend(self._walk(job, counts, job.forward_from, horizon, plan,
                                  self._live(job)))
        if self._replay:
            self._log.record(self.__dict__, "_replay", set(self._replay))
            self._replay = set()
        self._log.set(self._progress, "horizon", horizon)
        plan.transitions = mark_backfilled(out, wall_now - self.backfill_after)
        return plan

    def _live(self, job: Job) -> Callable[[bool], AlertState | None]:
        """The stored alert of a job (saved in the undo log once), created on demand."""
        touched: list[AlertState] = []

        def get(create: bool) -> AlertState | None:
            if touched:
                return touched[0]
            if job.fingerprint in self.alerts:
                touched.append(self._log.touch(self.alerts, job.fingerprint))
            elif create:
                touched.append(self._new_state(job))
                self._log.set(self.alerts, job.fingerprint, touched[0])
            return touched[0] if touched else None

        return get

    def _new_state(self, job: Job) -> AlertState:
        labels = {"alertname": job.rule.id, "severity": job.rule.severity, **job.rule.labels,
                  "feed": "feedback", "commune_code": job.commune_code,
                  "province_code": job.province_code}
        return AlertState(fingerprint=job.fingerprint, rule_id=job.rule.id, state="inactive",
                          severity=job.rule.severity, labels=labels)

    def _walk(self, job: Job, counts: Series, start: datetime, end: datetime, plan: Plan,
              get: Callable[[bool], AlertState | None]) -> list[Transition]:
        """Every minute boundary ``start..end`` of one job, in order (skipping stretches
        whose windows hold no report while the alert is not active)."""
        rule = job.rule
        timing = self._timing(rule)
        limits = rule.limits(job.commune_code, job.province_code)
        scope = {"commune_code": job.commune_code, "province_code": job.province_code}
        out: list[Transition] = []
        b = start
        while b <= end:
            a = get(False)
            active = a is not None and a.active
            total = counts.total(b - rule.window, b)
            if total == 0 and not active:
                nxt = counts.next_at(b)
                if nxt is None:
                    break
                b = max(b + MINUTE, nxt + MINUTE)
                continue
            plan.evaluated_minutes += 1
            value = float(total) if total >= rule.min_count else None
            cond = (value is not None and limits is not None and compare(
                rule.op, value, limits.clear if active else limits.threshold))
            if cond or active:
                a = get(True)
                assert a is not None
                a.last_value = value
                a.annotations = annotate(rule, Reading(scope, value, limits), self.communes)
                base: Severity = limits.severity if limits else rule.severity
                out.extend(step(a, cond, b, timing, base))
            b += MINUTE
        return out

    def _correct(self, job: Job, counts: Series, ledger: Sequence[LedgerEntry],
                 previous: datetime, plan: Plan) -> list[Transition]:
        """Late reports: replay ``replay_from..previous`` from a quiet point and append what
        the stored ledger lacks (module docstring)."""
        assert job.replay_from is not None
        scratch: list[AlertState] = []

        def fresh(create: bool) -> AlertState | None:
            if not scratch and create:
                scratch.append(self._new_state(job))
            return scratch[0] if scratch else None

        replayed = self._walk(job, counts, job.replay_from, previous, plan, fresh)
        have = firing_intervals(ledger)
        target = merge([iv for iv in have if iv[0] < job.replay_from]
                       + firing_intervals((t.kind, t.to_state, t.at) for t in replayed))
        fixes = reconcile(have, target)
        live = self._live(job)
        out: list[Transition] = []
        for to_state, at in fixes:
            a = live(True)
            assert a is not None
            if to_state == "firing":
                severity = scratch[0].severity if scratch else job.rule.severity
                a.severity = severity
                a.labels["severity"] = severity
                a.labels.pop("escalated", None)
                a.labels.pop("receiver", None)
            out.append(transition(a, to_state, at, note="late reports"))
        a = live(False)
        if scratch and a is not None and a.active:
            a.clear_since = scratch[0].clear_since
            a.last_value = scratch[0].last_value
            a.annotations = dict(scratch[0].annotations)
        return out

    def _timing(self, rule: ThresholdRule) -> Timing:
        esc = rule.escalation
        return Timing(
            for_=timedelta(0), keep_firing_for=rule.keep_firing_for,
            renotify_every=rule.renotify_every or self.renotify_every,
            escalate_after=(esc.after or self.escalate_after) if esc else None,
            escalate_severity=esc.severity if esc else None,
            escalate_receiver=esc.receiver if esc else None)


def _quiet_point(stored: Sequence[Interval], first: datetime) -> datetime:
    """The first boundary to evaluate again for a report in minute ``first``: the start of
    the stored episode the alert was in at that minute (before it, nothing depends on the
    new report), else the first boundary whose window holds the minute."""
    for start, end in stored:
        if start <= first and (end is None or first < end):
            return start
    return floor_minute(first) + MINUTE


__all__ = ["MISSING", "Change", "Job", "Series", "SurgeEvaluator", "difference",
           "firing_intervals", "merge", "reconcile"]
