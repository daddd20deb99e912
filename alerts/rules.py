"""Alert rules as the evaluator uses them (parsed and checked by :mod:`alerts.ruleload`).

Four kinds:

* :class:`ThresholdRule`: an aggregate of one metric over the last N one-minute windows
  compared with a threshold, with a clear threshold (hysteresis), ``for`` and
  ``keep_firing_for``; scope source, commune or province; per-commune/province overrides.
* :class:`KpiRule`: a ratio (in percent) of two windowed counts over a long window, e.g.
  dossiers resolved on time / dossiers resolved over the last day.
* :class:`AbsenceRule`: a source, feed or department silent for N minutes.
* :class:`KpiTargetRule`: a public-service KPI of the period so far (Vietnam-time day,
  week or month), per province or national and per agency tier, below its target from
  ``kpi_target_values`` (docs/kpis.md). Exact per-dossier counts from the database, so
  these rules are kept apart (``RuleSet.kpi_targets``) from the windowed rules the
  evaluators see, and evaluated by :mod:`alerts.kpi_target_evaluator`.

Where each runs: ``RuleSet.partition_rules()`` in every stage-2 worker (source and
commune scope, absence by source); ``RuleSet.global_rules()``, the KPI targets and
``RuleSet.feedback_rules()`` (surges of citizen reports, :mod:`alerts.surges`: reports do
not travel through stage 2) in the one worker holding the singleton-rules lock
(:mod:`streams.singleton_rules`).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Literal

from alerts.model import Severity

Scope = Literal["source", "commune", "province"]
Aggregate = Literal["avg", "min", "max", "sum", "count", "last", "rate"]
AGGREGATES: tuple[str, ...] = ("avg", "min", "max", "sum", "count", "last", "rate")
Op = Literal[">", ">=", "<", "<="]
OPS: tuple[str, ...] = (">", ">=", "<", "<=")
AbsenceBy = Literal["source", "feed", "department"]
FEEDBACK = "feedback"
"""The feed of citizen reports: its rules are evaluated from the database
(:mod:`alerts.surges`), never by stage 2 or the global rules."""
KpiPeriod = Literal["day", "week", "month"]
TargetScope = Literal["nation", "province"]
TargetTier = Literal["all", "province", "commune", "unassigned"]


@dataclass(frozen=True, slots=True)
class Annotation:
    """One annotation with its Vietnamese and English templates."""

    name: str
    vi: str
    en: str


@dataclass(frozen=True, slots=True)
class Override:
    """Replacement settings for one commune or one province (commune wins)."""

    commune: str | None = None
    province: str | None = None
    threshold: float | None = None
    clear: float | None = None
    severity: Severity | None = None
    disabled: bool = False


@dataclass(frozen=True, slots=True)
class Escalation:
    """When firing and unacknowledged for ``after``: raise severity and/or re-route.

    ``after`` ``None`` means the configured default (``alerts.escalate_after_s``).
    """

    after: timedelta | None
    severity: Severity | None = None
    receiver: str | None = None


@dataclass(frozen=True, slots=True)
class Guard:
    """An extra condition on another metric of the same scope and window (no hysteresis)."""

    metric: str
    aggregate: Aggregate
    op: Op
    threshold: float


@dataclass(frozen=True, slots=True)
class Limits:
    """The threshold pair in effect for one scope."""

    threshold: float
    clear: float
    severity: Severity


@dataclass(frozen=True, slots=True, kw_only=True)
class RuleBase:
    id: str
    group: str
    file: str
    line: int
    severity: Severity
    labels: Mapping[str, str] = field(default_factory=dict)
    annotations: tuple[Annotation, ...] = ()
    for_: timedelta = timedelta(0)
    keep_firing_for: timedelta = timedelta(0)
    renotify_every: timedelta | None = None
    escalation: Escalation | None = None
    incident: Literal["auto", "manual"] = "manual"
    """``auto``: a firing alert opens an incident (alerts.incidents.intake)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class ComparedRule(RuleBase):
    op: Op
    threshold: float
    clear: float
    scope: Scope = "commune"
    window: timedelta = timedelta(minutes=1)
    overrides: tuple[Override, ...] = ()

    def limits(self, commune: str | None, province: str | None) -> Limits | None:
        """Threshold, clear threshold and severity for a scope; ``None`` when disabled."""
        chosen: Override | None = None
        for o in self.overrides:
            if commune is not None and o.commune == commune:
                chosen = o
                break
            if o.province is not None and o.province == province and chosen is None:
                chosen = o
        if chosen is None:
            return Limits(self.threshold, self.clear, self.severity)
        if chosen.disabled:
            return None
        threshold = self.threshold if chosen.threshold is None else chosen.threshold
        if chosen.clear is not None:
            clear = chosen.clear
        elif chosen.threshold is not None:
            clear = self.clear + (chosen.threshold - self.threshold)  # keep the band width
        else:
            clear = self.clear
        return Limits(threshold, clear, chosen.severity or self.severity)

    def breaches(self, value: float, threshold: float) -> bool:
        return compare(self.op, value, threshold)


