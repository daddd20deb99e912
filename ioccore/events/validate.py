"""Stage-1 validation: Kafka message value bytes -> ``Record``\\s and ``Rejection``\\s.

Contract of :meth:`Validator.validate`:

* One call takes one message value: a JSON object (one event) or a JSON array of
  objects (a batch). Every element is validated on its own; a bad element never takes
  its neighbours down, not even one that is not JSON (the array is split by a small
  scanner when it does not parse as a whole).
* It never raises for any input bytes (nor for a tombstone, ``None``); every problem
  becomes a :class:`Rejection` with a stable reason code from
  :class:`ioccore.events.reasons.Reason`. A bug in a check is caught per element and
  reported as ``internal_error`` for that element alone.
* Every element of a batch ends up in exactly one place: a ``Record`` or a
  ``Rejection`` (whose ``index``/``count`` say which elements it covers). A batch that
  does not parse is cut by :func:`split_array` into pieces that partition its bytes;
  a malformed run becomes one piece. Amplification is bounded: more than
  ``max_events`` elements is one ``too_many_events`` rejection, and a run of more than
  :data:`RUN_COLLAPSE` consecutive rejected elements is one rejection with a count.
* Accepted events become :class:`ioccore.events.record.Record` with canonical units,
  ``occurred_at`` in UTC, ``received_at=now``, and ``commune_code`` as sent (geo
  ``"code"``) or ``"unassigned"`` for the geo join to fill.
* Speed: valid messages go through one typed msgspec decode and a few checks per event.
  Only when that decode fails does a slower diagnostic pass walk the generic JSON to
  name the first failing field and its precise reason.
* Duplicates: the validator remembers the last ``dedupe_capacity`` accepted
  (source_id, event_id) pairs (first in, first out, hashed to 64 bits, about 16 bytes a
  key: :mod:`ioccore.events.dedupe`, which also bounds the chance of a hash collision).
  The state is per process; since messages are keyed by source_id a source's events
  reach one worker.
"""

from __future__ import annotations

import base64
import json
import math
import re
import time
from collections.abc import Callable, Container, Iterable
from datetime import UTC, datetime
from typing import Any, Final

import msgspec
import msgspec.inspect as mi

from ioccore.events import units
from ioccore.events.dedupe import SeenKeys
from ioccore.events.models import (
    ENVELOPE_V1_BY_FEED,
    EVENT_TIME_MIN,
    FEED_OF,
    SUPPORTED_SCHEMA_VERSIONS,
    EnvelopeV1,
    SensorBodyV1,
    SensorEnvelopeV1,
    ServiceBodyV1,
    TrafficBodyV1,
    TrafficEnvelopeV1,
)
from ioccore.events.reasons import Reason
from ioccore.events.record import FEEDS, UNASSIGNED, Record

RAW_KEEP_OVERSIZE: Final = 65_536
"""Bytes of an oversize message kept in its rejection (the rest would not fit a topic)."""

MAX_EVENTS_PER_MESSAGE: Final = 5_000
"""Default cap on the elements of one batch message (``too_many_events`` above it)."""

RUN_COLLAPSE: Final = 10
"""A run of more consecutive rejected elements than this becomes one rejection."""

_RESYNC_TRIES: Final = 64
"""Candidate restart points tried inside one malformed piece of a batch."""

FORBIDDEN_CHARS: Final = re.compile(
    "[\x00-\x1f\x7f-\x9f\u00ad\u061c\u180e\u200b-\u200f\u2028-\u202e"
    "\u2060-\u206f\ufeff\ufff9-\ufffb]")
"""C0/C1 controls (NUL included), soft hyphen, bidirectional controls and zero-width
characters: refused in identifiers (they reach databases, labels and terminals)."""


class Rejection(msgspec.Struct):
    """Why one event (``index`` in its batch) or one whole message (``index=None``) failed.

    ``raw`` is the element's own bytes for a batch element, else the message value
    (the first :data:`RAW_KEEP_OVERSIZE` bytes for ``message_too_large``).
    ``source_id``/``event_id`` are filled when they could be read.
    """

    reason: str
    message: str
    raw: bytes
    index: int | None
    source_id: str | None = None
    event_id: str | None = None
    count: int = 1
    """How many consecutive elements (from ``index``) this rejection covers."""


