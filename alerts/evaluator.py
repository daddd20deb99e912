"""The evaluator: stored window totals and source sightings in, transitions out. No I/O.

Alert evaluation is a function of the event-time series, not of batching (docs/alerts.md,
"time model"). Every source has its own event-time progress (:mod:`alerts.source_clocks`);
each rule and scope is evaluated at every minute boundary its clock newly covers, in
order, so ``for``, ``keep_firing_for``, renotify and escalation follow event time and the
state after any input is the same however that input was split into batches. Absence
rules ("a feed silent for 15 minutes", :mod:`alerts.absence`) are about arrival and run
on the wall clock.

One protocol, shared with :class:`alerts.kpi_target_evaluator.KpiTargetEvaluator`:
:meth:`Evaluator.evaluate` returns a :class:`~alerts.undo.Plan` and records every change
in the undo log (:mod:`alerts.undo`); :meth:`Evaluator.commit` makes it final once the
transaction that stored its transitions committed, :meth:`Evaluator.discard` (or the
next ``evaluate``) undoes it. After a restart, a rebalance or a new lock holder,
:meth:`Evaluator.restore`, :meth:`Evaluator.restore_sources` and :meth:`Evaluator.resume`
load persisted state, so an alert already firing is not announced again. Annotations
are rendered by :mod:`alerts.annotations`; the backfill policy is :mod:`alerts.backfill`.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

from alerts.absence import absence_readings, silent_heard
from alerts.annotations import annotate
from alerts.backfill import mark_backfilled
from alerts.lifecycle import Timing, step
from alerts.model import AlertState, CommuneInfo, Reading, Transition, WindowPoint, fingerprint
from alerts.rules import AbsenceRule, KpiRule, Rule, RuleSet, ThresholdRule, compare
from alerts.source_clocks import Progress, Sighting, SourceState, feed_of
from alerts.undo import MISSING, AlertBook, Plan
from alerts.windows import MINUTE, MinuteTotals, WindowStore, aggregate, floor_minute, merge

__all__ = ["ABSENCE_EVERY", "Evaluator", "Plan", "mark_backfilled"]

_ALL = "\x00all"
ABSENCE_EVERY = timedelta(seconds=10)
"""Absence rules scan every source at most this often (wall clock)."""


@dataclass(slots=True)
class _Scope:
    """One rule's scope: where its series live and the clock that drives it."""

    scope: dict[str, str]
    communes: list[str]
    source: str | None
    clock: datetime | None


