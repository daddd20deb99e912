"""The batch splitter's small-body path: one C regex step per structural byte.

:func:`ioccore.events.batch_split.split_array` builds a structural index in about a
hundred numpy calls: a fixed cost of 0.1-0.3 ms that dominates a 1-4 KiB body (a valid
1 KiB batch validates in about 0.1 ms). Most small bodies hold few structural bytes
(strings, numbers and runs of brackets are skipped whole inside the C regex engine), so
this scanner cuts them in fewer Python steps than the index costs; it gives up after
``budget`` steps (:class:`OverBudget`, no partial result) and the caller builds the
index instead. The wasted work is bounded by the budget, which the caller sets to about
what the index would cost, so no body pays more than twice the index.

It is the former per-token scanner (``tests/support/scanner_oracle.py``, the reference
both paths are checked against) with strings folded into the structural step that
follows them, and ``min_restart`` as in :func:`~ioccore.events.batch_split.split_array`.
"""

from __future__ import annotations

import re
from typing import Final

import msgspec

from ioccore.events.models import EnvelopeV1

_ANY_DECODER = msgspec.json.Decoder()
_EVENT_DECODER = msgspec.json.Decoder(EnvelopeV1)
_DECODE_ERRORS: Final = (msgspec.DecodeError, msgspec.ValidationError, UnicodeDecodeError,
                         RecursionError, OverflowError, ValueError)

_STEP = re.compile(rb'(?:[^"\[\]{},]++|"(?:[^"\\]++|\\.)*+")*+([\[{]++|[\]}]++|[",])?',
                   re.S)
"""Skips whole strings and other bytes, then one structural token (group 1; ``None`` only
at the end of the range): a run of openers, a run of closers, a comma or a quote that
opens a string which never closes."""
_CANDIDATE = re.compile(rb",[ \t\r\n]*\{")
_PLAUSIBLE = re.compile(rb",[ \t\r\n]*\{[^},]*+(?:,(?![ \t\r\n]*\{)[^},]*+)*+\}")
"""A restart point whose object has a ``}`` before the next restart point (the former
scanner's pattern, unrolled: the look-ahead runs at commas only, not at every byte)."""
_SPACE = re.compile(rb"[ \t\r\n]*")
_WS = b" \t\r\n"
_COMMA, _QUOTE = 0x2C, 0x22
_OPEN: Final = frozenset(b"[{")


class OverBudget(Exception):  # noqa: N818 - a signal to the caller, not an error
    """The scanner took more steps than it was allowed."""


def scan_split(value: bytes, lo: int, hi: int, limit: int | None,
               budget: tuple[int, int], min_restart: int,
               events: dict[int, EnvelopeV1] | None = None) -> list[bytes]:
    """The pieces of ``value[lo:hi]`` (the array's inside), as
    :func:`~ioccore.events.batch_split.split_array` cuts them; at most ``limit`` of them.

    ``budget`` = (``base``, ``per``): raises :class:`OverBudget` as soon as it has taken
    more than ``base`` steps plus one per ``per`` bytes it has reached, so a body dense
    in tokens is given up after about ``base`` steps, wherever they are.

    ``events``: filled (only when the cut completes) with the pieces, by index, whose
    parse here was a typed v1 envelope decode (see :func:`_Scan._parses`)."""
    scan = _Scan(value, lo, hi, limit, budget, min_restart, events is not None)
    pieces = scan.run(lo)
    if events is not None:
        events.update(scan.events)
    return pieces