@dataclass(frozen=True, slots=True, kw_only=True)
class ThresholdRule(ComparedRule):
    feed: str
    metric: str
    aggregate: Aggregate = "avg"
    min_count: int = 1
    when: tuple[Guard, ...] = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class KpiRule(ComparedRule):
    feed: str
    numerator: str
    denominator: str
    min_denominator: int = 1


@dataclass(frozen=True, slots=True, kw_only=True)
class AbsenceRule(RuleBase):
    by: AbsenceBy
    silent_for: timedelta
    feed: str | None = None
    department: str | None = None
    sources: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class KpiTargetRule(RuleBase):
    """KPI ``kpi`` of the current ``period`` so far below target: fires while
    value < target - ``margin`` (percentage points), clears at target - margin +
    ``hysteresis``; no reading below ``min_denominator`` dossiers or without a target."""

    kpi: str
    scope: TargetScope = "province"
    tier: TargetTier = "all"
    period: KpiPeriod = "month"
    margin: float = 0.0
    hysteresis: float = 1.0
    min_denominator: int = 1


Rule = ThresholdRule | KpiRule | AbsenceRule


def compare(op: str, value: float, threshold: float) -> bool:
    if op == ">":
        return value > threshold
    if op == ">=":
        return value >= threshold
    if op == "<":
        return value < threshold
    return value <= threshold


@dataclass(frozen=True, slots=True)
class RuleSet:
    """Rules by id, in file order."""

    rules: tuple[Rule, ...] = ()
    kpi_targets: tuple[KpiTargetRule, ...] = ()
    """Evaluated from the database by :mod:`alerts.kpi_target_evaluator`; no subset keeps them."""

    def __iter__(self) -> Iterator[Rule]:
        return iter(self.rules)

    def __len__(self) -> int:
        return len(self.rules)

    def get(self, rule_id: str) -> Rule | None:
        return next((r for r in self.rules if r.id == rule_id), None)

    def targets(self) -> RuleSet:
        """Only the KPI target rules."""
        return RuleSet((), self.kpi_targets)

    def select(
        self, *, scopes: Iterable[Scope] | None = None,
        absence_by: Iterable[AbsenceBy] | None = None,
    ) -> RuleSet:
        """A subset: compared rules of the given scopes plus absence rules of the given kinds.

        ``RuleSet.select(scopes=("source", "commune"), absence_by=("source",))`` is what a
        commune-partitioned worker evaluates; the rest (``province`` scope and absence by
        feed/department) belongs to one evaluator that sees every commune.
        """
        keep_scopes = set(scopes) if scopes is not None else None
        keep_by = set(absence_by) if absence_by is not None else None
        out: list[Rule] = []
        for r in self.rules:
            if getattr(r, "feed", None) == FEEDBACK and not isinstance(r, AbsenceRule):
                continue  # surge rules: feedback_rules()
            if isinstance(r, AbsenceRule):
                if keep_by is None or r.by in keep_by:
                    out.append(r)
            elif keep_scopes is None or r.scope in keep_scopes:
                out.append(r)
        return RuleSet(tuple(out))

    def partition_rules(self) -> RuleSet:
        """Rules a commune-partitioned stage-2 worker evaluates exactly."""
        return self.select(scopes=("source", "commune"), absence_by=("source",))

    def global_rules(self) -> RuleSet:
        """Rules that need every commune: province scope, absence by feed or department."""
        return self.select(scopes=("province",), absence_by=("feed", "department"))

    def feedback_rules(self) -> tuple[ThresholdRule, ...]:
        """Surge rules over citizen reports (feed ``feedback``, :mod:`alerts.surges`)."""
        return tuple(r for r in self.rules
                     if isinstance(r, ThresholdRule) and r.feed == FEEDBACK)

    def metrics(self) -> set[str]:
        """Every metric some rule reads (stage 2 may window only these)."""
        out: set[str] = set()
        for r in self.rules:
            if isinstance(r, ThresholdRule):
                out.add(r.metric)
                out.update(g.metric for g in r.when)
            elif isinstance(r, KpiRule):
                out.update((r.numerator, r.denominator))
        return out

    def source_metrics(self) -> set[str]:
        """Metrics some source-scope rule reads: stage 2 must also window them per source."""
        return {r.metric for r in self.rules
                if isinstance(r, ThresholdRule) and r.scope == "source"}

    def longest_window(self) -> timedelta:
        spans = [r.window for r in self.rules if not isinstance(r, AbsenceRule)]
        return max(spans, default=timedelta(minutes=1))