KnownCommune = Callable[[str], bool] | Container[str]

_MESSAGE_DECODER = msgspec.json.Decoder(EnvelopeV1 | list[EnvelopeV1])
_ONE_DECODER = msgspec.json.Decoder(EnvelopeV1)
_RAW_LIST_DECODER = msgspec.json.Decoder(list[msgspec.Raw])
_ANY_DECODER = msgspec.json.Decoder()
_IDS_DECODER = msgspec.json.Decoder()
_DECODE_ERRORS = (msgspec.DecodeError, msgspec.ValidationError, UnicodeDecodeError,
                  RecursionError, OverflowError, ValueError)

_Problem = tuple[str, str]
_EVENT_TIME_MIN_DT: Final = datetime.fromtimestamp(EVENT_TIME_MIN, UTC)


class _UnitCache(dict[tuple[str, str], "tuple[str, units.Converter | None, float, float]"]):
    """(metric, unit as sent) -> (canonical unit, converter or None, lo, hi); bounded."""

    def lookup(self, metric: str, unit: str
               ) -> tuple[str, units.Converter | None, float, float] | None:
        hit = units.lookup(metric, unit)
        if hit is None:
            return None
        conv, lo, hi = hit
        canonical = units.CANONICAL_UNIT[metric]
        same = units.normalise_unit(unit) == canonical
        entry = (canonical, None if same else conv, lo, hi)
        if len(self) < 10_000:  # spellings come from outside: keep the cache bounded
            self[(metric, unit)] = entry
        return entry


_UNIT_CACHE = _UnitCache()


