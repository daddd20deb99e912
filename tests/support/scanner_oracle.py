"""The batch splitter's former scanner (a Python loop per structural token), kept as the
reference the vectorised :func:`ioccore.events.batch_split.split_array` is checked against
(``min_restart=0``: the scanner restarted at objects of any size)."""

from __future__ import annotations

import re
from typing import Final

import msgspec

from ioccore.events.batch_split import DECODE_ERRORS
from ioccore.events.budget import CHECK_EVERY, Deadline

_ANY_DECODER = msgspec.json.Decoder()
_TOKEN = re.compile(rb'"(?:[^"\\]++|\\.)*+"|[\[{]++|[\]}]++|[",]', re.S)
_CANDIDATE = re.compile(rb",[ \t\r\n]*\{")
_PLAUSIBLE = re.compile(rb",[ \t\r\n]*\{(?:(?!,[ \t\r\n]*\{)[^}])*+\}")
_SPACE = re.compile(rb"[ \t\r\n]*")
_WS = b" \t\r\n"
_OPEN: Final = frozenset(b"[{")
_CLOSE: Final = frozenset(b"]}")


def reference_split(value: bytes, max_items: int | None = None) -> list[bytes] | None:
    """What the former ``split_array`` returned (its scanner on every body)."""
    lo = len(value) - len(value.lstrip(_WS))
    if lo >= len(value) or value[lo] != 0x5B:
        return None
    hi = len(value.rstrip(_WS))
    if hi - 1 > lo and value[hi - 1] == 0x5D:
        hi -= 1
    lo += 1
    if not value[lo:hi].strip(_WS):
        return []
    limit = None if max_items is None else max_items + 1
    return Splitter(value, lo, hi, limit, None).run()


class Splitter:
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