class _Scan:
    __slots__ = ("base", "cands", "event", "events", "hi", "limit", "lo", "min_restart",
                 "next_c", "per", "pieces", "steps", "typed", "value")

    def __init__(self, value: bytes, lo: int, hi: int, limit: int | None,
                 budget: tuple[int, int], min_restart: int, typed: bool = False) -> None:
        self.value = value
        self.typed = typed
        self.event: EnvelopeV1 | None = None  # the last object :meth:`_parses` typed
        self.events: dict[int, EnvelopeV1] = {}
        self.lo = lo
        self.hi = hi
        self.limit = limit
        self.base, self.per = budget
        self.steps = 0
        self.min_restart = min_restart
        self.pieces: list[bytes] = []
        self.cands = _PLAUSIBLE.finditer(value, 0, hi)
        self.next_c = -1

    def _step(self, pos: int) -> None:
        """Count one step taken on reaching ``pos``; past the budget, give up."""
        self.steps += 1
        if self.steps > self.base + (pos - self.lo) // self.per:
            raise OverBudget

    def _candidate(self) -> int:
        """Position of the next plausible restart point's comma (``hi``: none)."""
        m = next(self.cands, None)
        if m is None:
            return self.hi
        at: int = m.start()
        self.steps += 1  # :meth:`_step`, inlined
        if self.steps > self.base + (at - self.lo) // self.per:
            raise OverBudget
        return at

    def _emit(self, start: int, end: int) -> bool:
        """Add a piece; True when the item limit is reached."""
        self.pieces.append(self.value[start:end].strip(_WS))
        return self.limit is not None and len(self.pieces) >= self.limit

    def run(self, lo: int) -> list[bytes]:
        value, hi = self.value, self.hi
        base, per, first = self.base, self.per, self.lo  # :meth:`_step`, inlined below
        self.cands = _PLAUSIBLE.finditer(value, lo, hi)
        self.next_c = self._candidate()
        start = pos = lo  # the current piece's first byte
        depth = 0
        while True:
            while True:  # at a piece's start, at depth 0: whole objects in one C parse
                comma = self._whole(start)
                if comma is None:
                    break
                if self._emit(start, comma) or comma >= hi:
                    return self.pieces
                start = pos = comma + 1
            restart = None
            separated = False
            for m in _STEP.finditer(value, pos, hi):
                e = m.end()
                self.steps += 1
                if self.steps > base + (e - first) // per:
                    raise OverBudget
                s = m.start(1)
                if s < 0:  # the end of the range (restart points in its last strings)
                    if self.next_c < e:
                        restart = self._restarts(e, e, False, start)
                    break
                if self.next_c < e:  # restart points up to this token (or it is one)
                    restart = self._restarts(s, e, depth == 0 and e - s == 1, start)
                    if restart is not None:
                        break
                c = value[s]
                if c == _COMMA:
                    if depth == 0:
                        if self._emit(start, s):
                            return self.pieces
                        start = pos = s + 1
                        separated = True
                        break
                elif c == _QUOTE:  # a string that never closes: the rest is in it
                    restart = self._restarts(s, hi, False, start)
                    if restart is None:
                        self._emit(start, hi)
                        return self.pieces
                    break
                elif c in _OPEN:
                    depth += e - s
                else:
                    depth = max(0, depth - (e - s))
            if separated:
                continue
            if restart is None:
                self._emit(start, hi)
                return self.pieces
            if restart < 0:  # the limit or the end was reached
                return self.pieces
            start = pos = restart
            depth = 0

    def _whole(self, start: int) -> int | None:
        """The comma (or ``hi``) that ends the piece starting at ``start`` (depth 0,
        outside strings) when that piece is an object which parses and runs up to the
        next restart point (``,{``) or the end; else None. The steps would find the
        same cut: a JSON object's brackets and strings balance, so they end at depth 0
        outside strings right before that comma, a separator, and no restart point lies
        inside (the window ends at the first). The windows of successive calls are
        disjoint (each ends at a ``,{``, where the next piece starts at the earliest),
        so the parses are linear in all."""
        value, hi = self.value, self.hi
        space = _SPACE.match(value, start, hi)
        p = space.end() if space is not None else start
        if p >= hi or value[p] != 0x7B:  # '{'
            return None
        window = _CANDIDATE.search(value, p, hi)
        until = hi if window is None else window.start()
        last = until - 1
        while last > p and value[last] in _WS:
            last -= 1
        if value[last] != 0x7D:  # '}': no object (junk between events), nothing to parse
            return None
        self._step(until)
        if not self._parses(value[p:until]):
            return None
        if self.event is not None:
            self.events[len(self.pieces)] = self.event  # the piece emitted next
        while self.next_c <= until and self.next_c < hi:  # the comma separates anyway
            self.next_c = self._candidate()
        return until

    def _restarts(self, s: int, e: int, separator: bool, start: int) -> int | None:
        """Try the restart points whose comma lies before ``e``; on the first that
        holds, emit the pieces it makes and return where splitting goes on afresh (-1:
        the limit or the end was reached). ``separator``: the token at ``s`` is a comma
        at depth 0, which separates anyway (not a restart point)."""
        value, hi = self.value, self.hi
        while self.next_c < e:
            c = self.next_c
            self.next_c = self._candidate()
            if separator and c == s:
                continue
            o = value.index(b"{", c)
            window = _CANDIDATE.search(value, o, hi)  # up to the next restart point
            until = hi if window is None else window.start()
            if until - o < max(self.min_restart, 2):
                continue
            hit = self._object_at(o, until)
            if hit is None:
                continue
            close, after = hit
            pieces, limit = self.pieces, self.limit  # :meth:`_emit` twice, inlined
            pieces.append(value[start:c].strip(_WS))
            if limit is not None and len(pieces) >= limit:
                return -1
            if self.event is not None:
                self.events[len(pieces)] = self.event
            pieces.append(value[o:close + 1])  # from a brace to its brace: no blanks
            if limit is not None and len(pieces) >= limit:
                return -1
            while self.next_c <= after and self.next_c < hi:
                self.next_c = self._candidate()
            return after + 1 if after < hi else -1
        return None

    def _object_at(self, o: int, until: int) -> tuple[int, int] | None:
        """(closing brace, following comma or ``hi``) of an object that starts at ``o``,
        closes before ``until``, spans ``min_restart`` bytes, is followed by a comma or
        the end and parses; else None. Reads only ``value[o:until]``."""
        value, hi = self.value, self.hi
        window = value[o:until]
        if len(window) >= self.min_restart and self._parses(window):
            # the window is the object and blanks: its last brace closes it, as the
            # steps below would find (a JSON text's brackets and strings balance), and
            # ``until`` is a comma or ``hi``. One C parse, the one a restart needs anyway
            close = o + len(window.rstrip(_WS)) - 1
            return (close, until) if close - o + 1 >= self.min_restart else None
        depth = 0
        for m in _STEP.finditer(value, o, until):
            self._step(m.end())
            s = m.start(1)
            if s < 0:
                return None
            e = m.end()
            c = value[s]
            if c in _OPEN:
                depth += e - s
            elif c == _QUOTE:  # a string that does not close before ``until``
                return None
            elif c != _COMMA:
                if depth > e - s:
                    depth -= e - s
                    continue
                close = s + depth - 1  # the byte that closes the object
                if close - o + 1 < self.min_restart:
                    return None
                space = _SPACE.match(value, close + 1, hi)
                nxt = space.end() if space is not None else close + 1
                if nxt < hi and value[nxt] != _COMMA:
                    return None
                return (close, nxt) if self._parses(value[o:close + 1]) else None
        return None

    def _parses(self, piece: bytes) -> bool:
        """:func:`_parses_as_object`, trying first (when the caller wants the events)
        a typed v1 envelope decode, kept in ``event`` for the validator: a batch's
        events found again after a malformed element are parsed once, not here and
        there. Every v1 struct forbids unknown fields, so a text that decodes typed
        has had every value read and parses generically too: the cut is the same."""
        self.event = None
        if self.typed and len(piece) >= self.min_restart:
            try:
                self.event = _EVENT_DECODER.decode(piece)
            except _DECODE_ERRORS:
                pass
            else:
                return True
        return _parses_as_object(piece)


def _parses_as_object(piece: bytes) -> bool:
    """Whether ``piece`` is one JSON object (and blanks). A text whose last solid byte
    is no ``}`` cannot be one: it is refused without the parse, which for a deep
    unclosed body (``{"a":{"a":...``) would build every level before failing."""
    if piece.rstrip(_WS)[-1:] != b"}":
        return False
    try:
        return isinstance(_ANY_DECODER.decode(piece), dict)
    except _DECODE_ERRORS:
        return False