class Validator:
    """Validates message values; one instance per worker (it holds the dedupe state)."""

    def __init__(
        self,
        *,
        max_message_bytes: int,
        max_future_skew_s: float,
        known_commune: KnownCommune | None = None,
        dedupe_capacity: int = 1_000_000,
        max_events: int = MAX_EVENTS_PER_MESSAGE,
    ) -> None:
        """``known_commune``: a predicate or a set of current commune codes; ``None``
        checks only the code's format. ``dedupe_capacity=0`` disables duplicate checks
        (e.g. in the HTTP gateway, whose events stage 1 checks again)."""
        self.max_message_bytes = max_message_bytes
        self.max_events = max(1, max_events)
        self.max_future_skew_s = float(max_future_skew_s)
        if known_commune is None or callable(known_commune):
            self._known: Callable[[str], bool] | None = known_commune
        else:
            self._known = known_commune.__contains__
        self._capacity = max(0, dedupe_capacity)
        self._seen = SeenKeys(self._capacity) if self._capacity else None
        self._record = None if self._seen is None else self._seen.add
        self._fresh: Callable[[str, str], bool] | None = self._record
        """Records (source_id, event_id) as seen; False if it was seen already. None
        while duplicates are not checked (disabled, or a redelivered message)."""
        self._limits_now = float("nan")  # never equal: the first call computes
        self._limits_at: tuple[datetime, datetime] = (_EVENT_TIME_MIN_DT, _EVENT_TIME_MIN_DT)

    # ------------------------------------------------------------------ public API
    def validate(
        self, value: bytes | None, *, now: float | None = None,
        expected_feed: str | None = None, redelivered: bool = False,
        key: bytes | None = None, check_key: bool = False,
    ) -> tuple[list[Record], list[Rejection]]:
        """Decode and check one message value (an object or an array of objects).

        ``redelivered``: Kafka hands this same message (same partition and offset) out
        again after a rebalance or a retry; its events were recorded as seen the first
        time and must not now be rejected as duplicates of themselves.
        ``check_key``: the message's Kafka ``key`` must be present (the source_id);
        a message without one is rejected whole (``missing_key``). ``value=None`` is a
        Kafka tombstone (``tombstone``); its rejection's ``raw`` describes it.
        """
        if value is None:
            return [], [Rejection(Reason.TOMBSTONE, "the message has no value (a tombstone)",
                                  _tombstone_raw(key), None)]
        if check_key and not key:
            return [], [Rejection(Reason.MISSING_KEY, "the message has no key; use the "
                                  "events' source_id as the key",
                                  bytes(value[:RAW_KEEP_OVERSIZE]), None)]
        if redelivered:
            self._fresh = None
        try:
            records, rejections = self._validate(value, now, expected_feed)
        except Exception as exc:  # a bug in a check: never raise, never lose an element
            records, rejections = self._guarded_slow(value, now, expected_feed, exc)
        finally:
            self._fresh = self._record
        return records, collapse_runs(rejections)

    def _guarded_slow(self, value: bytes, now: float | None, expected_feed: str | None,
                      exc: Exception) -> tuple[list[Record], list[Rejection]]:
        try:
            return self._slow(value, time.time() if now is None else now, expected_feed)
        except Exception as again:
            return [], [Rejection(Reason.INTERNAL_ERROR,
                                  f"validator failed: {type(again).__name__}",
                                  bytes(value[:RAW_KEEP_OVERSIZE]), None)]

    def _validate(self, value: bytes, now: float | None, expected_feed: str | None
                  ) -> tuple[list[Record], list[Rejection]]:
        if now is None:
            now = time.time()
        if len(value) > self.max_message_bytes:
            return [], [Rejection(
                Reason.MESSAGE_TOO_LARGE,
                f"message is {len(value)} bytes; the limit is {self.max_message_bytes}",
                bytes(value[:RAW_KEEP_OVERSIZE]), None)]
        try:
            decoded = _MESSAGE_DECODER.decode(value)
        except _DECODE_ERRORS:
            return self._slow(value, now, expected_feed)
        records: list[Record] = []
        rejections: list[Rejection] = []
        if type(decoded) is list:
            if not decoded:
                rejections.append(Rejection(Reason.EMPTY_BATCH, "the batch array is empty",
                                            value, None))
                return records, rejections
            if len(decoded) > self.max_events:
                return records, [self._too_many(value, len(decoded))]
            raws: list[msgspec.Raw] | None = None
            limits = self._limits(now)
            accept = self._accept
            for i, env in enumerate(decoded):
                out = accept(env, now, expected_feed, limits)
                if type(out) is Record:
                    records.append(out)
                else:
                    if raws is None:
                        raws = _RAW_LIST_DECODER.decode(value)
                    reason, message = out  # type: ignore[misc]
                    rejections.append(Rejection(reason, message, bytes(raws[i]), i,
                                                env.source_id, env.event_id))
            return records, rejections
        out = self._accept(decoded, now, expected_feed)
        if type(out) is Record:
            records.append(out)
        else:
            reason, message = out  # type: ignore[misc]
            rejections.append(Rejection(reason, message, value, None,
                                        decoded.source_id, decoded.event_id))
        return records, rejections

    def validate_items(
        self, items: Iterable[bytes], *, now: float | None = None,
        expected_feed: str | None = None,
    ) -> tuple[list[Record], list[Rejection]]:
        """Validate separate single-event values (e.g. NDJSON lines); ``index`` is the
        position in ``items``. Size limits are the caller's (the HTTP body limit)."""
        if now is None:
            now = time.time()
        records: list[Record] = []
        rejections: list[Rejection] = []
        for i, raw in enumerate(items):
            self._one(bytes(raw), i, now, expected_feed, records, rejections)
        return records, collapse_runs(rejections)

    def _too_many(self, value: bytes, n: int | None) -> Rejection:
        many = f"{n}" if n is not None else f"more than {self.max_events}"
        return Rejection(Reason.TOO_MANY_EVENTS,
                         f"the batch holds {many} elements; at most {self.max_events} a "
                         "message", bytes(value), None,
                         count=n if n is not None else self.max_events + 1)

    def forget(self) -> None:
        """Drop the duplicate-detection memory (e.g. after a partition reassignment)."""
        if self._seen is not None:
            self._seen.clear()

    # ------------------------------------------------------------------ fast path
    def _accept(self, env: EnvelopeV1, now: float, expected_feed: str | None,
                limits: tuple[datetime, datetime] | None = None) -> Record | _Problem:
        """Semantic checks on a typed envelope; a Record, or (reason, message).

        ``limits`` is (latest, earliest) accepted ``occurred_at`` in UTC, computed once
        per message by the caller (comparing UTC datetimes is far cheaper than
        ``timestamp()`` on this path).
        """
        cls = type(env)
        if expected_feed is not None and FEED_OF[cls] != expected_feed:
            return (Reason.FEED_TOPIC_MISMATCH,
                    f"a {FEED_OF[cls]} event on the {expected_feed} topic")
        if limits is None:
            limits = self._limits(now)
        if FORBIDDEN_CHARS.search(env.event_id + env.source_id + env.department):
            return _forbidden_chars(("event_id", env.event_id), ("source_id", env.source_id),
                                    ("department", env.department))
        try:
            occurred = env.occurred_at.astimezone(UTC)
        except (OverflowError, ValueError):
            return (Reason.TIMESTAMP_OUT_OF_RANGE,
                    f"occurred_at {env.occurred_at.isoformat()} cannot be expressed in UTC")
        if occurred > limits[0]:
            ahead = occurred.timestamp() - now
            return (Reason.TIMESTAMP_IN_FUTURE,
                    f"occurred_at is {ahead:.0f} s ahead; at most "
                    f"{self.max_future_skew_s:.0f} s allowed")
        if occurred < limits[1]:
            return Reason.TIMESTAMP_TOO_OLD, "occurred_at is before 2000-01-01"
        loc = env.location
        code = env.commune_code
        if code is not None:
            if self._known is not None and not self._known(code):
                return Reason.UNKNOWN_COMMUNE_CODE, f"commune_code {code!r} is not known"
            geo = "code"
        elif loc is None:
            return Reason.MISSING_LOCATION, "give location {lat, lon} or commune_code"
        else:
            code = UNASSIGNED
            geo = "unassigned"
        lat = lon = None
        if loc is not None:
            lat = loc.lat
            lon = loc.lon
        if cls is SensorEnvelopeV1:
            sb: SensorBodyV1 = env.body  # type: ignore[assignment]
            metric = sb.metric
            hit = _UNIT_CACHE.get((metric, sb.unit)) or _UNIT_CACHE.lookup(metric, sb.unit)
            if hit is None:
                problem = units.unit_problem(metric, sb.unit)
                return (problem, f"unit {sb.unit!r} is not accepted for {metric}; use one "
                        f"of {units.accepted_units(metric)}")
            canonical, conv, lo, hi = hit
            if FORBIDDEN_CHARS.search(sb.unit):
                return _forbidden_chars(("body.unit", sb.unit))
            value = sb.value if conv is None else conv(sb.value)
            if not lo <= value <= hi:
                return (Reason.OUT_OF_RANGE,
                        f"{metric} {value:g} {canonical} is outside [{lo:g}, {hi:g}]")
            if self._fresh is not None and not self._fresh(env.source_id, env.event_id):
                return _duplicate(env)
            return Record(
                event_id=env.event_id, source_id=env.source_id, department=env.department,
                feed="sensor", occurred_at=occurred, received_at=now,
                lat=lat, lon=lon, commune_code=code, geo=geo,  # type: ignore[arg-type]
                metric=metric, value=value, unit=canonical)
        if cls is TrafficEnvelopeV1:
            tb: TrafficBodyV1 = env.body  # type: ignore[assignment]
            if FORBIDDEN_CHARS.search(tb.segment_id):
                return _forbidden_chars(("body.segment_id", tb.segment_id))
            if self._fresh is not None and not self._fresh(env.source_id, env.event_id):
                return _duplicate(env)
            return Record(
                event_id=env.event_id, source_id=env.source_id, department=env.department,
                feed="traffic", occurred_at=occurred, received_at=now,
                lat=lat, lon=lon, commune_code=code, geo=geo,  # type: ignore[arg-type]
                segment_id=tb.segment_id, vehicle_count=tb.vehicle_count,
                avg_speed_kmh=tb.avg_speed_kmh, occupancy=tb.occupancy, incident=tb.incident)
        vb: ServiceBodyV1 = env.body  # type: ignore[assignment]
        status = vb.status
        resolved_at = vb.resolved_at
        if status == "resolved" and resolved_at is None:
            return Reason.MISSING_FIELD, "resolved_at is required when status is resolved"
        if resolved_at is not None and status in ("received", "in_progress"):
            return Reason.INCONSISTENT_EVENT, f"resolved_at given but status is {status}"
        if status == "paid" and vb.paid_online is None:
            return Reason.MISSING_FIELD, "paid_online is required when status is paid"
        if vb.paid_online and not vb.fee_bearing:
            return Reason.INCONSISTENT_EVENT, "paid_online is true but fee_bearing is false"
        if FORBIDDEN_CHARS.search(vb.dossier_id + vb.procedure_code + vb.agency):
            return _forbidden_chars(("body.dossier_id", vb.dossier_id),
                                    ("body.procedure_code", vb.procedure_code),
                                    ("body.agency", vb.agency))
        try:
            due_at = vb.due_at.astimezone(UTC)
            resolved_utc = resolved_at.astimezone(UTC) if resolved_at is not None else None
        except (OverflowError, ValueError):
            return (Reason.TIMESTAMP_OUT_OF_RANGE,
                    "body.due_at or body.resolved_at cannot be expressed in UTC")
        if self._fresh is not None and not self._fresh(env.source_id, env.event_id):
            return _duplicate(env)
        return Record(
            event_id=env.event_id, source_id=env.source_id, department=env.department,
            feed="service", occurred_at=occurred, received_at=now,
            lat=lat, lon=lon, commune_code=code, geo=geo,  # type: ignore[arg-type]
            dossier_id=vb.dossier_id, procedure_code=vb.procedure_code, agency=vb.agency,
            channel=vb.channel, status=status, due_at=due_at, resolved_at=resolved_utc,
            fee_bearing=vb.fee_bearing, paid_online=vb.paid_online, digitised=vb.digitised)

    def _limits(self, now: float) -> tuple[datetime, datetime]:
        # one ``now`` per stage-1 batch: building the datetime per message was 9 % of a
        # draining worker's event loop with one-event messages (py-spy)
        if now != self._limits_now:
            self._limits_now = now
            self._limits_at = (datetime.fromtimestamp(now + self.max_future_skew_s, UTC),
                               _EVENT_TIME_MIN_DT)
        return self._limits_at

    # ------------------------------------------------------------------ slow path
    def _slow(self, value: bytes, now: float, expected_feed: str | None
              ) -> tuple[list[Record], list[Rejection]]:
        records: list[Record] = []
        rejections: list[Rejection] = []
        if value.lstrip()[:1] != b"[":
            self._one(value, None, now, expected_feed, records, rejections)
            return records, rejections
        items: list[bytes] | None
        exact = True
        try:
            items = [bytes(r) for r in _RAW_LIST_DECODER.decode(value)]
        except _DECODE_ERRORS:
            items = split_array(value, max_items=self.max_events)
            exact = False
        if items is None:
            reason, message = _unparseable(value)
            rejections.append(Rejection(reason, message, value, None))
            return records, rejections
        if not items:
            rejections.append(Rejection(Reason.EMPTY_BATCH, "the batch array is empty",
                                        value, None))
            return records, rejections
        if len(items) > self.max_events:
            rejections.append(self._too_many(value, len(items) if exact else None))
            return records, rejections
        for i, raw in enumerate(items):
            self._one(raw, i, now, expected_feed, records, rejections)
        return records, rejections

    def _one(self, raw: bytes, index: int | None, now: float, expected_feed: str | None,
             records: list[Record], rejections: list[Rejection]) -> None:
        try:
            self._one_unguarded(raw, index, now, expected_feed, records, rejections)
        except Exception as exc:  # a bug in a check costs this element only
            rejections.append(Rejection(Reason.INTERNAL_ERROR,
                                        f"validator failed: {type(exc).__name__}", raw, index))

    def _one_unguarded(self, raw: bytes, index: int | None, now: float,
                       expected_feed: str | None, records: list[Record],
                       rejections: list[Rejection]) -> None:
        try:
            env = _ONE_DECODER.decode(raw)
        except _DECODE_ERRORS as exc:
            reason, message = diagnose(raw, expected_feed, fallback=str(exc)[:200])
            sid, eid = _ids(raw)
            rejections.append(Rejection(reason, message, raw, index, sid, eid))
            return
        out = self._accept(env, now, expected_feed)
        if type(out) is Record:
            records.append(out)
        else:
            reason, message = out  # type: ignore[misc]
            rejections.append(Rejection(reason, message, raw, index, env.source_id,
                                        env.event_id))


