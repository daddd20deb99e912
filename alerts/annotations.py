"""Annotations of an alert: its rule's templates rendered with the scope's names and value.

Names come from :class:`alerts.model.CommuneInfo` (the database's boundaries, else the
bundled reference): ``{commune}``/``{province}`` in Vietnamese, ``{commune_en}`` and
``{province_en}`` without diacritics where the reference has them, for every rule kind.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from alerts.durations import format_duration
from alerts.model import CommuneInfo, Reading
from alerts.rules import AbsenceRule, ComparedRule, Rule, RuleBase, ThresholdRule
from alerts.templates import render


def number(value: float) -> float | int:
    """``80.0`` renders as ``80`` in annotations; ``55.5`` stays."""
    return int(value) if float(value).is_integer() else value


def province_names(communes: Mapping[str, CommuneInfo], province: str | None
                   ) -> tuple[str | None, str | None]:
    """A province's name and English name (the code when no commune of it is known)."""
    if province is None:
        return None, None
    info = next((c for c in communes.values() if c.province_code == province), None)
    if info is None:
        return province, province
    return info.province_name, info.province_name_en or info.province_name


def render_all(rule: RuleBase, values: Mapping[str, Any]) -> dict[str, str]:
    """Every annotation of ``rule`` in both languages (``summary_vi``, ``summary_en``)."""
    out: dict[str, str] = {}
    for ann in rule.annotations:
        out[f"{ann.name}_vi"] = render(ann.vi, values)
        out[f"{ann.name}_en"] = render(ann.en, values)
    return out


def annotate(rule: Rule, reading: Reading, communes: Mapping[str, CommuneInfo]
             ) -> dict[str, str]:
    """The annotations of a windowed or absence rule's alert for ``reading``."""
    if not rule.annotations:
        return {}
    scope = reading.scope
    commune = scope.get("commune_code")
    info = communes.get(commune) if commune else None
    province = scope.get("province_code") or (info.province_code if info else None)
    pname: str | None
    pname_en: str | None
    if info is not None:
        pname, pname_en = info.province_name, info.province_name_en or info.province_name
    else:
        pname, pname_en = province_names(communes, province)
    values: dict[str, Any] = {
        "commune": info.name if info else commune,
        "commune_en": (info.name_en or info.name) if info else commune,
        "commune_code": commune,
        "province": pname,
        "province_en": pname_en,
        "province_code": province,
        "source_id": scope.get("source_id"),
        "feed": scope.get("feed") or getattr(rule, "feed", None),
        "department": scope.get("department"),
        "value": reading.value,
        "severity": rule.severity,
        "rule": rule.id,
    }
    if isinstance(rule, ThresholdRule):
        values["metric"] = rule.metric
    if isinstance(rule, ComparedRule):
        values["window"] = format_duration(rule.window)
        if reading.limits:
            values["threshold"] = number(reading.limits.threshold)
            values["clear"] = number(reading.limits.clear)
    elif isinstance(rule, AbsenceRule):
        values["window"] = format_duration(rule.silent_for)
        values["threshold"] = number(rule.silent_for.total_seconds() / 60)
    return render_all(rule, values)
