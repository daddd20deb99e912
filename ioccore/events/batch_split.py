"""Cutting a JSON batch (an array of events) into its elements' bytes.

Used by the validator (a batch that does not parse as a whole still gets one verdict per
element), by the HTTP gateway (one verdict per event of a request) and wherever an
element's original bytes are wanted back for a dead letter (:func:`elements`, indexed by
the batch position the validator reported).
"""

from __future__ import annotations

from typing import Final, cast

import msgspec
import numpy as np

from ioccore.events.batch_scan import OverBudget, scan_split
from ioccore.events.budget import Deadline, check
from ioccore.events.models import EnvelopeV1

DECODE_ERRORS: Final = (msgspec.DecodeError, msgspec.ValidationError, UnicodeDecodeError,
                        RecursionError, OverflowError, ValueError)
"""What decoding untrusted bytes may raise."""

_ANY_DECODER = msgspec.json.Decoder()
_RAW_LIST_DECODER = msgspec.json.Decoder(list[msgspec.Raw])
_OBJECTS_DECODER = msgspec.json.Decoder(list[dict[str, object]])
_EVENTS_DECODER = msgspec.json.Decoder(list[EnvelopeV1])
_EVENT_DECODER = msgspec.json.Decoder(EnvelopeV1)


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
_ANY_WS = np.zeros(256, dtype=bool)
_ANY_WS[list(_WS)] = True
_STRUCTURAL = np.zeros(256, dtype=bool)
_STRUCTURAL[list(b"[]{},")] = True

_NO_RESTART = np.zeros((0, 4), dtype=np.int64)

BRACKET_STEP = np.zeros(256, dtype=np.int8)
BRACKET_STEP[list(b"[{")] = 1
BRACKET_STEP[list(b"]}")] = -1

SCAN_BELOW: Final = 8_192
"""Bodies shorter than this are first cut by the scanner of
:mod:`ioccore.events.batch_scan` (the index's fixed cost dominates them; from 16 KiB
on, the index is as fast as the scanner on every shape of benchmarks/bench_hostile)."""

SCAN_STEPS: Final = (6, 32)
"""The scanner's step budget: 6 steps plus one per 32 bytes it has reached (a step is
one structural token or one whole object, 0.3-0.6 us; the index costs about 50 us +
15 ns a byte). A body denser in tokens is handed to the index after a few steps (a
token-dense body gives up within its first 30 bytes: 5-8 us wasted; with 12 it was
15-20 us); a batch of whole events takes two steps per event (about 250 bytes), a
malformed element and the event after it about five."""

DENSE: Final = (256, 40)
"""A body with more than 40 commas and colons in its first 256 bytes goes to the index
at once: the scanner, whose budget is 14 steps there, would give up after a few steps
anyway (the issue's payload, ``}]{[,``, ``{"a":{"a":...``: 10-15 us wasted at 1 KiB). A
batch of events holds about 25 in 256 bytes. Two counts in C whatever the body, and
only a cost: both paths cut alike."""

MIN_RESTART: Final = 64
"""Bytes a restart object must span: a shorter object cannot be an event (the smallest
valid one is about 190 bytes), so cutting it out of a malformed run would save nothing
valid; the bound also caps restarts at one per 64 bytes (each costs a few Python steps)."""


def real_quotes(b: np.ndarray) -> np.ndarray:
    """Per byte of a JSON text, whether it is a quote that is not escaped: a quote after
    an odd run of backslashes is escaped (simdjson's rule; a backslash outside a string
    is not JSON anyway)."""
    quote: np.ndarray = b == 0x22
    backslash = b == 0x5C
    if backslash.any():
        pos = np.arange(len(b), dtype=np.int32)
        run = pos - np.maximum.accumulate(np.where(backslash, np.int32(-1), pos))
        quote[1:] &= (run[:-1] & 1) == 0  # a quote after an odd backslash run is escaped
    return quote


