"""The batch positions stage 1 gives accepted events: the positions no rejection covers,
in order (the comprehension over ``n + |covered|`` positions against a plain walk)."""

from __future__ import annotations

from dataclasses import dataclass

from hypothesis import given
from hypothesis import strategies as st

from streams.prepare import _record_positions


@dataclass
class _Rejected:
    index: int | None
    count: int = 1
    reason: str = "malformed_json"
    message: str = ""
    raw: bytes = b""


def _walk(n: int, rejections: list[_Rejected]) -> list[int | None]:
    covered = {i for r in rejections if r.index is not None
               for i in range(r.index, r.index + r.count)}
    out: list[int | None] = []
    i = 0
    while len(out) < n:
        if i not in covered:
            out.append(i)
        i += 1
    return out


@given(st.lists(st.tuples(st.booleans(), st.integers(1, 4)), max_size=40),
       st.integers(0, 30))
def test_the_positions_are_the_first_n_no_rejection_covers(
        layout: list[tuple[bool, int]], n: int) -> None:
    """A batch laid out as runs of rejected elements (``count`` each) among accepted
    ones; also rejections without a position (whole-message ones)."""
    rejections: list[_Rejected] = []
    pos = 0
    for rejected, count in layout:
        if rejected:
            rejections.append(_Rejected(pos, count))
        pos += count
    rejections.append(_Rejected(None))
    assert _record_positions(b"[]", n, rejections) == _walk(n, rejections)


def test_junk_between_events_gives_the_odd_positions() -> None:
    rejections = [_Rejected(i) for i in range(0, 10, 2)]
    assert _record_positions(b"[]", 5, rejections) == [1, 3, 5, 7, 9]
