"""Grafana's SQL macros and template variables, expanded the way Grafana 11's
PostgreSQL datasource (``timescaledb: true``) expands them, for a fixed time range.

Order as in Grafana: template variables (and ``$__interval``) first, then macros.
Covered: ``$__timeFilter(col)``, ``$__timeFrom()``, ``$__timeTo()``,
``$__timeGroup(col, interval[, fill])``, ``$__timeGroupAlias(...)``,
``$__unixEpochFilter(col)``, ``$__interval``, ``$__interval_ms``, ``$__rate_interval``
and ``$var`` / ``${var}`` variables: a single value is inserted as is, a multi-value or
include-all variable as a comma-separated list of quoted literals (Grafana's SQL
interpolation). Anything left that starts with ``$__`` is an error, so a macro this
expander does not know fails the test instead of reaching the database.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

_UNITS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
_DURATION = re.compile(r"^(\d+(?:\.\d+)?)(ms|s|m|h|d|w)$")


class ExpandError(ValueError):
    """A query uses a macro or variable the expander cannot resolve."""


def seconds(interval: str) -> float:
    """``'5m'`` -> 300.0 (Grafana interval syntax)."""
    match = _DURATION.match(interval.strip().strip("'\""))
    if not match:
        raise ExpandError(f"not an interval: {interval!r}")
    return float(match.group(1)) * _UNITS[match.group(2)]


def quote(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def _iso(t: datetime) -> str:
    return t.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _args(text: str) -> list[str]:
    """Split macro arguments on top-level commas."""
    out, depth, cur = [], 0, ""
    for ch in text:
        if ch == "," and depth == 0:
            out.append(cur.strip())
            cur = ""
            continue
        depth += ch == "("
        depth -= ch == ")"
        cur += ch
    out.append(cur.strip())
    return out


@dataclass(frozen=True)
class Expander:
    start: datetime
    end: datetime
    interval: str = "1m"
    variables: Mapping[str, str | Sequence[str]] = field(default_factory=dict)
    multi: frozenset[str] = frozenset()

    def variable(self, name: str) -> str:
        if name == "__interval":
            return self.interval
        if name == "__interval_ms":
            return str(int(seconds(self.interval) * 1000))
        if name == "__rate_interval":
            return f"{int(max(4 * 15, seconds(self.interval) + 15))}s"
        if name not in self.variables:
            raise ExpandError(f"no value for ${name}")
        value = self.variables[name]
        values = [value] if isinstance(value, str) else list(value)
        if name in self.multi:
            return ",".join(quote(v) for v in values)
        if len(values) != 1:
            raise ExpandError(f"${name} is single-valued")
        return values[0]

    def _vars(self, text: str) -> str:
        def sub(match: re.Match[str]) -> str:
            name = match.group(1) or match.group(2)
            if name.startswith("__") and name not in (
                    "__interval", "__interval_ms", "__rate_interval"):
                return match.group(0)           # a macro: expanded later
            return self.variable(name)
        return re.sub(r"\$\{(\w+)\}|\$(\w+)", sub, text)

    def _macro(self, name: str, args: list[str]) -> str:
        frm, to = quote(_iso(self.start)), quote(_iso(self.end))
        if name == "__timeFilter":
            return f"{args[0]} BETWEEN {frm} AND {to}"
        if name == "__timeFrom":
            return frm
        if name == "__timeTo":
            return to
        if name == "__unixEpochFilter":
            return (f"{args[0]} >= {int(self.start.timestamp())} AND "
                    f"{args[0]} <= {int(self.end.timestamp())}")
        if name in ("__timeGroup", "__timeGroupAlias"):
            if len(args) < 2:
                raise ExpandError(f"${name} needs a column and an interval")
            group = f"time_bucket('{int(seconds(args[1]))}s',{args[0]})"
            return group + (' AS "time"' if name == "__timeGroupAlias" else "")
        raise ExpandError(f"unknown macro ${name}")

    def expand(self, query: str) -> str:
        text = self._vars(query)
        pattern = re.compile(r"\$(__\w+)\(")
        while (match := pattern.search(text)) is not None:
            depth, i = 1, match.end()
            while depth and i < len(text):
                depth += {"(": 1, ")": -1}.get(text[i], 0)
                i += 1
            if depth:
                raise ExpandError(f"unbalanced ${match.group(1)}(")
            inner = text[match.end():i - 1]
            args = _args(inner) if inner.strip() else []
            text = text[:match.start()] + self._macro(match.group(1), args) + text[i:]
        if "$" in re.sub(r"'[^']*'", "", text):
            raise ExpandError(f"unexpanded $ left in: {text}")
        return text
