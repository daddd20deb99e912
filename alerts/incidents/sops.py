"""Standard operating procedures: YAML under ``config/sops/``, checked with positions.

One file holds one SOP::

    id: flood_alarm_2
    title: {vi: "...", en: "..."}
    rules: [water_level_alarm_2]          # alerts of these rules follow this SOP
    steps:
      - id: warn_communes
        title: {vi: "...", en: "..."}
        department: pctt       # who owns the step
        due: 30m                           # after the incident opened
        requires: note                     # none | note | evidence

Every problem is reported as ``file:line: message`` (like ``ioc rules check``); a rule
named by two SOPs, a step department the duty rota does not know, or a rule id that
no rule file defines are errors when the caller passes those lists.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Final, Literal

import yaml

from alerts.yamlnodes import Reader
from ioccore.errors import RuleError

Requires = Literal["none", "note", "evidence"]
REQUIRES: Final[tuple[Requires, ...]] = ("none", "note", "evidence")
_ID = re.compile(r"^[a-z][a-z0-9_]*$")
_TOP = {"id", "title", "rules", "steps", "description"}
_STEP = {"id", "title", "department", "due", "requires"}
MAX_STEPS: Final = 50


@dataclass(frozen=True, slots=True)
class Text:
    vi: str
    en: str


@dataclass(frozen=True, slots=True)
class Step:
    id: str
    title: Text
    department: str
    due: timedelta
    requires: Requires


@dataclass(frozen=True, slots=True)
class Sop:
    id: str
    title: Text
    rules: tuple[str, ...]
    steps: tuple[Step, ...]
    file: str
    line: int


class SopFilesError(ValueError):
    """SOP files with errors; ``errors`` lists every one."""

    def __init__(self, errors: list[RuleError]) -> None:
        self.errors = errors
        super().__init__("\n".join(str(e) for e in errors))


def _text(r: Reader, node: yaml.Node, where: str) -> Text | None:
    raw = r.mapping(node, where, {"vi", "en"})
    if raw is None:
        return None
    out: dict[str, str] = {}
    for lang in ("vi", "en"):
        if lang not in raw:
            r.error(node, f"{where}: missing the {'Vietnamese' if lang == 'vi' else 'English'}"
                          f" text ({lang})")
            continue
        text = r.string(raw[lang], f"{where}.{lang}")
        if text is not None:
            out[lang] = text
    return Text(out["vi"], out["en"]) if len(out) == 2 else None


def _step(r: Reader, node: yaml.Node, where: str) -> Step | None:
    raw = r.mapping(node, where, _STEP)
    if raw is None:
        return None
    before = len(r.errors)
    for key in ("id", "title", "department", "due"):
        if key not in raw:
            r.error(node, f"{where}: missing key {key!r}")
    sid = r.string(raw["id"], f"{where}.id") if "id" in raw else None
    if sid is not None and not _ID.match(sid):
        r.error(raw["id"], f"{where}.id: must match [a-z][a-z0-9_]*")
    title = _text(r, raw["title"], f"{where}.title") if "title" in raw else None
    dept = r.string(raw["department"], f"{where}.department") if "department" in raw else None
    due = r.duration(raw["due"], f"{where}.due") if "due" in raw else None
    requires = (r.choice(raw["requires"], f"{where}.requires", REQUIRES)
                if "requires" in raw else "none")
    if len(r.errors) > before or None in (sid, title, dept, due, requires):
        return None
    assert sid is not None and title is not None and dept is not None and due is not None
    return Step(sid, title, dept, due, requires)  # type: ignore[arg-type]


def parse(file: str, text: str, errors: list[RuleError]) -> Sop | None:
    """One SOP from one file's text; problems are appended to ``errors``."""
    r = Reader(file, errors)
    root = r.compose(text)
    if root is None:
        if not errors:
            r.error(None, "empty file")
        return None
    raw = r.mapping(root, "sop", _TOP)
    if raw is None:
        return None
    before = len(errors)
    for key in ("id", "title", "rules", "steps"):
        if key not in raw:
            r.error(root, f"sop: missing key {key!r}")
    sid = r.string(raw["id"], "sop.id") if "id" in raw else None
    if sid is not None and not _ID.match(sid):
        r.error(raw["id"], "sop.id: must match [a-z][a-z0-9_]*")
    title = _text(r, raw["title"], "sop.title") if "title" in raw else None
    rules: list[str] = []
    for node in r.sequence(raw["rules"], "sop.rules") if "rules" in raw else []:
        rid = r.string(node, "sop.rules[]")
        if rid is not None:
            rules.append(rid)
    steps: list[Step] = []
    seen: set[str] = set()
    nodes = r.sequence(raw["steps"], "sop.steps") if "steps" in raw else []
    if "steps" in raw and not nodes:
        r.error(raw["steps"], "sop.steps: at least one step")
    if len(nodes) > MAX_STEPS:
        r.error(raw["steps"], f"sop.steps: at most {MAX_STEPS} steps")
    for i, node in enumerate(nodes[:MAX_STEPS]):
        raw_id = _raw(node, "id")
        duplicate = raw_id is not None and raw_id in seen
        if duplicate:
            r.error(node, f"sop.steps[{i}]: duplicate step id {raw_id!r}")
        if raw_id is not None:
            seen.add(raw_id)
        step = _step(r, node, f"sop.steps[{i}]")
        if step is not None and not duplicate:
            steps.append(step)
    if len(errors) > before or sid is None or title is None:
        return None
    return Sop(sid, title, tuple(rules), tuple(steps), file, root.start_mark.line + 1)


