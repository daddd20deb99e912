"""Silences: label matchers (``=``, ``!=``, ``=~``, ``!~``) with a time range.

A silence stops notifications for the alerts it matches while it is in effect; the
alerts' states keep moving. Regular expressions are anchored, as in Alertmanager.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

MatchOp = Literal["=", "!=", "=~", "!~"]
_MATCHER = re.compile(r'^\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*(=~|!~|!=|=)\s*"?(.*?)"?\s*$')


@dataclass(frozen=True, slots=True)
class Matcher:
    name: str
    op: MatchOp
    value: str

    def __post_init__(self) -> None:
        if self.op in ("=~", "!~"):
            re.compile(self.value)  # raises re.error for a bad pattern

    def matches(self, labels: Mapping[str, str]) -> bool:
        have = labels.get(self.name, "")
        if self.op == "=":
            return have == self.value
        if self.op == "!=":
            return have != self.value
        found = re.fullmatch(self.value, have) is not None
        return found if self.op == "=~" else not found

    def to_json(self) -> dict[str, str]:
        return {"name": self.name, "op": self.op, "value": self.value}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Matcher:
        return cls(str(data["name"]), data["op"], str(data["value"]))

    @classmethod
    def parse(cls, text: str) -> Matcher:
        """``commune_code="00004"``, ``severity!=info``, ``alertname=~"pm25_.*"``."""
        match = _MATCHER.match(text)
        if not match:
            raise ValueError(f"not a matcher: {text!r} (name=value, !=, =~ or !~)")
        name, op, value = match.groups()
        try:
            return cls(name, op, value)  # type: ignore[arg-type]
        except re.error as exc:
            raise ValueError(f"bad regular expression in {text!r}: {exc}") from exc

    def __str__(self) -> str:
        return f'{self.name}{self.op}"{self.value}"'


@dataclass(frozen=True, slots=True)
class Silence:
    id: int
    matchers: tuple[Matcher, ...]
    starts_at: datetime
    ends_at: datetime
    created_by: str
    comment: str
    expired_by: str | None = None

    def in_effect(self, at: datetime) -> bool:
        return self.starts_at <= at < self.ends_at

    def matches(self, labels: Mapping[str, str]) -> bool:
        return all(m.matches(labels) for m in self.matchers)


def silenced_by(labels: Mapping[str, str], silences: Iterable[Silence], at: datetime
                ) -> Silence | None:
    """The first silence in effect at ``at`` that matches ``labels``, if any."""
    for s in silences:
        if s.in_effect(at) and s.matches(labels):
            return s
    return None
