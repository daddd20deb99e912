"""Cutting a JSON batch (an array of events) into its elements' bytes.

Used by the validator (a batch that does not parse as a whole still gets one verdict per
element), by the HTTP gateway (one verdict per event of a request) and wherever an
element's original bytes are wanted back for a dead letter (:func:`elements`, indexed by
the batch position the validator reported).
"""

from __future__ import annotations

import re
from typing import Final

import msgspec
import numpy as np

from ioccore.events.budget import CHECK_EVERY, Deadline

DECODE_ERRORS: Final = (msgspec.DecodeError, msgspec.ValidationError, UnicodeDecodeError,
                        RecursionError, OverflowError, ValueError)
"""What decoding untrusted bytes may raise."""

_ANY_DECODER = msgspec.json.Decoder()
_RAW_LIST_DECODER = msgspec.json.Decoder(list[msgspec.Raw])


def elements(value: bytes, max_items: int | None = None) -> list[bytes] | None:
    """The elements of a batch value, indexed as the validator indexes them (``None``:
    not an array). A batch that parses is cut by the C decoder, else by
    :func:`split_array`."""
    if value.lstrip()[:1] != b"[":
        return None
    try:
        return [bytes(r) for r in _RAW_LIST_DECODER.decode(value)]
    except DECODE_ERRORS:
        return split_array(value, max_items=max_items)


_WS = b" \t\r\n"
_TOKEN = re.compile(rb'"(?:[^"\\]++|\\.)*+"|[\[{]++|[\]}]++|[",]', re.S)
"""A whole string (matched in C, possessively: no backtracking), a run of opening or of
closing brackets (one step however deep the nesting), a lone ``"`` (a string that never
closes) or a comma."""
_CANDIDATE = re.compile(rb",[ \t\r\n]*\{")
_PLAUSIBLE = re.compile(rb",[ \t\r\n]*\{(?:(?!,[ \t\r\n]*\{)[^}])*+\}")
"""A restart point with a ``}`` before the next restart point (else its object cannot
close in its window): found in C, so the hopeless ones cost no Python step. A failed
attempt reads only up to the next restart point, so the search stays linear."""
_SPACE = re.compile(rb"[ \t\r\n]*")

BRACKET_STEP = np.zeros(256, dtype=np.int8)
BRACKET_STEP[list(b"[{")] = 1
BRACKET_STEP[list(b"]}")] = -1
_OPEN: Final = frozenset(b"[{")
_CLOSE: Final = frozenset(b"]}")


def split_array(value: bytes, max_items: int | None = None,
                deadline: Deadline | None = None) -> list[bytes] | None:
    """Split a JSON array that does not parse as a whole into its elements' bytes.

    Returns ``None`` if ``value`` is not an array at all. The pieces (stripped of
    surrounding whitespace) partition the bytes between the opening ``[`` and the final
    ``]`` (absent when the array is unterminated): each byte there is in exactly one
    piece or is a separating comma, so no element can be lost. A comma separates only
    at nesting depth 0 outside strings; a stray ``}`` or ``]`` at depth 0 stays inside
    its piece (which then fails on its own).

    **Resynchronisation.** Inside an element that has not closed (an unclosed bracket or
    string would swallow everything after it), every restart point ``,{`` is tried: if
    the object starting there closes before the next restart point, is followed by a
    comma (or the end) and parses, the element is cut there, the object becomes a piece
    and splitting starts afresh after it. So a malformed run becomes one piece and the
    valid elements after it are found again. (An object that holds a ``,{`` of its own,
    never a v1 event, is not a restart: it stays in the malformed piece.)

    **Linear time by construction.** One pass over the bytes (strings are one token,
    matched in C); each restart point's own look-ahead stops at the next restart point,
    so those look-aheads cover disjoint stretches, and each stretch is parsed at most
    once. No byte is read more than three times whatever the input (issue 24:
    ``benchmarks/bench_hostile.py`` measures it). With ``max_items``, splitting stops
    after ``max_items + 1`` pieces (the caller rejects the message as too large a batch).
    ``deadline``: checked every :data:`~ioccore.events.budget.CHECK_EVERY` steps.
    """
    lo = len(value) - len(value.lstrip(_WS))
    if lo >= len(value) or value[lo] != 0x5B:  # '['
        return None
    hi = len(value.rstrip(_WS))
    if hi - 1 > lo and value[hi - 1] == 0x5D:  # ']' closes the array
        hi -= 1
    lo += 1
    if not value[lo:hi].strip(_WS):
        return []
    limit = None if max_items is None else max_items + 1
    if value.find(b"\\", lo, hi) < 0 and _CANDIDATE.search(value, lo, hi) is None:
        return _top_level(value, lo, hi, limit)
    return _Splitter(value, lo, hi, limit, deadline).run()