def _forbidden_chars(*fields: tuple[str, str]) -> _Problem:
    for name, text in fields:
        found = FORBIDDEN_CHARS.search(text)
        if found is not None:
            return (Reason.FORBIDDEN_CHARACTER,
                    f"{name} holds the character U+{ord(found.group()):04X} (control, "
                    "bidirectional or zero-width characters are not allowed)")
    return Reason.FORBIDDEN_CHARACTER, "an identifier holds a forbidden character"


def _tombstone_raw(key: bytes | None) -> bytes:
    """What a tombstone's dead letter holds: a note naming its key (never null)."""
    return msgspec.json.encode({
        "tombstone": True,
        "key": None if key is None else key.decode("utf-8", "replace")[:256],
        "key_b64": None if key is None else base64.b64encode(key[:1024]).decode()})


def collapse_runs(rejections: list[Rejection], limit: int = RUN_COLLAPSE) -> list[Rejection]:
    """Runs of more than ``limit`` consecutive rejected batch elements become one rejection
    (raw: the elements' bytes joined by commas, ``count``: how many); others stay."""
    if len(rejections) <= limit:
        return rejections
    out: list[Rejection] = []
    run: list[Rejection] = []

    def flush() -> None:
        if len(run) > limit:
            out.append(_merge(run))
        else:
            out.extend(run)
        run.clear()

    for rej in rejections:
        if rej.index is None:
            flush()
            out.append(rej)
            continue
        if run:
            last = run[-1]
            if last.index is None or rej.index != last.index + last.count:
                flush()
        run.append(rej)
    flush()
    return out


