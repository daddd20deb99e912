"""Loading and checking rule files (``config/rules/*.yaml``).

Every problem is reported with file and line; :func:`check_files` returns them all and
:func:`load_rules` raises :class:`alerts.errors.RuleFilesError` carrying them all.
The file format is documented in ``docs/alerts.md``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from datetime import timedelta
from pathlib import Path
from typing import Any, cast

import yaml

from alerts.errors import RuleFilesError
from alerts.model import SEVERITIES, Severity
from alerts.rules import (
    AGGREGATES,
    FEEDBACK,
    OPS,
    AbsenceRule,
    Annotation,
    Escalation,
    Guard,
    KpiRule,
    KpiTargetRule,
    Override,
    Rule,
    RuleSet,
    ThresholdRule,
)
from alerts.templates import check_template
from alerts.yamlnodes import Reader
from ioccore.errors import RuleError
from ioccore.events.record import FEEDS

_ID = re.compile(r"^[a-z][a-z0-9_]*$")
_LABEL = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_]*$")
OWNER = re.compile(r"^[a-z0-9][a-z0-9-]{0,62}$")
"""A department code (``departments.code``) as a rule's ``owner``."""
RESERVED_LABELS = frozenset({"alertname", "severity", "commune_code", "province_code",
                             "source_id", "feed", "department", "escalated", "receiver"})
MAX_WINDOW = timedelta(days=7)

_COMMON = {"id", "kind", "severity", "labels", "annotations", "for", "keep_firing_for",
           "renotify_every", "escalate", "description", "owner", "incident"}
_COMPARED = {"op", "threshold", "clear", "scope", "window", "overrides", "feed"}
_KEYS = {
    "threshold": _COMMON | _COMPARED | {"metric", "aggregate", "min_count", "when"},
    "kpi": _COMMON | _COMPARED | {"numerator", "denominator", "min_denominator"},
    "absence": _COMMON | {"by", "silent_for", "feed", "department", "sources"},
    "kpi_target": _COMMON | {"kpi", "scope", "tier", "period", "margin", "hysteresis",
                             "min_denominator"},
}
KPI_IDS = ("online_share", "resolved_online_share", "on_time_share", "paid_online_share",
           "digitised_share")
"""KPIs a kpi_target rule may name (ioccore.kpis.KPI_IDS; a unit test keeps them equal)."""
_METRIC_PREFIX = {"traffic": "traffic.", "service": "service.",
                  FEEDBACK: "feedback.received."}
RULE_FEEDS: tuple[str, ...] = (*FEEDS, FEEDBACK)
"""Feeds a threshold or kpi rule may name: the event feeds and the citizen reports."""
_SERVICE_CODE = re.compile(r"^feedback\.received\.[a-z0-9_]{1,64}$")


def check_files(paths: Iterable[Path | str]) -> list[RuleError]:
    """Every error in the given rule files (empty when they are all valid)."""
    errors: list[RuleError] = []
    _load(paths, errors)
    return _in_order(errors)


def load_rules(paths: Iterable[Path | str]) -> RuleSet:
    """The rules of the given files; raises ``RuleFilesError`` listing every problem."""
    errors: list[RuleError] = []
    rules = _load(paths, errors)
    if errors:
        raise RuleFilesError(_in_order(errors))
    return rules


def _in_order(errors: list[RuleError]) -> list[RuleError]:
    """Errors grouped by file (in the order given), then by line."""
    files = list(dict.fromkeys(e.file for e in errors))
    return sorted(errors, key=lambda e: (files.index(e.file), e.line or 0))


def load_rules_dir(directory: Path) -> RuleSet:
    """Every ``*.yaml`` rule file directly inside ``directory`` (sorted by name)."""
    return load_rules(sorted(directory.glob("*.yaml")))


