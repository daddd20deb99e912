"""Surge rules over citizen reports (alerts.surges, streams.feedback_surges), in-process.

The property: any order, batching, replay and lateness of the report stores, with the
evaluator running at any wall times between them (and restarting), gives the same alert
timeline (:func:`alerts.surges.firing_intervals` of each alert's ledger) and the same
final states as storing every report first and evaluating once. The real kind, evaluator
and lifecycle run; the database is an in-memory model of what the kind reads (the
integration test reads the real one).
"""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from pathlib import Path

from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from alerts.model import AlertState, Transition
from alerts.ruleload import check_files, load_rules, load_rules_dir
from alerts.rules import RuleSet
from alerts.surges import (
    Change,
    LedgerEntry,
    Series,
    difference,
    firing_intervals,
    merge,
    reconcile,
)
from ioccore.settings import get_settings
from streams.feedback_surges import FeedbackSurges, Reads
from tests.support.clock import T0
from tests.unit.alerts.alerts_helpers import COMMUNES, rules_from

MINUTE = timedelta(minutes=1)
SETTLE = timedelta(seconds=30)
RULES = """
groups:
  - name: surges
    rules:
      - id: flooding_surge
        feed: feedback
        metric: feedback.received.flooding
        window: 10m
        op: ">="
        threshold: 3
        severity: warning
        owner: construction
        incident: auto
        annotations:
          summary:
            vi: "{commune}: {value:.0f} phản ánh"
            en: "{commune_en}: {value:.0f} reports"
      - id: flooding_surge_sticky
        feed: feedback
        metric: feedback.received.flooding
        aggregate: sum
        window: 5m
        op: ">"
        threshold: 2
        clear: 1
        keep_firing_for: 3m
        renotify_every: 4m
        severity: critical
        annotations:
          summary: { vi: "{value}", en: "{value}" }
"""


def m(n: float) -> datetime:
    return T0 + timedelta(minutes=n)


@dataclass(frozen=True, slots=True)
class Report:
    report_id: str
    commune: str
    at: datetime
    metric: str = "feedback.received.flooding"


@dataclass
class Db:
    """A model of what the kind reads: reports (first store wins), the ledger, states."""

    now: datetime = T0
    reports: dict[str, tuple[Report, datetime]] = field(default_factory=dict)
    ledger: dict[str, list[Transition]] = field(default_factory=lambda: defaultdict(list))
    states: dict[str, AlertState] = field(default_factory=dict)
    horizon: datetime | None = None

    def store(self, report: Report) -> None:
        self.now += timedelta(microseconds=1)
        self.reports.setdefault(report.report_id, (report, self.now))


class ModelReads(Reads):
    def __init__(self, db: Db) -> None:
        self.db = db

    async def now(self) -> datetime:
        return self.db.now

    async def changes(self, metrics: list[str], stored_since: datetime | None,
                      after: datetime | None) -> list[Change]:
        first: dict[tuple[str, str], datetime] = {}
        for r, stored_at in self.db.reports.values():
            if r.metric not in metrics:
                continue
            if stored_since is not None and stored_at <= stored_since and (
                    after is None or r.at < after):
                continue
            key = (r.commune, r.metric)
            minute = r.at.replace(second=0, microsecond=0)
            first[key] = min(minute, first.get(key, minute))
        return [Change(c, COMMUNES[c].province_code, metric, at)
                for (c, metric), at in first.items()]

    async def ledgers(self, fingerprints: list[str]) -> dict[str, list[LedgerEntry]]:
        return {fp: [(t.kind, t.to_state, t.at) for t in self.db.ledger[fp]]
                for fp in fingerprints if self.db.ledger.get(fp)}

    async def states(self, fingerprints: list[str]) -> list[AlertState]:
        return [_copy(self.db.states[fp]) for fp in fingerprints if fp in self.db.states]

    async def counts(self, ranges: Mapping[tuple[str, str], datetime], until: datetime
                     ) -> dict[tuple[str, str], Series]:
        by_key: dict[tuple[str, str], dict[datetime, int]] = defaultdict(dict)
        for r, _ in self.db.reports.values():
            key = (r.commune, r.metric)
            minute = r.at.replace(second=0, microsecond=0)
            if key in ranges and ranges[key] <= minute < until:
                by_key[key][minute] = by_key[key].get(minute, 0) + 1
        return {k: Series(v) for k, v in by_key.items()}


def _copy(a: AlertState) -> AlertState:
    return replace(a, labels=dict(a.labels), annotations=dict(a.annotations))