def _merge(run: list[Rejection]) -> Rejection:
    tally: dict[str, int] = {}
    for r in run:
        tally[str(r.reason)] = tally.get(str(r.reason), 0) + r.count
    count = sum(r.count for r in run)
    first = run[0].index or 0
    reasons = ", ".join(f"{k} x{v}" for k, v in sorted(tally.items(), key=lambda kv: -kv[1]))
    reason = next(iter(tally)) if len(tally) == 1 else Reason.REJECTED_RUN
    return Rejection(reason, f"{count} consecutive elements (index {first}.."
                     f"{first + count - 1}) rejected: {reasons}",
                     b",".join(r.raw for r in run), first, count=count)


def _duplicate(env: EnvelopeV1) -> _Problem:
    return (Reason.DUPLICATE_EVENT_ID,
            f"event_id {env.event_id!r} was already received from {env.source_id!r}")


def _ids(raw: bytes) -> tuple[str | None, str | None]:
    """source_id and event_id of a rejected element when they can be read."""
    try:
        obj = _IDS_DECODER.decode(raw)
    except _DECODE_ERRORS:
        return None, None
    if not isinstance(obj, dict):
        return None, None
    sid, eid = obj.get("source_id"), obj.get("event_id")
    return (sid if isinstance(sid, str) else None, eid if isinstance(eid, str) else None)