def _load(paths: Iterable[Path | str], errors: list[RuleError]) -> RuleSet:
    rules: list[Rule] = []
    targets: list[KpiTargetRule] = []
    seen: dict[str, str] = {}
    for path in paths:
        name = str(path)
        reader = Reader(name, errors)
        try:
            text = Path(path).read_text(encoding="utf-8")
        except OSError as exc:
            errors.append(RuleError(name, None, f"cannot read: {exc.strerror or exc}"))
            continue
        for rule, node in _parse_file(reader, text):
            if rule.id in seen:
                reader.error(node, f"rule id {rule.id!r} already defined at {seen[rule.id]}")
                continue
            seen[rule.id] = f"{name}:{rule.line}"
            if isinstance(rule, KpiTargetRule):
                targets.append(rule)
            else:
                rules.append(rule)
    return RuleSet(tuple(rules), tuple(targets))


def _parse_file(r: Reader, text: str) -> list[tuple[Rule | KpiTargetRule, yaml.Node]]:
    root = r.compose(text)
    if root is None:
        if not r.errors or r.errors[-1].file != r.file:
            r.error(None, "empty rule file")
        return []
    top = r.mapping(root, "file", {"groups"})
    if top is None:
        return []
    if "groups" not in top:
        r.error(root, "file: missing key 'groups'")
        return []
    out: list[tuple[Rule | KpiTargetRule, yaml.Node]] = []
    group_names: set[str] = set()
    for gnode in r.sequence(top["groups"], "groups"):
        group = r.mapping(gnode, "group", {"name", "rules"})
        if group is None:
            continue
        gname = r.string(group["name"], "group.name") if "name" in group else None
        if "name" not in group:
            r.error(gnode, "group: missing key 'name'")
        elif gname in group_names:
            r.error(group["name"], f"group name {gname!r} used twice in this file")
        if gname:
            group_names.add(gname)
        if "rules" not in group:
            r.error(gnode, "group: missing key 'rules'")
            continue
        for rnode in r.sequence(group["rules"], "rules"):
            rule = _parse_rule(r, rnode, gname or "?")
            if rule is not None:
                out.append((rule, rnode))
    return out


def _required(r: Reader, fields: dict[str, yaml.Node], node: yaml.Node, where: str,
              *keys: str) -> bool:
    ok = True
    for key in keys:
        if key not in fields:
            r.error(node, f"{where}: missing key {key!r}")
            ok = False
    return ok