class Evaluator(AlertBook):
    """Pure alert evaluation for a set of communes (see module docstring)."""

    def __init__(
        self,
        rules: RuleSet,
        communes: Mapping[str, CommuneInfo],
        *,
        renotify_every: timedelta | None = timedelta(seconds=900),
        escalate_after: timedelta | None = timedelta(seconds=1800),
        out_of_orderness: timedelta = timedelta(seconds=10),
        idle_grace: timedelta = timedelta(seconds=600),
        idle_grace_max: timedelta = timedelta(seconds=7200),
        backfill_after: timedelta | None = None,
        max_sources: int = 200_000,
    ) -> None:
        super().__init__()
        self.rules = rules
        self.communes = communes
        self.renotify_every = renotify_every
        self.escalate_after = escalate_after
        self.out_of_orderness = out_of_orderness
        self.backfill_after = (backfill_after if backfill_after is not None
                               else out_of_orderness + 2 * MINUTE)
        self.windows = WindowStore()
        self.progress = Progress(idle_grace=idle_grace, idle_grace_max=idle_grace_max,
                                 max_sources=max_sources)
        self.cursors: dict[str, datetime] = {}
        """Per fingerprint: the last minute boundary evaluated."""
        self.floors: dict[tuple[str, str], datetime] = {}
        """Per (commune, feed): boundary evaluated before a restart (from stored progress)."""
        self._by_rule: dict[str, set[str]] = defaultdict(set)
        self._retention = rules.longest_window() + out_of_orderness + 2 * MINUTE
        self._pruned_at: datetime | None = None
        self._misc: dict[str, datetime] = {}
        self._clocks: dict[tuple[str, str], datetime | None] = {}
        self._drifting: dict[str, None] = {}
        """Sources seen turning idle (and not heard from since): their clocks, and their
        scopes' when all of a scope's sources are idle, move with the wall clock."""
        self._fps: dict[tuple[str, str, str, str | None], str] = {}
        self._restored: set[str] = set()
        """Communes whose state was loaded outside an evaluation (restart, conflict):
        the next changed-only evaluation looks at them."""
        self._source_rules = any(getattr(r, "scope", None) == "source" for r in rules)

    @property
    def sources(self) -> dict[str, SourceState]:
        """Every source heard from (absence rules read it)."""
        return self.progress.sources

    # -- the undo log (alerts.undo) --------------------------------------------------------
    def _set(self, table: Any, key: Any, value: Any) -> None:
        self._log.set(table, key, value)

    def _touch(self, fp: str) -> AlertState:
        return self._log.touch(self.alerts, fp)

    def discard(self) -> None:
        """Undo the uncommitted plan, if any (its transaction failed)."""
        plan = self._log.undo(self._undo_source)
        if plan is None:
            return
        self.progress.requeue(plan.idle_taken)
        plan.idle_taken.clear()
        self._restored |= plan.restored

    def _undo_source(self, table: Any, key: Any, old: Any) -> bool:
        if table is not self.progress.sources:
            return False
        self.progress.put(key, None if old is MISSING else old)
        return True

    def commit(self, plan: Plan) -> None:
        """The plan's transitions are stored: make its state final, then prune."""
        self._log.close(plan)
        self._prune(plan.wall_now)

    # -- input ---------------------------------------------------------------------------
    def observe(self, points: Iterable[WindowPoint]) -> None:
        """Window totals applied at once (recovery, tests); a repeated minute replaces."""
        for point in points:
            self._put(point)
            self._restored.add(point.commune_code)

    def _put(self, point: WindowPoint) -> None:
        """Apply one window total (undoably); a repeated minute replaces the old one."""
        key = (point.commune_code, point.source_id, point.metric)
        series = self.windows.series(key)
        if series is None:
            series = self.windows.create(key)
            self._log.record(self.windows.raw, key, MISSING)
        minute = floor_minute(point.minute)
        self._set(series, minute, MinuteTotals(point.count, point.sum, point.min, point.max,
                                               point.last))
        if self.windows.province_of.get(point.commune_code) != point.province_code:
            self._set(self.windows.province_of, point.commune_code, point.province_code)

    def observe_source(self, source_id: str, feed: str, department: str, commune_code: str,
                       seen_at: datetime, province_code: str | None = None,
                       newest: datetime | None = None) -> None:
        """A source was heard from at wall time ``seen_at`` (``newest``: its event time)."""
        province = province_code or self._province(commune_code) or "unassigned"
        self._restored.add(commune_code)
        self._sight(Sighting(source_id, feed, department, commune_code, province,
                             newest or seen_at, seen_at))

    def restore_sources(self, sightings: Iterable[Sighting], wall_now: datetime) -> None:
        """Stored progress of sources (first sight of their communes after a start).

        Their scopes are taken as evaluated up to where that progress puts their clocks
        (what the evaluator had reached when that progress was committed), so a restart
        does not evaluate those minutes a second time."""
        touched: dict[tuple[str, str], datetime] = {}
        for s in sightings:
            self._sight(s)
            self._restored.add(s.commune_code)
            key = (s.commune_code, s.feed)
            touched[key] = max(touched.get(key, s.received_at), s.received_at)
        for (commune, feed), last_arrival in touched.items():
            # the clock as the evaluator computed it when the last of their data arrived
            clock = self.progress.clock(commune, feed, min(wall_now, last_arrival))
            if clock is None:
                continue
            at = floor_minute(clock - self.out_of_orderness)
            if (commune, feed) not in self.floors or self.floors[(commune, feed)] < at:
                self.floors[(commune, feed)] = at

    def _sight(self, s: Sighting) -> None:
        if not s.province_code:
            s = replace(s, province_code=self._province(s.commune_code) or "unassigned")
        state = self.progress.updated(s)
        old = self.progress.sources.get(s.source_id)
        self._log.record(self.progress.sources, s.source_id, MISSING if old is None else old)
        self.progress.put(s.source_id, state)
        if s.source_id in self._drifting:  # heard from: its idleness is re-queued by put
            self._set(self._drifting, s.source_id, MISSING)

    def restore(self, states: Iterable[AlertState]) -> None:
        """Replace the state of these alerts with persisted state (restart, conflict)."""
        for a in states:
            self.alerts[a.fingerprint] = a
            self._by_rule[a.rule_id].add(a.fingerprint)
            self._restored.add(a.labels.get("commune_code") or _ALL)
            if a.fingerprint in self.cursors:
                continue  # a reload after a conflict: evaluation goes on where it was
            # first sight (restart): resume at its last evaluator-made change, in event
            # time (operator actions carry wall-clock times and are left out)
            marks = [t for t in (a.started_at, a.firing_at, a.clear_since,
                                 a.last_notified_at) if t is not None]
            if marks:
                self.cursors[a.fingerprint] = floor_minute(max(marks))

    def resume(self, cursors: Mapping[str, datetime]) -> None:
        """Stored progress per fingerprint (the singleton runner's ``alert_cursors``): those
        scopes go on after the minute boundary they had reached."""
        self.cursors.update(cursors)

    def forget_communes(self, communes: Iterable[str]) -> None:
        """Drop the alerts of communes this evaluator no longer owns (after a rebalance)."""
        gone = set(communes)
        for fp, a in list(self.alerts.items()):
            if a.labels.get("commune_code") in gone:
                del self.alerts[fp]
                self.cursors.pop(fp, None)
                self._by_rule[a.rule_id].discard(fp)
        for key in [k for k in self.floors if k[0] in gone]:
            del self.floors[key]

    # -- evaluation ----------------------------------------------------------------------
    def evaluate(self, windows: Iterable[WindowPoint] = (),
                 sightings: Iterable[Sighting] = (), *, wall_now: datetime,
                 complete_until: datetime | None = None, changed_only: bool = False) -> Plan:
        """Apply stored windows and sightings, and evaluate every newly covered minute.

        Call it with empty input on a timer too: that is what advances quiet scopes.
        ``complete_until`` (rule tests): every scope's data is complete up to that time,
        instead of what source progress says. ``changed_only`` (a stage-2 batch): look
        only at the scopes whose data or clock can have changed since the last
        evaluation (see :meth:`_changed`); the transitions are the same as a full
        evaluation's, which the idle tick still runs."""
        self.discard()
        plan = self._log.plan = Plan(wall_now=wall_now)
        dirty: set[str] | None = set() if changed_only and complete_until is None else None
        for s in sightings:
            if dirty is not None:
                dirty.add(s.commune_code)
                old = self.progress.sources.get(s.source_id)
                if old is not None:  # a source that moved: its old scopes' clock too
                    dirty.add(old.commune_code)
            self._sight(s)
        for point in windows:
            if dirty is not None:
                dirty.add(point.commune_code)
            self._put(point)
        self._clocks = {}
        taken = self.progress.turning_idle(wall_now)
        plan.idle_taken.extend(taken)
        for _, source_id in taken:
            if source_id not in self._drifting:
                self._set(self._drifting, source_id, None)
            if dirty is not None:  # it no longer holds its scopes back
                dirty.add(self.progress.sources[source_id].commune_code)
        if dirty is not None:
            dirty |= self._changed(wall_now) | self._restored
            if _ALL in dirty:  # a restored province alert: look at everything once
                dirty = None
        plan.restored, self._restored = self._restored, set()
        out: list[Transition] = []
        # Absence rules scan every source at most every ABSENCE_EVERY of wall time (the
        # idle tick guarantees one); in between only the sources heard from now, which
        # is what can resolve a "silent" alert.
        last = self._misc.get("absence_at")
        full = (complete_until is not None or last is None
                or wall_now - last >= ABSENCE_EVERY or wall_now < last)
        if full:
            self._set(self._misc, "absence_at", wall_now)
        heard = None if full else {s.source_id for s in sightings}
        for rule in self.rules:
            if isinstance(rule, AbsenceRule):
                only = heard if heard is None else silent_heard(
                    rule, self._active_of(rule.id), heard)
                if only is None or only:
                    readings = absence_readings(rule, self.sources, wall_now, only)
                    out.extend(self._advance(rule, readings, wall_now,
                                             partial=only is not None))
            else:
                out.extend(self._series_rule(rule, wall_now, plan, complete_until, dirty))
        plan.transitions = mark_backfilled(out, wall_now - self.backfill_after)
        return plan

    def _changed(self, wall_now: datetime) -> set[str]:
        """Communes whose clocks idleness moves: a source that turned idle releases its
        scope (the clock jumps to the slowest live source), and a scope whose sources are
        all idle, or a source-scoped series of an idle source, advances on wall time.
        Every other clock moves only with a sighting, whose commune the batch holds."""
        out: set[str] = set()
        for source_id in list(self._drifting):
            s = self.progress.sources.get(source_id)
            if s is None:  # evicted
                self._set(self._drifting, source_id, MISSING)
                continue
            if s.commune_code in out:
                continue
            if (self._source_rules or not self.progress.idle(s, wall_now)  # wall went back
                    or self.progress.all_idle(s.commune_code, s.feed, wall_now)):
                out.add(s.commune_code)
        return out

    def _series_rule(self, rule: ThresholdRule | KpiRule, wall_now: datetime, plan: Plan,
                     complete_until: datetime | None, dirty: set[str] | None = None
                     ) -> list[Transition]:
        """Every newly covered minute boundary of every scope of ``rule`` (``dirty``:
        of the scopes in those communes), in order."""
        out: list[Transition] = []
        metric = rule.metric if isinstance(rule, ThresholdRule) else rule.denominator
        feed = feed_of(metric)
        timing = self._timing(rule)
        scopes = self._scopes(rule, metric, feed, wall_now, dirty)
        plan.scopes += len(scopes)
        for fp, sc in scopes.items():
            if complete_until is not None:
                horizon = floor_minute(complete_until)
            elif sc.clock is None:
                continue
            else:
                horizon = floor_minute(sc.clock - self.out_of_orderness)
            cursor = self.cursors.get(fp)
            if cursor is None:
                first = self._first_minute(sc, metric)
                if first is None:
                    continue
                cursor = first  # boundaries before the first data minute's end see nothing
                for c in sc.communes:  # evaluated before a restart: not again
                    floor = self.floors.get((c, feed))
                    if floor is not None and floor > cursor:
                        cursor = floor
            # A restored alert's cursor is its last transition: the minutes since are
            # evaluated again from the stored windows, which rebuilds what was not stored
            # (keep_firing_for's clear_since, reminders) and, being deterministic, repeats
            # no transition.
            if horizon <= cursor:
                continue
            b = cursor + MINUTE
            while b <= horizon:
                a = self.alerts.get(fp)
                reading = self._reading(rule, sc, b - MINUTE)
                if reading.value is None and (a is None or not a.active):
                    nxt = self._next_minute(sc, metric, b - MINUTE)
                    if nxt is None:
                        break
                    b = max(b + MINUTE, nxt + MINUTE)
                    continue
                plan.evaluated_minutes += 1
                out.extend(self._step(rule, fp, reading, b, timing))
                b += MINUTE
            self._set(self.cursors, fp, horizon)
            plan.cursors[fp] = (rule.id, horizon)
        return out

    def _scopes(self, rule: ThresholdRule | KpiRule, metric: str, feed: str,
                wall_now: datetime, dirty: set[str] | None = None) -> dict[str, _Scope]:
        """The scopes of ``rule`` (``dirty``: only those in these communes or their
        provinces, and active alerts there)."""
        out: dict[str, _Scope] = {}
        dirty_provinces = (None if dirty is None else
                           {self.windows.province_of.get(c, "unassigned") for c in dirty})
        keys: list[tuple[str, str | None]]
        if dirty is None or rule.scope == "province":
            keys = list(self.windows.keys(metric))
        else:
            keys = [(c, s) for c in dirty for s in self.windows.sources_in(metric, c)]
        if rule.scope == "province":
            provinces: dict[str, list[str]] = defaultdict(list)
            for commune, source in keys:
                if source is None:
                    provinces[self.windows.province_of.get(commune, "unassigned")].append(commune)
            for province, communes in provinces.items():
                if dirty_provinces is not None and province not in dirty_provinces:
                    continue
                scope = {"province_code": province}
                clocks = [c for c in (self._clock(x, feed, wall_now) for x in communes)
                          if c is not None]
                out[fingerprint(rule.id, scope)] = _Scope(scope, sorted(communes), None,
                                                          min(clocks) if clocks else None)
        else:
            for commune, source in keys:
                if (source is None) != (rule.scope == "commune"):
                    continue
                province = self.windows.province_of.get(commune, "unassigned")
                scope = {"commune_code": commune, "province_code": province}
                if source is not None:
                    scope["source_id"] = source
                clock = (self._clock(commune, feed, wall_now) if source is None
                         else self.progress.source_clock(source, wall_now))
                out[self._fingerprint(rule.id, commune, province, source, scope)] = _Scope(
                    scope, [commune], source, clock)
        for fp in self._by_rule.get(rule.id, ()):  # active alerts whose data is gone
            a = self.alerts.get(fp)
            if fp in out or a is None or not a.active:
                continue
            if dirty is not None and dirty_provinces is not None and (
                    a.labels["commune_code"] not in dirty if "commune_code" in a.labels
                    else a.labels.get("province_code") not in dirty_provinces):
                continue
            scope = {k: a.labels[k] for k in ("commune_code", "province_code", "source_id")
                     if k in a.labels}
            a_commune, a_source = scope.get("commune_code"), scope.get("source_id")
            if a_source is not None:
                clock = self.progress.source_clock(a_source, wall_now)
            elif a_commune is not None:
                clock = self.progress.clock(a_commune, feed, wall_now)
            else:
                pclocks = [self.progress.clock(c, feed, wall_now)
                           for c, p in self.windows.province_of.items()
                           if p == scope.get("province_code")]
                known = [c for c in pclocks if c is not None]
                clock = min(known) if known else None
            out[fp] = _Scope(scope, [a_commune] if a_commune else [], a_source, clock)
        return out

    def _fingerprint(self, rule_id: str, commune: str, province: str, source: str | None,
                     scope: dict[str, str]) -> str:
        """``fingerprint(rule_id, scope)``, remembered (a hash per scope and batch was a
        third of the evaluation's time)."""
        key = (rule_id, commune, province, source)
        fp = self._fps.get(key)
        if fp is None:
            if len(self._fps) > 500_000:
                self._fps.clear()
            fp = self._fps[key] = fingerprint(rule_id, scope)
        return fp

    def _active_of(self, rule_id: str) -> list[AlertState]:
        return [self.alerts[fp] for fp in self._by_rule.get(rule_id, ())
                if fp in self.alerts and self.alerts[fp].active]

    def _clock(self, commune: str, feed: str, wall_now: datetime) -> datetime | None:
        """A scope's clock, computed once per evaluation (rules share it)."""
        key = (commune, feed)
        if key not in self._clocks:
            self._clocks[key] = self.progress.clock(commune, feed, wall_now)
        return self._clocks[key]

    def _first_minute(self, sc: _Scope, metric: str) -> datetime | None:
        firsts = [self.windows.first(c, sc.source, metric) for c in sc.communes]
        known = [f for f in firsts if f is not None]
        return min(known) if known else None

    def _next_minute(self, sc: _Scope, metric: str, after: datetime) -> datetime | None:
        """The first minute after ``after`` holding data (skips empty stretches)."""
        nexts = [self.windows.next_after(c, sc.source, metric, after) for c in sc.communes]
        known = [n for n in nexts if n is not None]
        return min(known) if known else None

    def _reading(self, rule: ThresholdRule | KpiRule, sc: _Scope, last: datetime) -> Reading:
        limits = (rule.limits(None, sc.scope["province_code"]) if rule.scope == "province"
                  else rule.limits(sc.scope.get("commune_code"), sc.scope["province_code"]))
        if not sc.communes:
            return Reading(sc.scope, None, limits)
        return Reading(sc.scope, self._value(rule, sc.communes, sc.source, last), limits,
                        self._guards(rule, sc.communes, sc.source, last))

    def _step(self, rule: Rule, fp: str, reading: Reading, at: datetime, timing: Timing
              ) -> list[Transition]:
        a = self.alerts.get(fp)
        cond = self._condition(rule, reading, a)
        if a is None:
            if not cond:
                return []
            a = self._new_state(rule, fp, reading)
        elif not cond and not a.active:
            return []
        else:
            a = self._touch(fp)
        a.last_value = reading.value
        base = reading.limits.severity if reading.limits else rule.severity
        a.annotations = annotate(rule, reading, self.communes)
        return step(a, cond, at, timing, base)

    def _advance(self, rule: Rule, readings: Iterable[Reading], at: datetime, *,
                 partial: bool = False) -> list[Transition]:
        """Absence rules: one evaluation at wall time ``at`` (``partial``: only the
        readings given, every other alert left as it is)."""
        out: list[Transition] = []
        seen: set[str] = set()
        timing = self._timing(rule)
        for reading in readings:
            fp = fingerprint(rule.id, reading.scope)
            seen.add(fp)
            out.extend(self._step(rule, fp, reading, at, timing))
        if partial:
            return out
        for fp in list(self._by_rule.get(rule.id, ())):
            a = self.alerts.get(fp)
            if a is None or fp in seen or not a.active:
                continue
            a = self._touch(fp)
            a.last_value = None  # no data any more: the condition is false
            out.extend(step(a, False, at, timing, a.severity))
        return out

    def _condition(self, rule: Rule, reading: Reading, a: AlertState | None) -> bool:
        if reading.value is None or not reading.guards_ok:
            return False
        if isinstance(rule, AbsenceRule):
            return reading.value >= rule.silent_for.total_seconds() / 60
        if reading.limits is None:
            return False
        in_episode = a is not None and a.active
        limit = reading.limits.clear if in_episode else reading.limits.threshold
        return compare(rule.op, reading.value, limit)

    def _new_state(self, rule: Rule, fp: str, reading: Reading) -> AlertState:
        severity = reading.limits.severity if reading.limits else rule.severity
        labels = {"alertname": rule.id, "severity": severity, **rule.labels, **reading.scope}
        a = AlertState(fingerprint=fp, rule_id=rule.id, state="inactive", severity=severity,
                       labels=labels)
        self._set(self.alerts, fp, a)
        self._by_rule[rule.id].add(fp)
        return a

    def _timing(self, rule: Rule) -> Timing:
        esc = rule.escalation
        return Timing(
            for_=rule.for_,
            keep_firing_for=rule.keep_firing_for,
            renotify_every=rule.renotify_every or self.renotify_every,
            escalate_after=(esc.after or self.escalate_after) if esc else None,
            escalate_severity=esc.severity if esc else None,
            escalate_receiver=esc.receiver if esc else None,
        )

    # -- readings per rule kind -----------------------------------------------------------
    def _guards(self, rule: ThresholdRule | KpiRule, communes: list[str], source: str | None,
                now: datetime) -> bool:
        if not isinstance(rule, ThresholdRule) or not rule.when:
            return True
        for g in rule.when:
            parts = [self.windows.minutes(c, source, g.metric, now, rule.window)
                     for c in communes]
            value = aggregate(g.aggregate, parts[0] if len(parts) == 1 else merge(parts))
            if value is None or not compare(g.op, value, g.threshold):
                return False
        return True

    def _value(self, rule: ThresholdRule | KpiRule, communes: list[str], source: str | None,
               now: datetime) -> float | None:
        def series(metric: str) -> list[Any]:
            parts = [self.windows.minutes(c, source, metric, now, rule.window) for c in communes]
            return parts[0] if len(parts) == 1 else merge(parts)

        if isinstance(rule, ThresholdRule):
            return aggregate(rule.aggregate, series(rule.metric), rule.min_count)
        denominator: int = sum(t.count for _, t in series(rule.denominator))
        if denominator < rule.min_denominator:
            return None
        # Numerators are 0/1 metrics (docs/architecture.md): their window sum counts the
        # events that meet the condition; the denominator's count is the base.
        numerator: float = sum(t.sum for _, t in series(rule.numerator))
        return 100.0 * numerator / denominator

    # -- helpers -------------------------------------------------------------------------
    def _province(self, commune: str) -> str | None:
        info = self.communes.get(commune)
        return info.province_code if info else self.windows.province_of.get(commune)

    def _prune(self, wall_now: datetime | None) -> None:
        """Forget what no evaluation can need again (bounded memory), once a minute.

        A scope's minutes older than its clock minus the longest window are never read
        again; alerts that are not active and have no data left are dropped with their
        cursors (their state is in the database; a new episode reloads it on conflict)."""
        if wall_now is None:
            return
        minute = floor_minute(wall_now)
        if self._pruned_at == minute:
            return
        self._pruned_at = minute
        clocks: dict[tuple[str, str], datetime | None] = {}

        def before(commune: str, metric: str) -> datetime | None:
            key = (commune, feed_of(metric))
            if key not in clocks:
                clocks[key] = self.progress.clock(commune, key[1], wall_now)
            clock = clocks[key]
            return None if clock is None else floor_minute(clock) - self._retention

        self.windows.prune_by(before)
        for fp, a in list(self.alerts.items()):
            if a.active or not a.labels.get("commune_code"):
                continue
            commune = a.labels["commune_code"]
            if not self.windows.has_commune(commune):
                del self.alerts[fp]
                self.cursors.pop(fp, None)
                self._by_rule[a.rule_id].discard(fp)
        for gone in self.progress.evict():
            del gone
