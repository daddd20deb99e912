"""The nesting bound is the same on every Python (3.11's recursion limit used to be it)."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

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


def _oracle(raw: bytes) -> bool:
    """The depth of every byte, one running sum over all of them (the former check)."""
    depth = 0
    inside = escaped = False
    for c in raw:
        was, escaped = escaped, False
        if inside:
            if was:
                continue
            if c == 0x5C:
                escaped = True
            elif c == 0x22:
                inside = False
        elif c == 0x5C:  # outside a string, an odd backslash run escapes a quote too
            escaped = not was
        elif c == 0x22:
            inside = not was
        elif c in b"[{":
            depth += 1
            if depth > MAX_JSON_DEPTH:
                return True
        elif c in b"]}":
            depth = max(0, depth - 1)
    return False


PIECE = st.sampled_from([b"[", b"{", b"]", b"}", b'"', b"\\", b'\\"', b",", b"a", b" ",
                         b"[" * 100, b"]" * 100, b'{"a":' * 50, b'"' + b"[" * 80 + b'"'])


@settings(max_examples=300, deadline=None)
@given(st.lists(PIECE, max_size=200), st.integers(0, MAX_JSON_DEPTH + 50))
def test_the_vectorised_depth_is_the_byte_walk_s(parts: list[bytes], lead: int) -> None:
    """Brackets alone, the prefix first and the bound before the running minimum: the
    same verdict as a walk over every byte, at and around the limit."""
    raw = b"[" * lead + b"".join(parts)
    assert _deeper_than_allowed(raw) == _oracle(raw), raw