# ---------------------------------------------------------------------- batch splitting
_WS = b" \t\r\n"
_SPECIAL = re.compile(rb'["\\\[\]{},]')
_RESTART = re.compile(rb",[ \t\r\n]*\{")


def split_array(value: bytes, max_items: int | None = None) -> list[bytes] | None:
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
    pieces = _scan(body, limit)
    out: list[bytes] = []
    for piece in pieces:
        out.extend(_resync(piece, limit))
        if limit is not None and len(out) >= limit:
            return out[:limit]
    return out


def _scan(body: bytes, limit: int | None) -> list[bytes]:
    """Cut ``body`` at the commas of depth 0 outside strings (depth never below 0)."""
    pieces: list[bytes] = []
    depth = 0
    in_str = False
    skip = -1
    start = 0
    for m in _SPECIAL.finditer(body):
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
    except _DECODE_ERRORS:
        return False


def _resync(piece: bytes, limit: int | None) -> list[bytes]:
    """``piece`` alone when it parses (or cannot be cut), else a malformed prefix and the
    pieces after the first restart point ``,{`` whose first element parses (each of
    those checked the same way)."""
    out: list[bytes] = []
    todo = [piece]
    while todo:
        p = todo.pop()
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
            todo.extend(reversed(_scan(p[cut + 1:], limit)))
        if limit is not None and len(out) + len(todo) >= limit:
            out.extend(reversed(todo))
            return out
    return out