def _kind(rules: RuleSet) -> FeedbackSurges:
    base = get_settings()
    s = base.model_copy(update={"alerts": base.alerts.model_copy(
        update={"feedback_settle_s": SETTLE.total_seconds()})})
    return FeedbackSurges(s, rules, COMMUNES)


def tick(kind: FeedbackSurges, db: Db, wall: datetime) -> list[Transition]:
    """One singleton tick against the model: plan, store (as persist would), commit."""
    db.now = max(db.now, wall)
    planned = asyncio.run(kind.plan_from(ModelReads(db), wall))
    for t in planned.plan.transitions:
        db.ledger[t.fingerprint].append(t)
        db.states[t.fingerprint] = _copy(kind.evaluator.alerts[t.fingerprint])
    db.horizon = kind.evaluator.horizon
    kind.commit(planned)
    return planned.plan.transitions


def restart(rules: RuleSet, db: Db) -> FeedbackSurges:
    kind = _kind(rules)
    kind.evaluator.resume(db.horizon, [_copy(a) for a in db.states.values() if a.active])
    return kind


def timeline(db: Db) -> dict[str, list[tuple[datetime, datetime | None]]]:
    out = {fp: firing_intervals((t.kind, t.to_state, t.at) for t in ts)
           for fp, ts in db.ledger.items()}
    return {fp: iv for fp, iv in out.items() if iv}


def reference(rules: RuleSet, reports: Iterable[Report], wall: datetime) -> Db:
    db = Db()
    for r in reports:
        db.store(r)
    tick(_kind(rules), db, wall)
    return db


# -- examples ------------------------------------------------------------------------------
def test_the_shipped_rule_loads_and_belongs_to_the_singleton_holder() -> None:
    rules = load_rules_dir(Path("config/rules"))
    surges = rules.feedback_rules()
    assert [r.id for r in surges] == ["flooding_reports_surge"]
    rule = surges[0]
    assert (rule.labels["department"], rule.incident, rule.window) == (
        "construction", "auto", timedelta(minutes=30))
    assert rule not in rules.partition_rules().rules and rule not in rules.global_rules().rules