def _top_level(value: bytes, lo: int, hi: int, limit: int | None) -> list[bytes]:
    """The same cut as :class:`_Splitter` for a body without backslashes and without
    restart points, in a few vectorised passes (no Python step per byte: deep nesting
    and stray brackets cost what a valid batch costs). Without backslashes every quote
    opens or closes a string, so a byte is inside a string when an odd number of quotes
    precede it; the depth never below 0 is the running sum minus its running minimum."""
    b = np.frombuffer(value, dtype=np.uint8, count=hi - lo, offset=lo)
    quotes = np.cumsum(b == 0x22, dtype=np.int64)
    outside = (quotes & 1) == 0
    step = BRACKET_STEP[b] * outside
    depth = np.cumsum(step, dtype=np.int64)
    depth -= np.minimum(np.minimum.accumulate(depth), 0)
    cuts = np.flatnonzero((b == 0x2C) & outside & (depth == 0))
    if limit is not None and len(cuts) >= limit:
        cuts = cuts[:limit]
    pieces: list[bytes] = []
    start = lo
    for cut in cuts.tolist():
        pieces.append(value[start:lo + cut].strip(_WS))
        start = lo + cut + 1
    if limit is None or len(pieces) < limit:
        pieces.append(value[start:hi].strip(_WS))
    return pieces


class _Splitter:
    """One split of ``value[lo:hi]`` (the array's inside); see :func:`split_array`."""

    __slots__ = ("cands", "deadline", "hi", "limit", "lo", "next_c", "pieces", "steps",
                 "value")

    def __init__(self, value: bytes, lo: int, hi: int, limit: int | None,
                 deadline: Deadline | None) -> None:
        self.value = value
        self.lo = lo
        self.hi = hi
        self.limit = limit
        self.deadline = deadline
        self.pieces: list[bytes] = []
        self.steps = 0
        self.cands = _PLAUSIBLE.finditer(value, lo, hi)
        self.next_c = self._candidate()

    def _candidate(self) -> int:
        """Position of the next plausible restart point's comma (``hi``: none)."""
        m = next(self.cands, None)
        return self.hi if m is None else m.start()

    def _tick(self) -> None:
        self.steps += 1
        if not self.steps % CHECK_EVERY and self.deadline is not None:
            self.deadline.check()

    def _emit(self, start: int, end: int) -> bool:
        """Add a piece; True when the item limit is reached."""
        self.pieces.append(self.value[start:end].strip(_WS))
        return self.limit is not None and len(self.pieces) >= self.limit

    def run(self) -> list[bytes]:
        value, hi = self.value, self.hi
        start = self.lo  # the current piece's first byte
        depth = 0
        pos = start
        while True:
            restart = None
            for m in _TOKEN.finditer(value, pos, hi):
                self._tick()
                s, e = m.span()
                if self.next_c < e:  # restart points inside this token (or it is one)
                    restart = self._restarts(s, e, depth == 0 and e - s == 1, start)
                    if restart is not None:
                        break
                c = value[s]
                if c == 0x2C:  # ','
                    if depth == 0:
                        if self._emit(start, s):
                            return self.pieces
                        start = s + 1
                elif c in _OPEN:
                    depth += e - s
                elif c in _CLOSE:
                    depth = max(0, depth - (e - s))
                elif e - s > 1:  # a whole string
                    continue
                else:  # a lone '"': the rest is a string that never closes
                    restart = self._restarts(s, hi, False, start)
                    if restart is None:
                        self._emit(start, hi)
                        return self.pieces
                    break
            if restart is None:
                self._emit(start, hi)
                return self.pieces
            if restart < 0:  # the limit or the end was reached
                return self.pieces
            start = pos = restart
            depth = 0

    def _restarts(self, s: int, e: int, separator: bool, start: int) -> int | None:
        """Try the restart points whose comma lies in ``[s, e)`` (a token of the current
        piece); on the first that holds, emit the pieces it makes and return where
        splitting goes on afresh (-1: the limit or the end was reached). ``separator``: the token is
        a comma at depth 0, which separates anyway (not a restart point)."""
        while self.next_c < e:
            c = self.next_c
            self.next_c = self._candidate()
            if separator and c == s:
                continue
            o = self.value.index(b"{", c)
            window = _CANDIDATE.search(self.value, o, self.hi)  # up to the next restart
            hit = self._object_at(o, self.hi if window is None else window.start())
            if hit is None:
                continue
            close, after = hit
            if self._emit(start, c) or self._emit(o, close + 1):
                return -1
            while self.next_c <= after and self.next_c < self.hi:
                self.next_c = self._candidate()
            return after + 1 if after < self.hi else -1
        return None

    def _object_at(self, o: int, until: int) -> tuple[int, int] | None:
        """(closing brace, following comma or ``hi``) of an object that starts at ``o``,
        closes before ``until``, is followed by a comma or the end and parses; else
        None. Reads only ``value[o:until]``."""
        value = self.value
        depth = 0
        for m in _TOKEN.finditer(value, o, until):
            self._tick()
            s, e = m.span()
            c = value[s]
            if c in _OPEN:
                depth += e - s
            elif c in _CLOSE:
                if depth > e - s:
                    depth -= e - s
                    continue
                close = s + depth - 1  # the byte that closes the object
                after = _SPACE.match(value, close + 1, self.hi)
                nxt = after.end() if after is not None else close + 1
                if nxt < self.hi and value[nxt] != 0x2C:
                    return None
                return (close, nxt) if _parses_as_object(value[o:close + 1]) else None
            elif c == 0x22 and e - s == 1:  # a string that does not close before ``until``
                return None
        return None


def _parses_as_object(piece: bytes) -> bool:
    try:
        return isinstance(_ANY_DECODER.decode(piece), dict)
    except DECODE_ERRORS:
        return False