def _parse_rule(r: Reader, node: yaml.Node, group: str) -> Rule | KpiTargetRule | None:
    raw = r.mapping(node, "rule")
    if raw is None:
        return None
    rid = r.string(raw["id"], "rule.id") if "id" in raw else None
    where = f"rule {rid}" if rid else "rule"
    if "id" not in raw:
        r.error(node, "rule: missing key 'id'")
    elif rid is not None and not _ID.match(rid):
        r.error(raw["id"], f"{where}: id must match [a-z][a-z0-9_]*")
        rid = None
    kind = "threshold"
    if "kind" in raw:
        kind = r.choice(raw["kind"], f"{where}.kind",
                        ("threshold", "kpi", "absence", "kpi_target")) or "?"
    if kind == "?":
        return None
    before = len(r.errors)
    allowed = _KEYS[kind]
    for key, _ in raw.items():
        if key not in allowed:
            key_node = next(k for k, _ in cast(yaml.MappingNode, node).value if k.value == key)
            r.error(key_node, f"{where}: unknown key {key!r} for a {kind} rule "
                              f"(allowed: {', '.join(sorted(allowed))})")

    common: dict[str, Any] = {"id": rid or "?", "group": group, "file": r.file,
                              "line": node.start_mark.line + 1}
    if _required(r, raw, node, where, "severity"):
        common["severity"] = r.choice(raw["severity"], f"{where}.severity", SEVERITIES)
    if "labels" in raw:
        labels = r.string_map(raw["labels"], f"{where}.labels") or {}
        for key in labels:
            if not _LABEL.match(key) or key in RESERVED_LABELS:
                r.error(raw["labels"], f"{where}.labels: {key!r} is not a usable label name "
                                       f"(reserved: {', '.join(sorted(RESERVED_LABELS))})")
        common["labels"] = labels
    if "owner" in raw:  # the owning department: label `department`, routed by Alertmanager
        owner = r.string(raw["owner"], f"{where}.owner")
        if owner is not None and not OWNER.match(owner):
            r.error(raw["owner"], f"{where}.owner: {owner!r} is not a department code "
                                  "([a-z0-9][a-z0-9-]*, at most 63 characters)")
        elif owner is not None:
            common["labels"] = {**common.get("labels", {}), "department": owner}
    common["annotations"] = _annotations(r, raw, node, where)
    for key, attr in (("for", "for_"), ("keep_firing_for", "keep_firing_for")):
        if key in raw:
            common[attr] = r.duration(raw[key], f"{where}.{key}")
    if "renotify_every" in raw:
        common["renotify_every"] = r.duration(raw["renotify_every"], f"{where}.renotify_every",
                                              positive=True)
    if "escalate" in raw:
        common["escalation"] = _escalation(r, raw["escalate"], where, common.get("severity"))
    if "incident" in raw:  # docs/incidents.md: auto opens an incident when it fires
        common["incident"] = r.choice(raw["incident"], f"{where}.incident", ("auto", "manual"))

    rule: Rule | KpiTargetRule | None = None
    if kind == "absence":
        rule = _absence(r, raw, node, where, common)
    elif kind == "kpi_target":
        rule = _kpi_target(r, raw, node, where, common)
    else:
        compared = _compared(r, raw, node, where, kind)
        if compared is not None:
            common.update(compared)
            if kind == "threshold":
                rule = _threshold(r, raw, node, where, common)
            else:
                rule = _kpi(r, raw, node, where, common)
    if len(r.errors) > before or rid is None:
        return None
    return rule


def _annotations(r: Reader, raw: dict[str, yaml.Node], node: yaml.Node,
                 where: str) -> tuple[Annotation, ...]:
    if "annotations" not in raw:
        r.error(node, f"{where}: missing key 'annotations' (at least a summary in vi and en)")
        return ()
    items = r.mapping(raw["annotations"], f"{where}.annotations")
    out: list[Annotation] = []
    for name, value in (items or {}).items():
        place = f"{where}.annotations.{name}"
        if not _LABEL.match(name):
            r.error(value, f"{place}: annotation names must match [a-zA-Z_][a-zA-Z0-9_]*")
            continue
        langs = r.mapping(value, place, {"vi", "en"})
        if langs is None:
            continue
        texts: dict[str, str] = {}
        for lang in ("vi", "en"):
            if lang not in langs:
                r.error(value, f"{place}: missing the {'Vietnamese' if lang == 'vi' else 'English'}"
                               f" text ({lang})")
                continue
            text = r.string(langs[lang], f"{place}.{lang}")
            if text is None:
                continue
            problem = check_template(text)
            if problem:
                r.error(langs[lang], f"{place}.{lang}: {problem}")
                continue
            texts[lang] = text
        if len(texts) == 2:
            out.append(Annotation(name, texts["vi"], texts["en"]))
    if items is not None and "summary" not in items:
        r.error(raw["annotations"], f"{where}.annotations: missing 'summary'")
    return tuple(out)


def _escalation(r: Reader, node: yaml.Node, where: str, base: str | None) -> Escalation | None:
    place = f"{where}.escalate"
    raw = r.mapping(node, place, {"after", "severity", "receiver"})
    if raw is None:
        return None
    after = r.duration(raw["after"], f"{place}.after", positive=True) if "after" in raw else None
    severity = (r.choice(raw["severity"], f"{place}.severity", SEVERITIES)
                if "severity" in raw else None)
    receiver = r.string(raw["receiver"], f"{place}.receiver") if "receiver" in raw else None
    if "severity" not in raw and "receiver" not in raw:
        r.error(node, f"{place}: give a severity, a receiver or both")
    if (severity and base in SEVERITIES and receiver is None
            and SEVERITIES.index(severity) <= SEVERITIES.index(base)):
        r.error(raw["severity"], f"{place}.severity: {severity} is not higher than {base}")
    return Escalation(after, cast(Severity | None, severity), receiver)


