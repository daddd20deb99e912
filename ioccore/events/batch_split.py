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

from ioccore.events.budget import CHECK_EVERY, Deadline, check

DECODE_ERRORS: Final = (msgspec.DecodeError, msgspec.ValidationError, UnicodeDecodeError,
                        RecursionError, OverflowError, ValueError)
"""What decoding untrusted bytes may raise."""

_RESYNC_TRIES: Final = 64
"""Candidate restart points tried inside one malformed piece of a batch."""

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
_SPECIAL = re.compile(rb'["\\\[\]{},]')
_RESTART = re.compile(rb",[ \t\r\n]*\{")


def split_array(value: bytes, max_items: int | None = None,
                deadline: Deadline | None = None) -> list[bytes] | None:
    """Split a JSON array that does not parse as a whole into its elements' bytes.

    Returns ``None`` if ``value`` is not an array at all. The pieces (stripped of
    surrounding whitespace) partition the bytes between the opening ``[`` and the final
    ``]`` (absent when the array is unterminated): each byte there is in exactly one
    piece or is a separating comma, so no element can be lost. A comma separates only
    at nesting depth 0 outside strings; a stray ``}`` or ``]`` at depth 0 stays inside
    its piece (which then fails on its own). When a piece does not parse (an unclosed
    bracket or string swallows what follows), it is cut again at the first ``,{`` after
    which an object parses, so a malformed run becomes one piece and the valid elements
    after it are found again. With ``max_items``, splitting stops after
    ``max_items + 1`` pieces (the caller rejects the message as too large a batch).
    """
    start = len(value) - len(value.lstrip(_WS))
    if start >= len(value) or value[start] != 0x5B:  # '['
        return None
    body_end = len(value.rstrip(_WS))
    if body_end - 1 > start and value[body_end - 1] == 0x5D:  # ']' closes the array
        body_end -= 1
    body = value[start + 1:body_end]
    if not body.strip(_WS):
        return []
    limit = None if max_items is None else max_items + 1
    pieces = _scan(body, limit, deadline)
    out: list[bytes] = []
    for piece in pieces:
        out.extend(_resync(piece, limit, deadline))
        if limit is not None and len(out) >= limit:
            return out[:limit]
    return out


def _scan(body: bytes, limit: int | None, deadline: Deadline | None = None) -> list[bytes]:
    """Cut ``body`` at the commas of depth 0 outside strings (depth never below 0)."""
    pieces: list[bytes] = []
    depth = 0
    in_str = False
    skip = -1
    start = 0
    for n, m in enumerate(_SPECIAL.finditer(body)):
        if deadline is not None and not n % CHECK_EVERY:
            deadline.check()
        pos = m.start()
        if pos < skip:
            continue
        c = body[pos]
        if in_str:
            if c == 0x5C:  # backslash: the next byte is escaped
                skip = pos + 2
            elif c == 0x22:
                in_str = False
        elif c == 0x22:
            in_str = True
        elif c == 0x5B or c == 0x7B:
            depth += 1
        elif c == 0x5D or c == 0x7D:
            if depth:
                depth -= 1
        elif c == 0x2C and depth == 0:
            pieces.append(body[start:pos].strip(_WS))
            start = pos + 1
            if limit is not None and len(pieces) >= limit:
                return pieces
    pieces.append(body[start:].strip(_WS))
    return pieces


def _parses_as_object(piece: bytes) -> bool:
    try:
        return isinstance(_ANY_DECODER.decode(piece), dict)
    except DECODE_ERRORS:
        return False


def _resync(piece: bytes, limit: int | None, deadline: Deadline | None) -> list[bytes]:
    """``piece`` alone when it parses (or cannot be cut), else a malformed prefix and the
    pieces after the first restart point ``,{`` whose first element parses (each of
    those checked the same way)."""
    out: list[bytes] = []
    todo = [piece]
    while todo:
        p = todo.pop()
        check(deadline)
        cut = None
        if _RESTART.search(p) is not None and not _parses_as_object(p):
            for tries, m in enumerate(_RESTART.finditer(p)):
                if tries >= _RESYNC_TRIES:
                    break
                if _parses_as_object(_scan(p[m.start() + 1:], 1)[0]):
                    cut = m.start()
                    break
        if cut is None:
            out.append(p)
        else:
            out.append(p[:cut].strip(_WS))
            todo.extend(reversed(_scan(p[cut + 1:], limit, deadline)))
        if limit is not None and len(out) + len(todo) >= limit:
            out.extend(reversed(todo))
            return out
    return out