def test_rule_checks_name_file_and_line(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(RULES.replace('op: ">="', 'op: "<"').replace("window: 5m",
                                                                  "window: 5m\n        for: 2m"),
                    encoding="utf-8")
    errors = [(e.line, e.message) for e in check_files([path])]
    lines = path.read_text(encoding="utf-8").splitlines()
    op_line = next(i for i, x in enumerate(lines, 1) if 'op: "<"' in x)
    for_line = next(i for i, x in enumerate(lines, 1) if "for: 2m" in x)
    assert (op_line, "rule flooding_surge.op: a feedback rule fires on many reports (> or >=)") \
        in errors
    assert any(line == for_line and "for" in msg for line, msg in errors), errors


def test_five_reports_fire_once_and_resolve_after_the_window(tmp_path: Path) -> None:
    rules = load_rules_dir(Path("config/rules"))
    db, kind = Db(), _kind(rules)
    for i in range(5):
        db.store(Report(f"r{i}", "00004", m(3 + 4 * i)))  # 03, 07, ..., 19
    fired = tick(kind, db, m(20) + SETTLE)
    assert [(t.to_state, t.at) for t in fired] == [("firing", m(20))]
    labels = fired[0].labels
    assert (labels["department"], labels["commune_code"], labels["province_code"],
            labels["severity"]) == ("construction", "00004", "01", "warning")
    assert fired[0].annotations["summary_en"] == \
        "Ba Dinh Ward: 5 citizen flooding reports within 30 minutes"
    # 3 reports in the window: above clear 2; a reminder after 15 minutes
    assert [(t.kind, t.at) for t in tick(kind, db, m(40) + SETTLE)] == [("renotify", m(35))]
    resolved = tick(kind, db, m(60) + SETTLE)
    # clear 2: resolves when fewer than 2 reports are left: the window [16, 46)
    assert [(t.to_state, t.at) for t in resolved] == [("resolved", m(46))]
    assert not kind.evaluator.active()


def test_a_late_report_extends_a_resolved_episode(tmp_path: Path) -> None:
    rules = rules_from(tmp_path, RULES)
    db, kind = Db(), _kind(rules)
    for i, at in enumerate((1, 2, 3)):
        db.store(Report(f"r{i}", "00004", m(at)))
    tick(kind, db, m(30))
    fp = next(fp for fp, ts in db.ledger.items() if ts[0].rule_id == "flooding_surge")
    assert timeline(db)[fp] == [(m(4), m(12))]
    db.store(Report("late", "00004", m(11)))  # 3 in the window [2, 12): one minute more
    fixes = tick(kind, db, m(31))
    assert [(t.to_state, t.at, t.note) for t in fixes if t.fingerprint == fp] == [
        ("firing", m(12), "late reports"), ("resolved", m(13), "late reports")]
    assert all(t.backfilled for t in fixes)  # over long ago: never paged
    assert timeline(db)[fp] == [(m(4), m(13))]
    assert timeline(db) == timeline(reference(rules, (r for r, _ in db.reports.values()),
                                              m(31)))


def test_a_late_report_moves_the_start_of_a_firing_alert(tmp_path: Path) -> None:
    rules = rules_from(tmp_path, RULES)
    db, kind = Db(), _kind(rules)
    for i, at in enumerate((10, 11, 12, 13, 14, 15, 16, 17)):
        db.store(Report(f"r{i}", "00004", m(at)))
    tick(kind, db, m(18) + SETTLE)
    db.store(Report("late", "00004", m(9)))
    tick(kind, db, m(19) + SETTLE)
    fp = next(fp for fp, ts in db.ledger.items() if ts[0].rule_id == "flooding_surge")
    assert timeline(db)[fp] == [(m(12), None)]
    assert timeline(db) == timeline(reference(rules, (r for r, _ in db.reports.values()),
                                              m(19) + SETTLE))


def test_interval_algebra() -> None:
    assert merge([(m(5), m(7)), (m(1), m(3)), (m(3), m(4)), (m(6), None), (m(9), m(9))]) \
        == [(m(1), m(4)), (m(5), None)]
    assert difference([(m(0), m(10))], [(m(2), m(3)), (m(5), None)]) == \
        [(m(0), m(2)), (m(3), m(5))]
    assert reconcile([(m(2), m(4))], [(m(2), m(4))]) == []
    assert reconcile([(m(2), m(4))], [(m(2), m(6))]) == [("firing", m(4)), ("resolved", m(6))]
    assert reconcile([(m(2), None)], [(m(0), m(1)), (m(2), None)]) == [
        ("resolved", m(2)), ("firing", m(0)), ("resolved", m(1)), ("firing", m(2))]


# -- the property --------------------------------------------------------------------------
reports_st = st.lists(
    st.tuples(st.sampled_from(["00004", "00070"]), st.integers(0, 45), st.integers(0, 59)),
    min_size=1, max_size=40)


@st.composite
def schedules(draw: st.DrawFn) -> tuple[list[Report], list[tuple[str, object]]]:
    raw = draw(reports_st)
    reports = [Report(f"r{i}", c, m(minute) + timedelta(seconds=s))
               for i, (c, minute, s) in enumerate(raw)]
    order = draw(st.permutations(reports))
    ops: list[tuple[str, object]] = []
    wall = m(0)
    for r in order:
        ops.append(("store", r))
        if draw(st.integers(0, 3)) == 0:
            ops.append(("store", r))  # a replay: stores nothing
        if draw(st.integers(0, 1)) == 0:
            wall += timedelta(seconds=draw(st.integers(0, 600)))
            ops.append(("tick", wall))
        if draw(st.integers(0, 9)) == 0:
            ops.append(("restart", None))
    return reports, ops


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(schedules())
def test_any_order_batching_replay_and_lateness_give_the_same_timeline(
        scenario: tuple[list[Report], list[tuple[str, object]]]) -> None:
    reports, ops = scenario
    rules = load_rules([_rule_path()])
    db, kind = Db(), _kind(rules)
    final = m(0)
    for op, arg in ops:
        if op == "store":
            assert isinstance(arg, Report)
            db.store(arg)
        elif op == "tick":
            assert isinstance(arg, datetime)
            final = max(final, arg)
            tick(kind, db, arg)
        else:
            kind = restart(rules, db)
    final = max(final, m(200))
    tick(kind, db, final)
    notes = {t.note for ts in db.ledger.values() for t in ts}
    event("late reports corrected" if "late reports" in notes else "no correction")
    ref = reference(rules, reports, final)
    assert timeline(db) == timeline(ref)
    assert {fp: a.state for fp, a in db.states.items() if a.active} == \
        {fp: a.state for fp, a in ref.states.items() if a.active}


_PATH: list[Path] = []


def _rule_path() -> Path:
    if not _PATH:
        import tempfile

        folder = Path(tempfile.mkdtemp(prefix="surges-"))
        (folder / "rules.yaml").write_text(RULES, encoding="utf-8")
        _PATH.append(folder / "rules.yaml")
    return _PATH[0]