def _compared(r: Reader, raw: dict[str, yaml.Node], node: yaml.Node, where: str,
              kind: str) -> dict[str, Any] | None:
    out: dict[str, Any] = {}
    if not _required(r, raw, node, where, "feed", "op", "threshold"):
        return None
    out["feed"] = r.choice(raw["feed"], f"{where}.feed", RULE_FEEDS)
    op = r.choice(raw["op"], f"{where}.op", OPS)
    if out["feed"] == FEEDBACK:
        _surge_shape(r, raw, where, kind, op)
    threshold = r.number(raw["threshold"], f"{where}.threshold")
    clear = r.number(raw["clear"], f"{where}.clear") if "clear" in raw else threshold
    if op is None or threshold is None or clear is None:
        return None
    if not _band_ok(op, threshold, clear):
        r.error(raw.get("clear", raw["threshold"]),
                f"{where}.clear: {clear} is on the wrong side of threshold {threshold} for "
                f"op {op!r} (the alert clears when the value is back past the clear threshold)")
    out.update(op=op, threshold=threshold, clear=clear)
    if "scope" in raw:
        scope = r.choice(raw["scope"], f"{where}.scope", ("source", "commune", "province"))
        if scope == "source":
            r.error(raw["scope"], f"{where}.scope: 'source' is not supported for {kind} rules:"
                    " the pipeline keeps one-minute windows per commune, not per source, so"
                    " such a rule could never fire. Use scope: commune (with the source's"
                    " commune), or an absence rule with by: source to watch one source")
        else:
            out["scope"] = scope
    default_window = "1m" if kind == "threshold" else "1d"
    window = (r.duration(raw["window"], f"{where}.window", positive=True) if "window" in raw
              else timedelta(minutes=1) if default_window == "1m" else timedelta(days=1))
    if window is not None:
        if window.total_seconds() % 60:
            r.error(raw["window"], f"{where}.window: must be whole minutes (windows are 1 min)")
        elif window > MAX_WINDOW:
            r.error(raw["window"], f"{where}.window: at most 7d")
        out["window"] = window
    if "overrides" in raw:
        out["overrides"] = tuple(_overrides(r, raw["overrides"], where, op, threshold, clear))
    return out


def _surge_shape(r: Reader, raw: dict[str, yaml.Node], where: str, kind: str,
                 op: str | None) -> None:
    """A rule over citizen reports counts reports per commune (alerts.surges): more
    reports can only make it fire sooner and longer, which is what lets a late report
    correct the past exactly (docs/feedback.md, "Surge rules")."""
    if kind != "threshold":
        r.error(raw["feed"], f"{where}.feed: feedback rules are threshold rules (a count of "
                             "reports), not kpi rules")
    if op is not None and op not in (">", ">="):
        r.error(raw["op"], f"{where}.op: a feedback rule fires on many reports (> or >=)")
    if "scope" in raw and raw["scope"].value != "commune":
        r.error(raw["scope"], f"{where}.scope: feedback rules are per commune (scope: commune)")
    if "aggregate" in raw and raw["aggregate"].value not in ("count", "sum"):
        r.error(raw["aggregate"], f"{where}.aggregate: feedback rules count reports "
                                  "(count or sum)")
    for key in ("for", "when"):
        if key in raw:
            r.error(raw[key], f"{where}.{key}: not supported for feedback rules (a surge "
                              "fires at the minute its window reaches the threshold)")


