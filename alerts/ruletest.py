"""Rule unit tests in the spirit of ``promtool test rules``.

A test file names rule files, optional commune names, and tests. Each test feeds
one-minute input series (per commune and metric, or per source for absence rules),
evaluates every minute from ``start``, applies optional operator actions, and compares
the alerts of a rule at given times with the expected ones. Format: ``docs/alerts.md``.

It drives the very evaluator stage 2 runs (:meth:`Evaluator.evaluate`, then ``commit``),
so a rule test and the pipeline cannot disagree: minute ``T`` of the series is the
one-minute window starting at ``start + T``, and "at ``eval_time`` T" is the state after
the minute boundary that closes it was evaluated.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import yaml

from alerts import lifecycle
from alerts.durations import parse_duration
from alerts.errors import RuleFilesError
from alerts.evaluator import Evaluator
from alerts.model import SYSTEM, AlertState, CommuneInfo, Transition, WindowPoint
from alerts.ruleload import load_rules
from alerts.rules import RuleSet
from alerts.series import expand
from alerts.source_clocks import Sighting
from alerts.yamlnodes import Reader
from ioccore.errors import RuleError

DEFAULT_START = datetime(2025, 7, 1, tzinfo=UTC)
MINUTE = timedelta(minutes=1)


@dataclass(slots=True)
class TestOutcome:
    file: str
    name: str
    failures: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.failures


@dataclass(slots=True)
class _Series:
    values: list[float | None]
    commune: str | None = None
    metric: str | None = None
    counts: bool = False
    source: str | None = None
    feed: str = "sensor"
    department: str = "unknown"


def run_file(path: Path | str) -> list[TestOutcome]:
    """Run every test in one test file; problems with the file itself raise RuleError."""
    path = Path(path)
    doc = _read(path)
    rule_paths = [path.parent / str(p) for p in doc.get("rule_files") or []]
    if not rule_paths:
        raise RuleError(str(path), 1, "rule_files: give at least one rule file")
    rules = load_rules(rule_paths)
    communes = {
        str(code): CommuneInfo(
            name=str(c["name"]), name_en=c.get("name_en"),
            province_code=str(c["province_code"]), province_name=str(c["province_name"]),
            province_name_en=c.get("province_name_en"))
        for code, c in (doc.get("communes") or {}).items()
    }
    out: list[TestOutcome] = []
    for index, test in enumerate(doc.get("tests") or []):
        name = str(test.get("name") or f"test #{index + 1}")
        outcome = TestOutcome(str(path), name)
        try:
            _run_test(test, rules, communes, doc, outcome)
        except (KeyError, ValueError, TypeError) as exc:
            outcome.failures.append(f"bad test definition: {type(exc).__name__}: {exc}")
        out.append(outcome)
    return out


def _read(path: Path) -> dict[str, Any]:
    errors: list[RuleError] = []
    reader = Reader(str(path), errors)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise RuleError(str(path), None, f"cannot read: {exc.strerror or exc}") from exc
    node = reader.compose(text)
    if errors:
        raise RuleFilesError(errors)
    if node is None:
        raise RuleError(str(path), None, "empty test file")
    data = yaml.safe_load(text)
    if not isinstance(data, dict):
        raise RuleError(str(path), 1, "a test file is a mapping with rule_files and tests")
    return data


def _duration(value: Any) -> timedelta:
    return parse_duration(str(value))


def _parse_series(items: list[dict[str, Any]]) -> list[_Series]:
    out: list[_Series] = []
    for item in items:
        if "source" in item:
            out.append(_Series(expand(str(item["seen"])), commune=str(item.get("commune", "")),
                               source=str(item["source"]), feed=str(item.get("feed", "sensor")),
                               department=str(item.get("department", "unknown"))))
        else:
            out.append(_Series(expand(str(item["values"])), commune=str(item["commune"]),
                               metric=str(item["metric"]), counts=bool(item.get("counts")),
                               source=None))
    return out


def _run_test(test: dict[str, Any], rules: RuleSet, communes: dict[str, CommuneInfo],
              doc: dict[str, Any], outcome: TestOutcome) -> None:
    start = test.get("start") or doc.get("start") or DEFAULT_START
    if isinstance(start, str):
        start = datetime.fromisoformat(start.replace("Z", "+00:00"))
    if start.tzinfo is None:
        start = start.replace(tzinfo=UTC)
    defaults = doc.get("defaults") or {}
    renotify = defaults.get("renotify_every", "15m")
    escalate = defaults.get("escalate_after", "30m")
    evaluator = Evaluator(rules, communes, renotify_every=_duration(renotify),
                          escalate_after=_duration(escalate))
    series = _parse_series(test.get("input_series") or [])
    checks = test.get("alert_rule_test") or []
    actions = test.get("actions") or []
    last = max([len(s.values) - 1 for s in series] + [0]
               + [int(_duration(c["eval_time"]) / MINUTE) for c in checks]
               + [int(_duration(a["at"]) / MINUTE) for a in actions])
    transitions: list[Transition] = []
    for minute in range(last + 1):
        now = start + minute * MINUTE
        points: list[WindowPoint] = []
        sightings: list[Sighting] = []
        for s in series:
            value = s.values[minute] if minute < len(s.values) else None
            if value is None:
                continue
            commune = s.commune or ""
            province = _province(communes, commune)
            if s.source is not None:
                sightings.append(Sighting(s.source, s.feed, s.department, commune, province,
                                          now, now))
            elif s.counts:
                points.append(WindowPoint(commune, province, s.metric or "", now, int(value),
                                          value, 1.0, 1.0, 1.0))
            else:
                points.append(WindowPoint(commune, province, s.metric or "", now, 1, value,
                                          value, value, value))
        for action in actions:
            if int(_duration(action["at"]) / MINUTE) == minute:
                transitions.append(_act(evaluator, action, now))
        # Series are complete: each minute is evaluated once its data is in.
        plan = evaluator.evaluate(points, sightings, wall_now=now, complete_until=now + MINUTE)
        evaluator.commit(plan)
        transitions.extend(plan.transitions)
        for check in checks:
            if int(_duration(check["eval_time"]) / MINUTE) == minute:
                _check(evaluator, check, outcome)


def _province(communes: dict[str, CommuneInfo], commune: str) -> str:
    return communes[commune].province_code if commune in communes else "00"


def _find(evaluator: Evaluator, alertname: str, labels: dict[str, Any]) -> AlertState | None:
    for a in evaluator.alerts.values():
        if a.rule_id == alertname and all(a.labels.get(k) == str(v) for k, v in labels.items()):
            return a
    return None


def _act(evaluator: Evaluator, action: dict[str, Any], now: datetime) -> Transition:
    a = _find(evaluator, str(action["alertname"]), action.get("labels") or {})
    if a is None:
        raise ValueError(f"action at {action['at']}: no alert {action['alertname']} "
                         f"with labels {action.get('labels')}")
    by = str(action.get("by", SYSTEM))
    if action.get("action") == "resolve":
        return lifecycle.resolve_by_hand(a, by, action.get("note"), now)
    return lifecycle.acknowledge(a, by, action.get("note"), now)


def _check(evaluator: Evaluator, check: dict[str, Any], outcome: TestOutcome) -> None:
    alertname = str(check["alertname"])
    expected = check.get("exp_alerts") or []
    states = {str(e.get("state", "firing")) for e in expected} | {"firing", "acknowledged"}
    got = [a for a in evaluator.alerts.values() if a.rule_id == alertname and a.state in states]
    unmatched = list(got)
    missing: list[dict[str, Any]] = []
    for exp in expected:
        want_state = str(exp.get("state", "firing"))
        labels = {k: str(v) for k, v in (exp.get("exp_labels") or {}).items()}
        annotations = {k: str(v) for k, v in (exp.get("exp_annotations") or {}).items()}
        match = next((a for a in unmatched if a.state == want_state
                      and all(a.labels.get(k) == v for k, v in labels.items())
                      and all(a.annotations.get(k) == v for k, v in annotations.items())), None)
        if match is None:
            missing.append(exp)
        else:
            unmatched.remove(match)
    if missing or unmatched:
        outcome.failures.append(
            f"alertname: {alertname}, time: {check['eval_time']},\n"
            f"        exp: {_show_expected(expected)}\n"
            f"        got: {_show_got(got)}")


def _show_expected(expected: list[dict[str, Any]]) -> str:
    return "[" + ", ".join(
        f"{e.get('state', 'firing')} {dict(e.get('exp_labels') or {})}"
        + (f" {dict(e['exp_annotations'])}" if e.get("exp_annotations") else "")
        for e in expected) + "]"


def _show_got(got: list[AlertState]) -> str:
    return "[" + ", ".join(f"{a.state} {a.labels} {a.annotations}" for a in got) + "]"
