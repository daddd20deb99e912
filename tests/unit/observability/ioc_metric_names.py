"""The sample names ioc exports (from ioc/core/metrics.py), for checking rules and panels."""

from __future__ import annotations

import re

_SUFFIXES = {"counter": ("_total", "_created"), "gauge": ("",),
             "histogram": ("_bucket", "_sum", "_count", "_created"),
             "summary": ("", "_sum", "_count", "_created")}
_NAME = re.compile(r"\bioc_[a-z0-9_]+")


def exported_names() -> set[str]:
    """Every sample name of every metric registered by ``ioc.core.metrics``."""
    from prometheus_client import REGISTRY

    import ioc.core.metrics  # noqa: F401  (importing registers the metrics)

    names: set[str] = set()
    for family in REGISTRY.collect():
        if family.name.startswith("ioc_"):
            names.update(family.name + s for s in _SUFFIXES.get(family.type, ("",)))
    return names


def ioc_names_in(expr: str) -> set[str]:
    """The ``ioc_*`` metric names a PromQL expression refers to."""
    return set(_NAME.findall(expr))
