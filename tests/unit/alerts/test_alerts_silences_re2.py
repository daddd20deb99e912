"""Silence matchers are RE2 (issue 15): linear on sender-controlled labels, bounded, and
a stored pattern RE2 refuses never raises where ``persist`` evaluates silences."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from alerts.silences import MAX_VALUE, Matcher, Silence, silenced_by


def test_catastrophic_pattern_is_linear() -> None:
    # with Python's re this takes longer than the age of the universe
    m = Matcher.parse('source_id=~"(a+)+$"')
    assert m.matches({"source_id": "a" * 40}) is True
    assert m.matches({"source_id": "a" * 40 + "!"}) is False
    assert m.matches({"source_id": "a" * 1_000_000 + "!"}) is False


@pytest.mark.parametrize("text", ['x=~"(?=a)"', 'x=~"(?<=a)b"', 'x=~"(a)\\1"',
                                  'x=~"' + "a" * (MAX_VALUE + 1) + '"', "1x=a",
                                  'x="' + "v" * (MAX_VALUE + 1) + '"'])
def test_refused_matchers_raise_value_error(text: str) -> None:
    with pytest.raises(ValueError):
        Matcher.parse(text)


def test_stored_matchers_never_raise() -> None:
    bad = Matcher.stored({"name": "x", "op": "=~", "value": "(?<=a)b"})
    broken = Matcher.stored({"name": "x"})
    now = datetime.now(UTC)
    s = Silence(1, (bad,), now - timedelta(minutes=1), now + timedelta(hours=1), "t", "")
    assert silenced_by({"x": "ab"}, [s], now) is None  # never silences by accident
    assert not broken.matches({"x": "anything"})