def string_mask(b: np.ndarray) -> np.ndarray:
    """Per byte of a JSON text, whether an odd number of real quotes precede it or it is
    one (for a byte that is no quote: inside a string), in vectorised passes: a quote
    after an odd run of backslashes is escaped (simdjson's rule; a backslash outside a
    string is not JSON anyway)."""
    mask: np.ndarray = (np.cumsum(real_quotes(b), dtype=np.int32) & 1).astype(bool)
    return mask


def split_array(value: bytes, max_items: int | None = None,
                deadline: Deadline | None = None, *,
                min_restart: int = MIN_RESTART, scan_below: int = SCAN_BELOW,
                events: dict[int, EnvelopeV1] | None = None) -> list[bytes] | None:
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
    comma (or the end), spans at least ``min_restart`` bytes and parses, the element is
    cut there, the object becomes a piece and splitting starts afresh after it. So a
    malformed run becomes one piece and the valid elements after it are found again.
    (An object that holds a ``,{`` of its own, never a v1 event, is not a restart.)

    **Linear time by construction** (issue 24): a structural index of the whole body is
    built in a fixed number of vectorised passes (numpy), the way simdjson does it:
    backslash-run parity marks escaped quotes, a prefix sum of the other quotes gives
    the in-string mask, prefix sums of the brackets outside strings give the depth. A
    fresh start after a restart only flips the string phase, so both phases are indexed
    once. Every restart point is tried at once, each reading only its own window (up
    to the next restart point). What is left in Python is one step per restart (at
    least ``min_restart`` bytes each; none when every candidate is taken, as with
    malformed elements between valid events) and one slice per piece. One deviation from a
    byte-by-byte JSON scanner: a backslash outside a string also escapes a following
    quote (such bytes are not JSON; only their piece's cut can differ, never a valid
    element's). With ``max_items``, only the first ``max_items + 1`` pieces are returned
    (the caller rejects the message as too large a batch). ``deadline``: checked between
    the passes.

    **Small bodies** (under ``scan_below`` bytes) are first cut by a scanner with a step
    budget (:mod:`ioccore.events.batch_scan`), the same cut in one C regex step per
    structural token; past its budget the index is built instead.

    ``events``: when given, filled with ``{piece index: envelope}`` for the restart
    objects (and, below ``scan_below``, the whole objects) whose parse here was a typed
    v1 envelope decode, so the validator need not decode them again (the events found
    again after malformed elements). A text that decodes as a v1 envelope also parses
    generically (every v1 struct forbids unknown fields, so every value was read), so
    the cut does not depend on it; an object that does not decode so is parsed
    generically as before.
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
    if hi - lo < scan_below and (value.count(b",", lo, lo + DENSE[0])
                                 + value.count(b":", lo, lo + DENSE[0])) <= DENSE[1]:
        try:
            return scan_split(value, lo, hi, limit, SCAN_STEPS, min_restart, events)
        except OverBudget:
            check(deadline)
    return _Split(value, lo, hi, deadline).pieces(limit, min_restart, events)


class _Split:
    """The structural index of ``value[lo:hi]`` (the array's inside) and its cut.

    Positions are relative to ``lo``. Only the structural bytes (brackets and commas)
    are kept after the first passes: ``at`` holds their positions, ``kind`` their bytes,
    ``phase_p`` per phase (0: the body starts outside a string, 1: inside) the running
    sum of the brackets outside strings up to each of them."""

    __slots__ = ("_p1", "at", "b", "deadline", "inside", "kind", "lo", "n", "p0", "quotes",
                 "restart_events", "step", "typed", "value")

    def __init__(self, value: bytes, lo: int, hi: int, deadline: Deadline | None) -> None:
        self.value = value
        self.lo = lo
        self.n = n = hi - lo
        self.deadline = deadline
        b = self.b = np.frombuffer(value, dtype=np.uint8, count=n, offset=lo)
        # the real quotes' positions: whether a byte is in a string (phase 0) is the
        # parity of the quotes up to it, looked up where needed (structural bytes,
        # restart points), never a running sum over every byte
        self.quotes = real_quotes(b).nonzero()[0]
        check(deadline)
        at = self.at = np.take(_STRUCTURAL, b).nonzero()[0]
        kind = self.kind = np.take(b, at)
        inside = self.inside = self.par(at)
        step = self.step = np.take(BRACKET_STEP, kind)
        self.p0 = np.where(inside, np.int8(0), step).cumsum(dtype=np.int32)
        self._p1: np.ndarray | None = None  # phase 1: only when a restart needs it
        self.typed = False  # whether to try a typed decode of the restart objects
        self.restart_events: list[EnvelopeV1 | None] | None = None  # per restart taken
        check(deadline)

    def par(self, pos: np.ndarray) -> np.ndarray:
        """Per position, whether it is inside a string or an opening quote in phase 0
        (an odd number of real quotes up to it, itself included)."""
        odd: np.ndarray = (self.quotes.searchsorted(pos, side="right") & 1).astype(bool)
        return odd

    @property
    def phase_p(self) -> tuple[np.ndarray, np.ndarray]:
        """Per phase, the running sum of the brackets outside strings (phase 1's: built
        on first use; most bodies are cut in phase 0 alone)."""
        if self._p1 is None:
            self._p1 = self.step.cumsum(dtype=np.int32) - self.p0
        return self.p0, self._p1

    def _next_solid(self, pos: np.ndarray) -> np.ndarray:
        """The first byte at or after each position that is not whitespace (``n``:
        none): a few steps for the usual single space, one pass over the body else."""
        b, n = self.b, self.n
        pos = pos.copy()
        for _ in range(4):
            more = pos < n
            more[more] = np.take(_ANY_WS, b[pos[more]])
            if not more.any():
                return pos
            pos[more] += 1
        blank = np.append(np.take(_ANY_WS, b), False)
        every = np.arange(n + 1, dtype=np.int64)
        solid: np.ndarray = np.minimum.accumulate(np.where(blank, n, every)[::-1])[::-1]
        found: np.ndarray = solid[pos]
        return found

    def pieces(self, limit: int | None, min_restart: int,
               events: dict[int, EnvelopeV1] | None = None) -> list[bytes]:
        self.typed = events is not None
        table, cuts = self._restarts(min_restart)
        check(self.deadline)
        # segments: [start, end); after a restart (c, o, close, after) the segment ends
        # at c, the object is a piece, and a fresh one starts after ``after``
        cs, os, closes, afters = table[:, 0], table[:, 1], table[:, 2], table[:, 3]
        seg_start = np.concatenate(([0], afters + 1))
        seg_end = np.concatenate((cs, [self.n]))
        if len(table) and afters[-1] >= self.n:  # the last restart ends the body
            seg_start, seg_end = seg_start[:-1], seg_end[:-1]
        if cuts is None:
            cuts = self._separators(seg_start, seg_end)
        # the pieces are disjoint and in order, so their starts and ends, each sorted,
        # pair up: a segment's pieces run from its start or a cut + 1 to a cut or its
        # end, and each restart object lies between its segment and the next
        starts = np.sort(np.concatenate((seg_start, cuts + 1, os)))
        ends = np.sort(np.concatenate((seg_end, cuts, closes + 1)))
        if limit is not None:
            starts, ends = starts[:limit], ends[:limit]
        if events is not None and self.restart_events is not None:
            at: list[int] = starts.searchsorted(os).tolist()  # each restart's piece
            if at and at[-1] >= len(starts):  # past the item limit
                at = [i for i in at if i < len(starts)]
            found = self.restart_events
            if None in found:  # the walk's restarts that are no v1 envelope
                events.update((i, e) for i, e in zip(at, found, strict=False) if e is not None)
            else:
                events.update(zip(at, found, strict=False))  # type: ignore[arg-type]
        value, lo = self.value, self.lo
        return [value[a:b].strip(_WS)
                for a, b in zip((starts + lo).tolist(), (ends + lo).tolist(), strict=True)]

    def _separators(self, seg_start: np.ndarray, seg_end: np.ndarray) -> np.ndarray:
        """The commas at depth 0 outside strings of each segment (fresh start: depth 0,
        outside a string, a closer at depth 0 stays at 0), in one vectorised pass over
        the structural bytes: the segments' sums are shifted apart so that one running
        minimum serves them all."""
        at = self.at
        m = len(at)
        if not m:
            return np.zeros(0, dtype=np.int64)
        if len(seg_start) == 1 and seg_start[0] == 0:  # no restart: phase 0 throughout
            p0 = self.p0
            low = np.minimum.accumulate(p0)
            np.minimum(low, 0, out=low)
            one = (self.kind == 0x2C) & ~self.inside & (p0 <= low) & (at < seg_end[0])
            cut: np.ndarray = at[one]
            return cut
        firsts = at.searchsorted(seg_start)
        tiles = np.concatenate((firsts[1:], [m])) - firsts
        # the phase of a fresh start at s (outside a string there)
        phases = np.zeros(len(seg_start), dtype=bool)
        inner = (seg_start > 0) & (seg_start <= self.n)
        phases[inner] = self.par(seg_start[inner] - 1)
        p0, p1 = self.phase_p
        before = np.maximum(firsts - 1, 0)
        base = np.where(firsts > 0, np.where(phases, p1[before], p0[before]), 0)
        shift = np.arange(len(seg_start), dtype=np.int64) * (4 * self.n + 8)
        f_at = phases.repeat(tiles)
        q = np.where(f_at, p1, p0) - (base + shift).repeat(tiles)
        floor = np.minimum(np.minimum.accumulate(q), -shift.repeat(tiles))
        ends = seg_end.repeat(tiles)
        sep = (self.kind == 0x2C) & (self.inside == f_at) & (q <= floor) & (at < ends)
        found: np.ndarray = at[sep]
        return found

    def _restarts(self, min_restart: int) -> tuple[np.ndarray, np.ndarray | None]:
        """(comma, object start, object end, following comma or ``n``) of each restart
        the cut takes, in order, one row each; and the separators of the segments
        between them when finding the restarts computed them already (else ``None``)."""
        b, n, at = self.b, self.n, self.at
        ci = (self.kind == 0x2C).nonzero()[0]  # indexes into ``at``
        if not len(ci):
            return _NO_RESTART, None
        o = self._next_solid(at[ci] + 1)
        keep = o < n
        keep[keep] = b[o[keep]] == 0x7B  # '{'
        ci, o = ci[keep], o[keep]
        if not len(ci):
            return _NO_RESTART, None
        until = np.concatenate((at[ci[1:]], [n]))  # each window ends at the next restart point
        wide = until - o >= max(min_restart, 2)
        ci, o, until = ci[wide], o[wide], until[wide]
        if not len(ci):
            return _NO_RESTART, None
        whole = self._whole_windows(o, until, min_restart)
        if whole is not None:  # every window is one object and blanks: no walk to close
            every = self._every_taken(ci, o, whole, until)
            if every is not None:
                return every
            # the walk, with each window's last brace as its object's close: right for
            # every object that parses (its brackets balance there first); when one
            # the walk reads does not parse, its object may close earlier: the windows
            # are read then (a malformed element, then a batch whole again: no reading)
            walked = self._take(ci.tolist(), o.tolist(), whole.tolist(), until.tolist(),
                                exact=False)
            if walked is not None:
                return np.array(walked, dtype=np.int64).reshape(-1, 4), None
            self.restart_events = None
        close = self._closes(o, until)
        found = close >= 0
        ci, o, close = ci[found], o[found], close[found]
        after = self._next_solid(close + 1)
        ok = (close - o + 1 >= min_restart) & ((after >= n) | (b[np.minimum(after, n - 1)]
                                                              == 0x2C))
        ci, o, close, after = ci[ok], o[ok], close[ok], after[ok]
        if not len(ci):
            return _NO_RESTART, None
        every = self._every_taken(ci, o, close, after)
        if every is not None:
            return every
        taken = self._take(ci.tolist(), o.tolist(), close.tolist(), after.tolist())
        return np.array(taken, dtype=np.int64).reshape(-1, 4), None

    def _whole_windows(self, o: np.ndarray, until: np.ndarray, min_restart: int
                       ) -> np.ndarray | None:
        """Per window ``[o, until)``, its last solid byte, when every window holds one
        object and blanks as far as the brackets show (it ends in ``}``, a few blanks at
        most, and spans ``min_restart`` bytes); else ``None``. Such a window's object,
        if it parses, closes at that byte (a JSON object's brackets and strings balance
        there first) and its following comma is ``until``: what :meth:`_closes` and the
        checks after it would find, in a few calls (junk between events: each event is
        its own window). The parse that proves it is :meth:`_every_taken`'s."""
        if len(o) < 2:
            return None
        b = self.b
        pos = until - 1
        for _ in range(4):
            blank = np.take(_ANY_WS, np.take(b, pos))
            if not blank.any():
                break
            pos[blank] -= 1
        else:
            return None
        if (np.take(b, pos) != 0x7D).any() or (pos - o + 1 < min_restart).any():
            return None
        return pos

    def _every_taken(self, ci: np.ndarray, o: np.ndarray, close: np.ndarray,
                     after: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
        """The restarts and separators when :meth:`_take`'s walk would take every
        candidate (malformed elements between valid events: each event after one is a
        restart), found in vectorised passes and one C parse of all the candidates'
        objects instead of a Python step and a parse per candidate; ``None``: the walk
        decides. Every candidate is taken iff each one's comma lies after the one
        before it ends, is no separator of the segment that one starts (read as
        :meth:`_separators` reads a segment, up to and including the comma) and its
        object parses. Cost when it fails: these passes and at most one parse of each
        object, on top of the walk's."""
        if len(ci) < 2:
            return None
        c = self.at[ci]
        if (c[1:] <= after[:-1]).any():  # a candidate inside or right after the one before
            return None
        n = self.n
        seg_start = np.concatenate(([0], after + 1))
        seg_end = np.concatenate((c + 1, [n]))  # each candidate's comma included
        if after[-1] >= n:  # the last restart ends the body
            seg_start, seg_end = seg_start[:-1], seg_end[:-1]
        cuts = self._separators(seg_start, seg_end)
        if len(cuts):
            hit = cuts.searchsorted(c)
            if (cuts[np.minimum(hit, len(cuts) - 1)] == c).any():  # a candidate separates
                return None
        value, lo = self.value, self.lo
        objects = [value[a:b] for a, b in zip((o + lo).tolist(), (close + lo + 1).tolist(),
                                              strict=True)]
        joined = b"[" + b",".join(objects) + b"]"
        if self.typed:  # v1 events (the usual restart): one typed decode, kept
            try:
                typed = cast("list[EnvelopeV1 | None]", _EVENTS_DECODER.decode(joined))
            except DECODE_ERRORS:
                pass
            else:
                if len(typed) == len(objects):
                    self.restart_events = typed
                    return np.stack((c, o, close, after), axis=1), cuts
        try:  # each one an object, checked in C
            parsed = _OBJECTS_DECODER.decode(joined)
        except DECODE_ERRORS:
            return None
        if len(parsed) != len(objects):
            return None
        return np.stack((c, o, close, after), axis=1), cuts

    def _closes(self, o: np.ndarray, until: np.ndarray) -> np.ndarray:
        """Per window ``[o, until)``: where the object opened at ``o`` closes when read
        afresh from ``o`` (the first bracket where the depth is back to 0), or -1. The
        windows are disjoint: one pass over their structural bytes."""
        at = self.at
        first = at.searchsorted(o)  # o is a '{': its own index
        lengths = at.searchsorted(until) - first
        win = np.arange(len(o)).repeat(lengths)
        offsets = lengths.cumsum() - lengths
        idx = np.arange(int(lengths.sum()), dtype=np.int64) - (offsets - first).repeat(lengths)
        g = self.par(o)  # the phase of a fresh start at o ('{' is no quote)
        p0, p1 = self.phase_p
        thr = np.where(g, p1[first], p0[first]) - 1
        vals = np.where(g.repeat(lengths), p1[idx], p0[idx])
        hits = (vals <= thr.repeat(lengths)).nonzero()[0]
        close = np.full(len(o), -1, dtype=np.int64)
        if len(hits):
            ids = win[hits]  # non-decreasing: the first hit of each window
            first = np.empty(len(ids), dtype=bool)
            first[0] = True
            np.not_equal(ids[1:], ids[:-1], out=first[1:])
            close[ids[first]] = at[idx[hits[first]]]
        return close

    def _take(self, cis: list[int], os: list[int], closes: list[int], afters: list[int],
              exact: bool = True) -> list[tuple[int, int, int, int]] | None:
        """Walk the candidate restarts in order: one is taken unless its comma separates
        anyway (outside strings at depth 0 in the current segment) or its object does
        not parse; a taken one starts a fresh segment after its following comma. One
        Python step per candidate (each spans at least ``min_restart`` bytes): what it
        reads was gathered into lists by vectorised passes first. ``exact=False``:
        ``closes`` are only right for objects that parse; None when one does not.
        The taken objects decoded as v1 envelopes are kept in ``restart_events``."""
        at, n, m = self.at, self.n, len(self.at)
        p0, p1 = self.phase_p
        ci_arr = np.array(cis, dtype=np.int64)
        heads_arr = at.searchsorted(np.array(afters, dtype=np.int64) + 1)
        marks = np.concatenate([[0], ci_arr, heads_arr[heads_arr < m]])
        marks.sort()
        keep = np.empty(len(marks), dtype=bool)
        keep[0] = True
        np.not_equal(marks[1:], marks[:-1], out=keep[1:])
        marks = marks[keep]
        lows = (np.minimum.reduceat(p0, marks).tolist(),
                np.minimum.reduceat(p1, marks).tolist())
        mark_list: list[int] = marks.tolist()
        head_mark: list[int] = marks.searchsorted(heads_arr).tolist()
        commas: list[int] = at[ci_arr].tolist()
        comma_in: list[bool] = self.inside[ci_arr].tolist()
        comma_sum = (p0[ci_arr].tolist(), p1[ci_arr].tolist())
        heads: list[int] = heads_arr.tolist()
        safe = np.maximum(heads_arr - 1, 0)
        head_sum = (np.where(heads_arr > 0, p0[safe], 0).tolist(),
                    np.where(heads_arr > 0, p1[safe], 0).tolist())
        head_phase: list[bool] = self.par(np.minimum(np.array(afters, dtype=np.int64),
                                                     n - 1)).tolist()
        value, lo = self.value, self.lo
        taken: list[tuple[int, int, int, int]] = []
        events: list[EnvelopeV1 | None] = []
        self.restart_events = events
        start, f = 0, 0
        low = 0  # the lowest running sum since the segment's start (its base included)
        j = 0
        for k, ci in enumerate(cis):
            c = commas[k]
            if c < start:
                continue
            lows_f = lows[f]
            while mark_list[j] < ci:
                if lows_f[j] < low:
                    low = lows_f[j]
                j += 1
            if comma_in[k] == bool(f) and comma_sum[f][k] <= low:
                continue  # a separator at depth 0: the element after it starts afresh
            o, close, after = os[k], closes[k], afters[k]
            piece = value[lo + o:lo + close + 1]
            event = _event_of(piece) if self.typed else None
            if event is None and not _parses_as_object(piece):
                if not exact:
                    return None
                continue
            taken.append((c, o, close, after))
            events.append(event)
            if after >= n - 1 or heads[k] >= m:
                break
            start = after + 1
            f = int(head_phase[k])  # the phase of a fresh start after the comma
            low = head_sum[f][k]
            j = head_mark[k]
        return taken


def _event_of(piece: bytes) -> EnvelopeV1 | None:
    """``piece`` decoded as a v1 envelope, or None."""
    try:
        event: EnvelopeV1 = _EVENT_DECODER.decode(piece)
    except DECODE_ERRORS:
        return None
    return event


def _parses_as_object(piece: bytes) -> bool:
    try:
        return isinstance(_ANY_DECODER.decode(piece), dict)
    except DECODE_ERRORS:
        return False
