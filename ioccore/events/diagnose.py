"""Why an event failed the typed decode: the slow path that names the field and reason.

Runs only for elements the validator's msgspec decode refused (valid events never come
here), walking the generic JSON along the v1 model to report the first failing field with
a stable reason code (:mod:`ioccore.events.reasons`).
"""

from __future__ import annotations

import json
import math
import threading
from datetime import datetime
from typing import Any, Final

import msgspec
import msgspec.inspect as mi
import numpy as np

from ioccore.events.batch_split import BRACKET_STEP, DECODE_ERRORS, real_quotes
from ioccore.events.models import ENVELOPE_V1_BY_FEED, SUPPORTED_SCHEMA_VERSIONS
from ioccore.events.reasons import Reason
from ioccore.events.record import FEEDS

Problem = tuple[str, str]
"""(reason code, message)."""

_ANY_DECODER = msgspec.json.Decoder()
_DIGITS = bytes(0x30 if 0x30 <= c <= 0x39 else 0x65 if c in b"eE" else 0x20
                for c in range(256))


def _maybe_non_finite(raw: bytes) -> bool:
    """Whether ``raw`` holds ``NaN``, ``Infinity``, an exponent or a run of 17 digits,
    what could make a number non-finite; only then does the strict (slower) parse run to
    tell ``non_finite_number`` from ``not_json``. Substring searches in C (a regular
    expression with this alternation cost 140 ns a byte on a megabyte of junk)."""
    if (b"N" in raw and b"NaN" in raw) or (b"I" in raw and b"Infinity" in raw):
        return True  # (one byte is looked for by memchr, a word by a slower loop)
    classes = raw.translate(_DIGITS)
    return b"0" in classes and (b"0e" in classes or b"0" * 17 in classes)


class _Strict(threading.local):
    """Non-finite numbers the strict parse met (per thread: the parser is shared)."""

    def __init__(self) -> None:
        self.found: list[str] = []


_STRICT_SEEN = _Strict()


def _constant(name: str) -> float:
    _STRICT_SEEN.found.append(name)
    return math.nan


def _float(text: str) -> float:
    v = float(text)
    if not math.isfinite(v):
        _STRICT_SEEN.found.append(text)
    return v


_STRICT = json.JSONDecoder(parse_constant=_constant, parse_float=_float)
"""Built once: building a decoder per call was most of the cost of a run of junk."""


def unparseable(raw: bytes) -> Problem:
    """Reason for bytes that strict JSON parsing refused."""
    if not raw.strip():
        return Reason.NOT_JSON, "not valid JSON: an empty element"
    found = _STRICT_SEEN.found
    found.clear()
    try:
        _STRICT.decode(raw.decode(json.detect_encoding(raw)))
    except RecursionError:
        return _too_deep()
    except ValueError as exc:  # UnicodeDecodeError and JSONDecodeError included
        return Reason.NOT_JSON, f"not valid JSON: {str(exc)[:200]}"
    if found:
        return (Reason.NON_FINITE_NUMBER,
                f"{found[0]} is not a finite JSON number (NaN/Infinity are not JSON)")
    return Reason.NOT_JSON, "not valid JSON (refused by the strict parser)"


def _too_deep() -> Problem:
    return Reason.TOO_DEEPLY_NESTED, "the JSON is nested too deeply to be an event"


MAX_JSON_DEPTH: Final = 512
"""Deeper JSON is ``too_deeply_nested`` on every Python: 3.11's recursion limit stopped
the decoders near 1,000 levels (RecursionError), 3.12 and later let C code recurse far
deeper, so the reason would otherwise depend on the interpreter."""


def _deeper_than_allowed(raw: bytes) -> bool:
    """Whether ``raw`` nests arrays/objects more than :data:`MAX_JSON_DEPTH` deep (outside
    strings); linear: a count in C first for the usual shallow value, else vectorised
    passes over the brackets alone (a closer at depth 0 stays at 0), on a prefix first:
    its depths are the whole text's there, and a body built to be deep is so early."""
    if raw.count(b"[") + raw.count(b"{") <= MAX_JSON_DEPTH:
        return False
    if len(raw) > 2 * _HEAD and _deeper(raw[:_HEAD]):
        return True
    return _deeper(raw)


_HEAD: Final = 16 * MAX_JSON_DEPTH