def _raw(node: yaml.Node, key: str) -> str | None:
    """A scalar value of a mapping node, without reporting anything."""
    if isinstance(node, yaml.MappingNode):
        for k, v in node.value:
            if k.value == key and isinstance(v, yaml.ScalarNode):
                return str(v.value)
    return None


def _positions(text: str) -> tuple[dict[str, int], list[tuple[str, int]]]:
    """Line of each entry of ``rules:`` and (department, line) of each step, read
    without the parser (so cross-file checks run even when a step is invalid)."""
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError:
        return {}, []
    rules: dict[str, int] = {}
    depts: list[tuple[str, int]] = []
    if isinstance(root, yaml.MappingNode):
        for key, value in root.value:
            if key.value == "rules" and isinstance(value, yaml.SequenceNode):
                for item in value.value:
                    if isinstance(item, yaml.ScalarNode):
                        rules.setdefault(item.value, item.start_mark.line + 1)
            if key.value == "steps" and isinstance(value, yaml.SequenceNode):
                for step in value.value:
                    if not isinstance(step, yaml.MappingNode):
                        continue
                    for k, v in step.value:
                        if k.value == "department" and isinstance(v, yaml.ScalarNode):
                            depts.append((str(v.value), v.start_mark.line + 1))
    return rules, depts


def check(paths: Iterable[Path | str], *, rule_ids: Collection[str] | None = None,
          departments: Collection[str] | None = None) -> tuple[list[Sop], list[RuleError]]:
    """Every SOP of ``paths`` and every error (sorted by file and line)."""
    errors: list[RuleError] = []
    sops: list[Sop] = []
    owner: dict[str, str] = {}
    ids: dict[str, str] = {}
    for path in paths:
        file = str(path)
        try:
            text = Path(path).read_text(encoding="utf-8")
        except OSError as exc:
            errors.append(RuleError(file, None, f"cannot read: {exc.strerror}"))
            continue
        sop = parse(file, text, errors)
        lines, depts = _positions(text)
        for rid, line in lines.items():
            if rule_ids is not None and rid not in rule_ids:
                errors.append(RuleError(file, line, f"no rule file defines {rid!r}"))
        for dept, line in depts:
            if departments is not None and dept not in departments:
                errors.append(RuleError(file, line, f"department {dept!r} is not in the "
                                                    "duty rota"))
        if sop is None:
            continue
        if sop.id in ids:
            errors.append(RuleError(file, sop.line, f"sop id {sop.id!r} is also used by "
                                                    f"{ids[sop.id]}"))
        ids.setdefault(sop.id, file)
        for rid in sop.rules:
            if rid in owner:
                errors.append(RuleError(file, lines.get(rid), f"rule {rid!r} already "
                                                              f"follows SOP {owner[rid]}"))
            owner.setdefault(rid, sop.id)
        sops.append(sop)
    errors.sort(key=lambda e: (e.file, e.line or 0))
    return sops, errors



def load_dir(directory: Path, *, rule_ids: Collection[str] | None = None,
             departments: Collection[str] | None = None) -> dict[str, Sop]:
    """The SOPs of a directory by rule id; raises :class:`SopFilesError` on any error."""
    sops, errors = check(sorted(directory.glob("*.yaml")), rule_ids=rule_ids,
                         departments=departments)
    if errors:
        raise SopFilesError(errors)
    return by_rule(sops)


def by_rule(sops: Iterable[Sop]) -> dict[str, Sop]:
    out: dict[str, Sop] = {}
    for sop in sops:
        for rid in sop.rules:
            out.setdefault(rid, sop)
    return out


def find(sops: Mapping[str, Sop], rule_id: str | None) -> Sop | None:
    return sops.get(rule_id) if rule_id else None