def _band_ok(op: str, threshold: float, clear: float) -> bool:
    return clear <= threshold if op in (">", ">=") else clear >= threshold


def _overrides(r: Reader, node: yaml.Node, where: str, op: str, threshold: float,
               clear: float) -> list[Override]:
    out: list[Override] = []
    keys_seen: set[tuple[str, str]] = set()
    for item in r.sequence(node, f"{where}.overrides"):
        place = f"{where}.overrides"
        raw = r.mapping(item, place, {"commune", "province", "threshold", "clear", "severity",
                                      "disabled"})
        if raw is None:
            continue
        commune = r.string(raw["commune"], f"{place}.commune") if "commune" in raw else None
        province = r.string(raw["province"], f"{place}.province") if "province" in raw else None
        if (commune is None) == (province is None):
            r.error(item, f"{place}: give exactly one of commune or province")
            continue
        key = ("commune", commune) if commune else ("province", province or "")
        if key in keys_seen:
            r.error(item, f"{place}: {key[0]} {key[1]} overridden twice")
            continue
        keys_seen.add(key)
        o_threshold = (r.number(raw["threshold"], f"{place}.threshold")
                       if "threshold" in raw else None)
        o_clear = r.number(raw["clear"], f"{place}.clear") if "clear" in raw else None
        t = threshold if o_threshold is None else o_threshold
        c = o_clear if o_clear is not None else clear + (t - threshold)
        if not _band_ok(op, t, c):
            r.error(item, f"{place}: clear {c} is on the wrong side of threshold {t}")
        severity = (r.choice(raw["severity"], f"{place}.severity", SEVERITIES)
                    if "severity" in raw else None)
        disabled = r.boolean(raw["disabled"], f"{place}.disabled") if "disabled" in raw else False
        out.append(Override(commune, province, o_threshold, o_clear,
                            cast(Severity | None, severity), bool(disabled)))
    return out


def _threshold(r: Reader, raw: dict[str, yaml.Node], node: yaml.Node, where: str,
               common: dict[str, Any]) -> ThresholdRule | None:
    if not _required(r, raw, node, where, "metric"):
        return None
    metric = r.string(raw["metric"], f"{where}.metric")
    feed = common.get("feed")
    if metric and feed:
        prefix = _METRIC_PREFIX.get(feed)
        if prefix and not metric.startswith(prefix):
            r.error(raw["metric"], f"{where}.metric: {feed} metrics are named {prefix}<name>")
        if feed == "sensor" and metric.startswith(tuple(_METRIC_PREFIX.values())):
            r.error(raw["metric"], f"{where}.metric: {metric!r} is not a sensor metric")
        if feed == FEEDBACK and metric.startswith("feedback.received.") \
                and not _SERVICE_CODE.match(metric):
            r.error(raw["metric"], f"{where}.metric: feedback.received.<service_code> with a "
                                   "service code of config/feedback.yaml")
    aggregate = "count" if feed == FEEDBACK else "avg"
    if "aggregate" in raw:
        aggregate = r.choice(raw["aggregate"], f"{where}.aggregate", AGGREGATES) or aggregate
    if aggregate == "rate" and common.get("window") == timedelta(minutes=1):
        r.error(raw.get("window", node), f"{where}.window: rate needs a window of 2m or more")
    min_count = r.integer(raw["min_count"], f"{where}.min_count", 1) if "min_count" in raw else 1
    guards: list[Guard] = []
    for item in r.sequence(raw["when"], f"{where}.when") if "when" in raw else []:
        place = f"{where}.when"
        g = r.mapping(item, place, {"metric", "aggregate", "op", "threshold"})
        if g is None:
            continue
        if not _required(r, g, item, place, "metric", "op", "threshold"):
            continue
        g_metric = r.string(g["metric"], f"{place}.metric")
        g_agg = (r.choice(g["aggregate"], f"{place}.aggregate", AGGREGATES)
                 if "aggregate" in g else "avg")
        g_op = r.choice(g["op"], f"{place}.op", OPS)
        g_threshold = r.number(g["threshold"], f"{place}.threshold")
        if g_metric and g_agg and g_op and g_threshold is not None:
            guards.append(Guard(g_metric, cast(Any, g_agg), cast(Any, g_op), g_threshold))
    if metric is None or None in (common.get("severity"), feed):
        return None
    return ThresholdRule(metric=metric, aggregate=cast(Any, aggregate),
                         min_count=min_count or 1, when=tuple(guards), **common)