def _deeper(raw: bytes) -> bool:
    """:func:`_deeper_than_allowed` without its shortcuts. A bracket is inside a string
    when an odd number of real quotes precede it
    (:func:`~ioccore.events.batch_split.real_quotes`), looked up at the brackets only: a
    running sum over every byte cost 0.3 ms on 64 KiB; without quotes, none is."""
    b = np.frombuffer(raw, dtype=np.uint8)
    if b'"' in raw:
        at = np.take(_IS_BRACKET, b).nonzero()[0]
        quotes = real_quotes(b).nonzero()[0]
        at = at[(quotes.searchsorted(at) & 1) == 0]
        step = np.take(BRACKET_STEP, np.take(b, at))
    else:
        step = np.take(BRACKET_STEP, b)
    if not len(step):
        return False
    levels = step.cumsum(dtype=np.int32)
    if int(levels.max()) - min(int(levels.min()), 0) <= MAX_JSON_DEPTH:
        return False  # a bound on the depth: no running minimum needed
    levels -= np.minimum(np.minimum.accumulate(levels), 0)
    return bool(levels.max() > MAX_JSON_DEPTH)


_IS_BRACKET = BRACKET_STEP != 0


def diagnose(raw: bytes, expected_feed: str | None = None, *, fallback: str = ""
             ) -> Problem:
    """The precise reason a single-event value failed the typed decode.

    Walks the generic JSON along the v1 model (field order of the Structs, ``body``
    last) and reports the first failing field. ``fallback`` is the typed decoder's
    message, used when no finer reason is found.
    """
    return diagnose_read(raw, expected_feed, fallback=fallback)[0]


NOT_READ: Final = object()
"""What :func:`diagnose_read` gives for a value it did not parse (too deep, not JSON)."""


def diagnose_read(raw: bytes, expected_feed: str | None = None, *, fallback: str = ""
                  ) -> tuple[Problem, Any]:
    """:func:`diagnose`, and the generic value it parsed (:data:`NOT_READ` when it did
    not parse it), so the caller reads the ids from it instead of parsing again."""
    if _deeper_than_allowed(raw):
        return _too_deep(), NOT_READ
    try:
        obj = _ANY_DECODER.decode(raw)
    except RecursionError:
        return _too_deep(), NOT_READ
    except DECODE_ERRORS as exc:
        if not _maybe_non_finite(raw):  # the common junk: no second parse
            return (Reason.NOT_JSON, f"not valid JSON: {str(exc)[:200]}"), NOT_READ
        return unparseable(raw), NOT_READ
    return _problem(obj, expected_feed, fallback), obj


def _problem(obj: Any, expected_feed: str | None, fallback: str) -> Problem:
    if not isinstance(obj, dict):
        return Reason.NOT_AN_OBJECT, f"an event must be a JSON object, got {_jtype(obj)}"
    version = obj.get("schema_version")
    if version is None:
        return Reason.MISSING_FIELD, "schema_version is required (use 1)"
    if type(version) is not int:
        return Reason.WRONG_TYPE, f"schema_version must be an integer, got {_jtype(version)}"
    if version not in SUPPORTED_SCHEMA_VERSIONS:
        return (Reason.UNSUPPORTED_SCHEMA_VERSION,
                f"schema_version {version} is not supported; use 1")
    feed = obj.get("feed")
    if feed is None:
        return Reason.MISSING_FIELD, "feed is required"
    if not isinstance(feed, str):
        return Reason.WRONG_TYPE, f"feed must be a string, got {_jtype(feed)}"
    if feed not in FEEDS:
        return Reason.UNKNOWN_FEED, f"feed {feed!r} is not one of {', '.join(FEEDS)}"
    if expected_feed is not None and feed != expected_feed:
        return Reason.FEED_TOPIC_MISMATCH, f"a {feed} event on the {expected_feed} topic"
    info = mi.type_info(ENVELOPE_V1_BY_FEED[feed])
    if isinstance(info, mi.StructType):
        problem = _walk_struct(obj, info, "", skip=frozenset({"feed"}))
        if problem is not None:
            return problem
    return Reason.SCHEMA_VIOLATION, fallback or "the event does not match schema v1"


_NUMBER_REASON: Final[dict[str, str]] = {
    "location.lat": Reason.LOCATION_OUTSIDE_VIETNAM,
    "location.lon": Reason.LOCATION_OUTSIDE_VIETNAM,
}
_LITERAL_REASON: Final[dict[str, str]] = {
    "schema_version": Reason.UNSUPPORTED_SCHEMA_VERSION,
    "body.metric": Reason.UNKNOWN_METRIC,
}
_STR_REASON: Final[dict[str, str]] = {"commune_code": Reason.UNKNOWN_COMMUNE_CODE}


