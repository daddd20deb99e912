"""Annotation templates: ``str.format`` fields from a fixed list, checked at load time.

Fields: ``commune``, ``commune_en``, ``commune_code``, ``province``, ``province_en``,
``province_code``, ``source_id``, ``feed``, ``department``, ``metric``, ``value``,
``threshold``, ``clear``, ``window``, ``severity``, ``rule``, and for KPI target rules
``kpi``, ``tier``, ``period`` (the period's first day). Format specs work
(``{value:.1f}``); a field without a value renders as ``?`` (``{value}`` of an absence
rule is the number of silent minutes).
"""

from __future__ import annotations

import string
from collections.abc import Mapping
from typing import Any

FIELDS: frozenset[str] = frozenset({
    "commune", "commune_en", "commune_code", "province", "province_en", "province_code",
    "source_id", "feed", "department", "metric", "value", "threshold", "clear", "window",
    "severity", "rule", "kpi", "tier", "period",
})

_FORMATTER = string.Formatter()


def check_template(template: str) -> str | None:
    """``None`` when the template is usable, else what is wrong with it."""
    try:
        parsed = list(_FORMATTER.parse(template))
    except ValueError as exc:
        return f"bad template: {exc}"
    for _, name, spec, _ in parsed:
        if name is None:
            continue
        if name not in FIELDS:
            return f"unknown template field {{{name}}}; known: {', '.join(sorted(FIELDS))}"
        if spec and "{" in spec:
            return "nested template fields are not supported"
    return None


class _Missing:
    def __format__(self, spec: str) -> str:
        return "?"


def render(template: str, values: Mapping[str, Any]) -> str:
    """Render a checked template; a missing or ``None`` field becomes ``?``."""
    filled: dict[str, Any] = {k: _Missing() for k in FIELDS}
    for key, value in values.items():
        if value is not None:
            filled[key] = value
    try:
        return template.format_map(filled)
    except (ValueError, TypeError):
        # e.g. {value:.1f} with a string value: fall back to plain substitution
        return template.format_map({k: _Plain(v) for k, v in filled.items()})


class _Plain:
    def __init__(self, value: Any) -> None:
        self.value = value

    def __format__(self, spec: str) -> str:
        return str(self.value) if not isinstance(self.value, _Missing) else "?"