# ---------------------------------------------------------------------- diagnosis
def _unparseable(raw: bytes) -> _Problem:
    """Reason for bytes that strict JSON parsing refused."""
    found: list[str] = []

    def constant(name: str) -> float:
        found.append(name)
        return math.nan

    def parse_float(text: str) -> float:
        v = float(text)
        if not math.isfinite(v):
            found.append(text)
        return v

    def parse_int(text: str) -> int:
        return int(text)

    try:
        json.loads(raw, parse_constant=constant, parse_float=parse_float, parse_int=parse_int)
    except RecursionError:
        return _too_deep()
    except ValueError as exc:
        return Reason.NOT_JSON, f"not valid JSON: {str(exc)[:200]}"
    if found:
        return (Reason.NON_FINITE_NUMBER,
                f"{found[0]} is not a finite JSON number (NaN/Infinity are not JSON)")
    return Reason.NOT_JSON, "not valid JSON (refused by the strict parser)"


def _too_deep() -> _Problem:
    return Reason.TOO_DEEPLY_NESTED, "the JSON is nested too deeply to be an event"


MAX_JSON_DEPTH: Final = 512
"""Deeper JSON is ``too_deeply_nested`` on every Python: 3.11's recursion limit stopped
the decoders near 1,000 levels (RecursionError), 3.12 and later let C code recurse far
deeper, so the reason would otherwise depend on the interpreter."""
_NESTING = re.compile(rb'["\\\[\]{}]')


def _deeper_than_allowed(raw: bytes) -> bool:
    """Whether ``raw`` nests arrays/objects more than :data:`MAX_JSON_DEPTH` deep (outside
    strings); linear, and a count in C first for the usual shallow value."""
    if raw.count(b"[") + raw.count(b"{") <= MAX_JSON_DEPTH:
        return False
    depth, in_string, escaped_at = 0, False, -1
    for m in _NESTING.finditer(raw):
        i = m.start()
        c = raw[i]
        if in_string:
            if i == escaped_at:
                continue
            if c == 0x5C:  # backslash: the next byte is escaped
                escaped_at = i + 1
            elif c == 0x22:
                in_string = False
        elif c == 0x22:
            in_string = True
        elif c in (0x5B, 0x7B):
            depth += 1
            if depth > MAX_JSON_DEPTH:
                return True
        elif depth:
            depth -= 1
    return False


def diagnose(raw: bytes, expected_feed: str | None = None, *, fallback: str = ""
             ) -> _Problem:
    """The precise reason a single-event value failed the typed decode.

    Walks the generic JSON along the v1 model (field order of the Structs, ``body``
    last) and reports the first failing field. ``fallback`` is the typed decoder's
    message, used when no finer reason is found.
    """
    if _deeper_than_allowed(raw):
        return _too_deep()
    try:
        obj = _ANY_DECODER.decode(raw)
    except RecursionError:
        return _too_deep()
    except _DECODE_ERRORS:
        return _unparseable(raw)
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
                 skip: frozenset[str] = frozenset()) -> _Problem | None:
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


def _check(v: Any, t: mi.Type, path: str) -> _Problem | None:
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