def _kpi(r: Reader, raw: dict[str, yaml.Node], node: yaml.Node, where: str,
         common: dict[str, Any]) -> KpiRule | None:
    if not _required(r, raw, node, where, "numerator", "denominator"):
        return None
    numerator = r.string(raw["numerator"], f"{where}.numerator")
    denominator = r.string(raw["denominator"], f"{where}.denominator")
    if numerator and numerator == denominator:
        r.error(raw["denominator"], f"{where}: numerator and denominator are the same metric")
    threshold = common["threshold"]
    if not 0 <= threshold <= 100:
        r.error(raw["threshold"], f"{where}.threshold: a KPI is a percentage (0-100)")
    min_den = (r.integer(raw["min_denominator"], f"{where}.min_denominator", 1)
               if "min_denominator" in raw else 1)
    if numerator is None or denominator is None or None in (common.get("severity"),
                                                            common.get("feed")):
        return None
    return KpiRule(numerator=numerator, denominator=denominator,
                   min_denominator=min_den or 1, **common)


def _kpi_target(r: Reader, raw: dict[str, yaml.Node], node: yaml.Node, where: str,
                common: dict[str, Any]) -> KpiTargetRule | None:
    if not _required(r, raw, node, where, "kpi"):
        return None
    kpi = r.choice(raw["kpi"], f"{where}.kpi", KPI_IDS)
    out: dict[str, Any] = {}
    for key, values in (("scope", ("nation", "province")),
                        ("tier", ("all", "province", "commune", "unassigned")),
                        ("period", ("day", "week", "month"))):
        if key in raw:
            out[key] = r.choice(raw[key], f"{where}.{key}", values)
    for key in ("margin", "hysteresis"):
        if key in raw:
            value = r.number(raw[key], f"{where}.{key}")
            if value is not None and not 0 <= value <= 100:
                r.error(raw[key], f"{where}.{key}: percentage points, 0-100")
            out[key] = value
    if "min_denominator" in raw:
        out["min_denominator"] = r.integer(raw["min_denominator"], f"{where}.min_denominator",
                                           1) or 1
    if kpi is None or common.get("severity") is None or None in out.values():
        return None
    return KpiTargetRule(kpi=kpi, **out, **common)


def _absence(r: Reader, raw: dict[str, yaml.Node], node: yaml.Node, where: str,
             common: dict[str, Any]) -> AbsenceRule | None:
    _required(r, raw, node, where, "by", "silent_for")
    by = r.choice(raw["by"], f"{where}.by", ("source", "feed", "department")) \
        if "by" in raw else None
    silent_for = r.duration(raw["silent_for"], f"{where}.silent_for", positive=True) \
        if "silent_for" in raw else None
    feed = r.choice(raw["feed"], f"{where}.feed", FEEDS) if "feed" in raw else None
    department = r.string(raw["department"], f"{where}.department") if "department" in raw else None
    sources: list[str] = []
    if "sources" in raw:
        for item in r.sequence(raw["sources"], f"{where}.sources"):
            value = r.string(item, f"{where}.sources")
            if value:
                sources.append(value)
    if by is None or silent_for is None or common.get("severity") is None:
        return None
    return AbsenceRule(by=cast(Any, by), silent_for=silent_for, feed=feed, department=department,
                       sources=tuple(sources), **common)
