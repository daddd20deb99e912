"""Silences: label matchers (``=``, ``!=``, ``=~``, ``!~``) with a time range.

A silence stops notifications for the alerts it matches while it is in effect; the
alerts' states keep moving. Regular expressions are anchored, as in Alertmanager.

Patterns are RE2 (the ``google-re2`` package): matching takes time linear in the label's
length whatever the pattern, so an operator's pattern cannot stall ``persist`` on
sender-controlled labels. Names, values and patterns have length limits. A stored
pattern that no longer compiles (written before RE2) never matches: the alert is
notified rather than silenced by accident.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final, Literal

import re2

MAX_NAME: Final = 64
MAX_VALUE: Final = 1024
"""Longest matcher value or pattern accepted."""
MAX_MATCHERS: Final = 32
"""Most matchers in one silence."""

MatchOp = Literal["=", "!=", "=~", "!~"]
MAX_TEXT: Final = MAX_NAME + MAX_VALUE + 8
"""Longest matcher given as text (name, operator, quoted value, spaces)."""
_OPS: Final = ("=~", "!~", "!=", "=")


@dataclass(frozen=True, slots=True)
class Matcher:
    name: str
    op: MatchOp
    value: str

    def __post_init__(self) -> None:
        """Raises ``ValueError`` for a name, value or pattern that is not allowed."""
        if self.op not in ("=", "!=", "=~", "!~"):
            raise ValueError(f"unknown matcher operator {self.op!r}")
        if not self.name or len(self.name) > MAX_NAME or not _NAME.fullmatch(self.name):
            raise ValueError(f"bad label name {self.name[:MAX_NAME]!r}")
        if len(self.value) > MAX_VALUE:
            raise ValueError(f"a matcher value is at most {MAX_VALUE} characters")
        if self.op in ("=~", "!~"):
            _compile(self.value)

    def matches(self, labels: Mapping[str, str]) -> bool:
        have = labels.get(self.name, "")
        if self.op == "=":
            return have == self.value
        if self.op == "!=":
            return have != self.value
        try:
            pattern = _compile(self.value)
        except ValueError:
            return False  # a stored pattern RE2 refuses: never silence by accident
        found = pattern.fullmatch(have) is not None
        return found if self.op == "=~" else not found

    def to_json(self) -> dict[str, str]:
        return {"name": self.name, "op": self.op, "value": self.value}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Matcher:
        return cls(str(data["name"]), data["op"], str(data["value"]))

    @classmethod
    def stored(cls, data: Mapping[str, Any]) -> Matcher:
        """A matcher read back from the database: never raises (an invalid one becomes
        a matcher that matches nothing, so its silence silences nothing)."""
        try:
            return cls.from_json(data)
        except (ValueError, KeyError, TypeError):
            return _NOTHING

    @classmethod
    def parse(cls, text: str) -> Matcher:
        """``commune_code="00004"``, ``severity!=info``, ``alertname=~"pm25_.*"``.

        Linear in ``text`` and refused above :data:`MAX_TEXT` before any scanning: a
        backtracking regex here was quadratic in hostile input (issue 24, finding 4).
        """
        bad = ValueError(f"not a matcher: {text[:80]!r} (name=value, !=, =~ or !~)")
        if len(text) > MAX_TEXT:
            raise ValueError(f"a matcher is at most {MAX_TEXT} characters")
        rest = text.strip()
        named = _NAME.match(rest)
        if named is None:
            raise bad
        name, rest = named.group(), rest[named.end():].lstrip()
        op = next((o for o in _OPS if rest.startswith(o)), None)
        if op is None:
            raise bad
        value = rest[len(op):].strip()
        value = value.removeprefix('"').removesuffix('"')
        if "\n" in value or "\r" in value:
            raise bad
        return cls(name, op, value)  # type: ignore[arg-type]

    def __str__(self) -> str:
        return f'{self.name}{self.op}"{self.value}"'


_NAME = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*")
_RE2_OPTIONS = re2.Options()
_RE2_OPTIONS.max_mem = 1 << 20  # a pattern's compiled program stays small
_RE2_OPTIONS.log_errors = False


@functools.lru_cache(maxsize=1024)
def _compile(pattern: str) -> Any:
    """The RE2 program of ``pattern`` (cached); ``ValueError`` when RE2 refuses it."""
    if len(pattern) > MAX_VALUE:
        raise ValueError(f"a pattern is at most {MAX_VALUE} characters")
    try:
        return re2.compile(pattern, options=_RE2_OPTIONS)
    except Exception as exc:  # re2.error, and whatever a hostile pattern provokes
        raise ValueError(f"bad regular expression (RE2 syntax): {str(exc)[:200]}") from None


_NOTHING = Matcher("__ioc_invalid_matcher__", "=", "\x00never")


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
