"""The ``ioc_*`` metric names the alert rules and the dashboards depend on.

For the behaviour test that scrapes every process after an end-to-end run: a name a
rule or a panel reads must have samples there (a name merely declared in
``ioccore/metrics.py`` proves nothing; such declaration-only tests were removed).
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import yaml

from ioccore.settings import ROOT

_NAME = re.compile(r"\bioc_[a-z0-9_]+")
_SUFFIX = re.compile(r"_(bucket|sum|count|total|created)$")


def ioc_names_in(expr: str) -> set[str]:
    """The ``ioc_*`` sample names a PromQL expression refers to."""
    return set(_NAME.findall(expr))


def family(sample: str) -> str:
    """The metric family of a sample name (``ioc_x_seconds_bucket`` -> ``ioc_x_seconds``)."""
    return _SUFFIX.sub("", sample)


def _panel_exprs(model: dict[str, Any]) -> list[str]:
    return [t["expr"] for p in model.get("panels", []) for t in p.get("targets", [])
            if "expr" in t]


def referenced_names(root: Path = ROOT) -> dict[str, set[str]]:
    """``{sample name: {where it is used}}`` over the Prometheus rules and dashboards."""
    used: dict[str, set[str]] = {}
    for path in sorted((root / "config" / "prometheus" / "rules").glob("*.yml")):
        for group in yaml.safe_load(path.read_text(encoding="utf-8"))["groups"]:
            for rule in group["rules"]:
                where = f"{path.name}:{rule.get('alert') or rule.get('record')}"
                for name in ioc_names_in(str(rule["expr"])):
                    used.setdefault(name, set()).add(where)
    for path in sorted((root / "config" / "grafana" / "dashboards").glob("*.json")):
        for expr in _panel_exprs(json.loads(path.read_text(encoding="utf-8"))):
            for name in ioc_names_in(expr):
                used.setdefault(name, set()).add(path.stem)
    return used