def _walk_struct(obj: dict[str, Any], info: mi.StructType, prefix: str,
                 skip: frozenset[str] = frozenset()) -> Problem | None:
    names = {f.encode_name for f in info.fields} | skip
    for key in obj:
        if key not in names:
            return Reason.UNKNOWN_FIELD, f"unknown field {prefix}{key!r}"
    fields = sorted(info.fields, key=lambda f: f.encode_name == "body")
    for f in fields:
        path = prefix + f.encode_name
        v = obj.get(f.encode_name)
        if v is None:
            if f.required:
                return Reason.MISSING_FIELD, f"{path} is required"
            continue
        problem = _check(v, f.type, path)
        if problem is not None:
            return problem
    return None


def _check(v: Any, t: mi.Type, path: str) -> Problem | None:
    if isinstance(t, mi.Metadata):
        t = t.type
    if isinstance(t, mi.UnionType):
        inner = [x for x in t.types if not isinstance(x, mi.NoneType)]
        if len(inner) == 1:
            return _check(v, inner[0], path)
        return None
    if isinstance(t, mi.StructType):
        if not isinstance(v, dict):
            return Reason.WRONG_TYPE, f"{path} must be an object, got {_jtype(v)}"
        return _walk_struct(v, t, path + ".")
    if isinstance(t, mi.LiteralType):
        if v not in t.values or type(v) is bool:
            reason = _LITERAL_REASON.get(path, Reason.INVALID_VALUE)
            allowed = ", ".join(str(x) for x in sorted(t.values, key=str))
            return reason, f"{path} {v!r} is not one of: {allowed}"
        return None
    if isinstance(t, mi.BoolType):
        if type(v) is not bool:
            return Reason.WRONG_TYPE, f"{path} must be true or false, got {_jtype(v)}"
        return None
    if isinstance(t, mi.IntType | mi.FloatType):
        ok = (type(v) is int) if isinstance(t, mi.IntType) else type(v) in (int, float)
        if not ok:
            kind = "an integer" if isinstance(t, mi.IntType) else "a number"
            return Reason.WRONG_TYPE, f"{path} must be {kind}, got {_jtype(v)}"
        lo, hi = t.ge, t.le
        if lo is not None and v < lo:
            if isinstance(t, mi.IntType) and lo == 0:
                return Reason.NEGATIVE_COUNT, f"{path} is {v}; a count cannot be negative"
            return _NUMBER_REASON.get(path, Reason.OUT_OF_RANGE), f"{path} {v} is below {lo}"
        if hi is not None and v > hi:
            return _NUMBER_REASON.get(path, Reason.OUT_OF_RANGE), f"{path} {v} is above {hi}"
        return None
    if isinstance(t, mi.StrType):
        if not isinstance(v, str):
            return Reason.WRONG_TYPE, f"{path} must be a string, got {_jtype(v)}"
        try:
            msgspec.convert(v, _str_type(t))
        except msgspec.ValidationError:
            reason = _STR_REASON.get(path, Reason.INVALID_VALUE)
            return reason, f"{path} {v[:80]!r} breaks the format ({_describe_str(t)})"
        return None
    if isinstance(t, mi.DateTimeType):
        if not isinstance(v, str):
            return Reason.WRONG_TYPE, f"{path} must be an RFC 3339 string, got {_jtype(v)}"
        try:
            parsed = msgspec.convert(v, datetime)
        except msgspec.ValidationError:
            return (Reason.INVALID_TIMESTAMP,
                    f"{path} {v[:40]!r} is not RFC 3339 (e.g. 2025-11-03T08:00:00+07:00)")
        if parsed.tzinfo is None:
            return (Reason.TIMESTAMP_WITHOUT_OFFSET,
                    f"{path} {v[:40]!r} has no UTC offset (add Z or +07:00)")
        return None
    return None


def _str_type(t: mi.StrType) -> Any:
    from typing import Annotated

    return Annotated[str, msgspec.Meta(min_length=t.min_length, max_length=t.max_length,
                                       pattern=t.pattern)]


def _describe_str(t: mi.StrType) -> str:
    parts = []
    if t.min_length is not None or t.max_length is not None:
        parts.append(f"length {t.min_length or 0}..{t.max_length or '∞'}")
    if t.pattern is not None:
        parts.append(f"pattern {t.pattern}")
    return ", ".join(parts)


def _jtype(v: Any) -> str:
    if v is None:
        return "null"
    if isinstance(v, bool):
        return "boolean"
    if isinstance(v, int | float):
        return "number"
    if isinstance(v, str):
        return "string"
    if isinstance(v, list):
        return "array"
    return "object"
