"""The nesting bound is the same on every Python (3.11's recursion limit used to be it)."""

from __future__ import annotations

from ioccore.events.diagnose import MAX_JSON_DEPTH, _deeper_than_allowed


def nested(depth: int) -> bytes:
    return b"[" * depth + b"]" * depth


def test_the_bound_is_exact() -> None:
    assert not _deeper_than_allowed(nested(MAX_JSON_DEPTH))
    assert _deeper_than_allowed(nested(MAX_JSON_DEPTH + 1))
    n = MAX_JSON_DEPTH + 1
    assert _deeper_than_allowed(b'{"a":' * n + b"1" + b"}" * n)


def test_brackets_in_strings_do_not_count() -> None:
    text = b'"' + b"[" * 2000 + b'"'
    assert not _deeper_than_allowed(b'{"a": ' + text + b"}")
    escaped = b'"\\"' + b"[" * 2000 + b'\\\\"'  # an escaped quote, then an escaped backslash
    assert not _deeper_than_allowed(b"[" + escaped + b"]")
    assert _deeper_than_allowed(b'["\\\\"' + nested(MAX_JSON_DEPTH))  # the string ended


def test_sequences_are_not_depth() -> None:
    assert not _deeper_than_allowed(b"[" + b",".join([b"[]"] * 5000) + b"]")
