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
* Stateless: it remembers nothing between calls. Duplicate detection is a later step
  of stage 1 (:mod:`ioccore.events.dedupe`), run only on events that passed every check,
  so a refused event leaves no trace (docs/security.md, "ownership before memory").
"""

from __future__ import annotations

import base64
import itertools
import operator
import re
import time
from collections import Counter
from collections.abc import Callable, Container, Iterable
from datetime import UTC, datetime
from typing import Final, cast

import msgspec
import numpy as np

from ioccore.events import units
from ioccore.events.batch_split import DECODE_ERRORS, split_array
from ioccore.events.budget import Deadline, OverBudgetError, check
from ioccore.events.diagnose import NOT_READ, Problem, diagnose, diagnose_read, unparseable
from ioccore.events.models import (
    EVENT_TIME_MIN,
    FEED_OF,
    EnvelopeV1,
    SensorBodyV1,
    SensorEnvelopeV1,
    ServiceBodyV1,
    TrafficBodyV1,
    TrafficEnvelopeV1,
)
from ioccore.events.reasons import Reason
from ioccore.events.record import UNASSIGNED, Record

_WS: Final = b" \t\r\n"
_OPEN_OBJECT: Final = ord("{")

RAW_KEEP_OVERSIZE: Final = 65_536
"""Bytes of an oversize message kept in its rejection (the rest would not fit a topic)."""

MAX_EVENTS_PER_MESSAGE: Final = 5_000
"""Default cap on the elements of one batch message (``too_many_events`` above it)."""

TINY: Final = 64
"""Elements shorter than this cannot be an event (the smallest valid one is about 190
bytes): their verdict depends on their bytes alone, so a batch repeating one diagnoses
it once (runs of ``[1,1,...]`` or ``{}`` cost a dictionary look-up per element)."""

ONE_EVENT_FAST_MAX: Final = 4096
"""Largest value :meth:`Validator.accept_one` tries (a one-event message is 200-500
bytes): a value it declines is validated again in full, so what a bad value can cost it
is bounded by this, not by the message size limit."""

RUN_COLLAPSE: Final = 10
"""A run of more consecutive rejected elements than this becomes one rejection."""

FORBIDDEN_CHARS: Final = re.compile(
    "[\x00-\x1f\x7f-\x9f\u00ad\u061c\u180e\u200b-\u200f\u2028-\u202e"
    "\u2060-\u206f\ufeff\ufff9-\ufffb]")
"""C0/C1 controls (NUL included), soft hyphen, bidirectional controls and zero-width
characters: refused in identifiers (they reach databases, labels and terminals)."""


def has_forbidden(text: str) -> bool:
    """Whether ``text`` holds a :data:`FORBIDDEN_CHARS` character. Printable ASCII (the
    usual identifier) holds none and is answered by two C string checks: 0.28 µs
    against the regex search's 0.77 for a sensor event's joined identifiers, which,
    with the unit's, was about 1 µs of stage 1's 5 per one-event message."""
    return not (text.isascii() and text.isprintable()) and \
        FORBIDDEN_CHARS.search(text) is not None


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
    department: str | None = None
    """The department the element names, when it could be read (a claim, not a proof)."""
    tally: dict[str, int] | None = None
    """For a rejection covering a run (``count`` > 1): elements per reason."""


KnownCommune = Callable[[str], bool] | Container[str]

_MESSAGE_DECODER = msgspec.json.Decoder(EnvelopeV1 | list[EnvelopeV1])
_ONE_DECODER = msgspec.json.Decoder(EnvelopeV1)
_LIST_DECODER = msgspec.json.Decoder(list[EnvelopeV1])
_RAW_LIST_DECODER = msgspec.json.Decoder(list[msgspec.Raw])
_IDS_DECODER = msgspec.json.Decoder()
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
    """Validates message values; stateless, so one instance serves any caller or thread."""

    def __init__(
        self,
        *,
        max_message_bytes: int,
        max_future_skew_s: float,
        known_commune: KnownCommune | None = None,
        max_events: int = MAX_EVENTS_PER_MESSAGE,
    ) -> None:
        """``known_commune``: a predicate or a set of current commune codes; ``None``
        checks only the code's format."""
        self.max_message_bytes = max_message_bytes
        self.max_events = max(1, max_events)
        self.max_future_skew_s = float(max_future_skew_s)
        if known_commune is None or callable(known_commune):
            self._known: Callable[[str], bool] | None = known_commune
        else:
            self._known = known_commune.__contains__
        self._limits_now = float("nan")  # never equal: the first call computes
        self._limits_at: tuple[datetime, datetime] = (_EVENT_TIME_MIN_DT, _EVENT_TIME_MIN_DT)

    # ------------------------------------------------------------------ public API
    def validate(
        self, value: bytes | None, *, now: float | None = None,
        expected_feed: str | None = None,
        key: bytes | None = None, check_key: bool = False,
        deadline: Deadline | None = None,
    ) -> tuple[list[Record], list[Rejection]]:
        """Decode and check one message value (an object or an array of objects).

        ``deadline``: the message's time budget (:mod:`ioccore.events.budget`); past it,
        :class:`~ioccore.events.budget.OverBudgetError` is raised (the only exception).

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
        try:
            records, rejections = self._validate(value, now, expected_feed, deadline)
        except OverBudgetError:
            raise
        except Exception as exc:  # a bug in a check: never raise, never lose an element
            records, rejections = self._guarded_slow(value, now, expected_feed, exc,
                                                     deadline)
        return records, collapse_runs(rejections)

    def accept_one(self, value: bytes, now: float, expected_feed: str | None
                   ) -> Record | None:
        """The common message in one call: one JSON object (first byte ``{``, at most
        :data:`ONE_EVENT_FAST_MAX` bytes) that is a valid event: its ``Record``, the one
        :meth:`validate` gives. Anything else is None, and the caller calls
        :meth:`validate`, which names the problem (the key, tombstone and time-budget
        checks are the caller's: stage 1 asks only for keyed values). One typed decode
        and the checks, without validate's per-message wrapping (lists, run collapsing,
        a deadline). A value it declines is decoded twice, bounded by
        :data:`ONE_EVENT_FAST_MAX`: a few µs more for a small invalid message."""
        if not value or value[0] != _OPEN_OBJECT or len(value) > ONE_EVENT_FAST_MAX or \
                len(value) > self.max_message_bytes:
            return None
        try:
            out = self._accept(_ONE_DECODER.decode(value), now, expected_feed,
                               self._limits(now))
        except Exception:  # malformed, or a bug in a check: validate() says which
            return None
        return out if type(out) is Record else None

    def _guarded_slow(self, value: bytes, now: float | None, expected_feed: str | None,
                      exc: Exception, deadline: Deadline | None
                      ) -> tuple[list[Record], list[Rejection]]:
        try:
            return self._slow(value, time.time() if now is None else now, expected_feed,
                              deadline)
        except OverBudgetError:
            raise
        except Exception as again:
            return [], [Rejection(Reason.INTERNAL_ERROR,
                                  f"validator failed: {type(again).__name__}",
                                  bytes(value[:RAW_KEEP_OVERSIZE]), None)]

    def _validate(self, value: bytes, now: float | None, expected_feed: str | None,
                  deadline: Deadline | None) -> tuple[list[Record], list[Rejection]]:
        if now is None:
            now = time.time()
        if len(value) > self.max_message_bytes:
            return [], [Rejection(
                Reason.MESSAGE_TOO_LARGE,
                f"message is {len(value)} bytes; the limit is {self.max_message_bytes}",
                bytes(value[:RAW_KEEP_OVERSIZE]), None)]
        try:
            decoded = _MESSAGE_DECODER.decode(value)
        except DECODE_ERRORS:
            return self._slow(value, now, expected_feed, deadline)
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
                                                env.source_id, env.event_id,
                                                department=env.department))
            return records, rejections
        out = self._accept(decoded, now, expected_feed)
        if type(out) is Record:
            records.append(out)
        else:
            reason, message = out  # type: ignore[misc]
            rejections.append(Rejection(reason, message, value, None,
                                        decoded.source_id, decoded.event_id,
                                        department=decoded.department))
        return records, rejections

    def validate_items(
        self, items: Iterable[bytes], *, now: float | None = None,
        expected_feed: str | None = None, deadline: Deadline | None = None,
    ) -> tuple[list[Record], list[Rejection]]:
        """Validate separate single-event values (e.g. NDJSON lines); ``index`` is the
        position in ``items``. Size limits are the caller's (the HTTP body limit).
        ``deadline`` as for :meth:`validate`."""
        if now is None:
            now = time.time()
        records: list[Record] = []
        rejections: list[Rejection] = []
        for i, raw in enumerate(items):
            check(deadline)
            self._one(bytes(raw), i, now, expected_feed, records, rejections)
        return records, collapse_runs(rejections)

    def _too_many(self, value: bytes, n: int | None) -> Rejection:
        many = f"{n}" if n is not None else f"more than {self.max_events}"
        return Rejection(Reason.TOO_MANY_EVENTS,
                         f"the batch holds {many} elements; at most {self.max_events} a "
                         "message", bytes(value), None,
                         count=n if n is not None else self.max_events + 1)

    # ------------------------------------------------------------------ fast path
    def _accept(self, env: EnvelopeV1, now: float, expected_feed: str | None,
                limits: tuple[datetime, datetime] | None = None) -> Record | Problem:
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
        if has_forbidden(env.event_id + env.source_id + env.department):
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
            if has_forbidden(sb.unit):
                return _forbidden_chars(("body.unit", sb.unit))
            value = sb.value if conv is None else conv(sb.value)
            if not lo <= value <= hi:
                return (Reason.OUT_OF_RANGE,
                        f"{metric} {value:g} {canonical} is outside [{lo:g}, {hi:g}]")
            return Record(
                event_id=env.event_id, source_id=env.source_id, department=env.department,
                feed="sensor", occurred_at=occurred, received_at=now,
                lat=lat, lon=lon, commune_code=code, geo=geo,  # type: ignore[arg-type]
                metric=metric, value=value, unit=canonical)
        if cls is TrafficEnvelopeV1:
            tb: TrafficBodyV1 = env.body  # type: ignore[assignment]
            if has_forbidden(tb.segment_id):
                return _forbidden_chars(("body.segment_id", tb.segment_id))
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
        if has_forbidden(vb.dossier_id + vb.procedure_code + vb.agency):
            return _forbidden_chars(("body.dossier_id", vb.dossier_id),
                                    ("body.procedure_code", vb.procedure_code),
                                    ("body.agency", vb.agency))
        try:
            due_at = vb.due_at.astimezone(UTC)
            resolved_utc = resolved_at.astimezone(UTC) if resolved_at is not None else None
        except (OverflowError, ValueError):
            return (Reason.TIMESTAMP_OUT_OF_RANGE,
                    "body.due_at or body.resolved_at cannot be expressed in UTC")
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
    def _slow(self, value: bytes, now: float, expected_feed: str | None,
              deadline: Deadline | None) -> tuple[list[Record], list[Rejection]]:
        records: list[Record] = []
        rejections: list[Rejection] = []
        if value[:1] != b"[" and value.lstrip()[:1] != b"[":  # (lstrip copies the value)
            self._one(value, None, now, expected_feed, records, rejections)
            return records, rejections
        items: list[bytes] | None
        exact = True
        known: dict[int, EnvelopeV1] = {}  # elements the split decoded already
        try:
            raws = _RAW_LIST_DECODER.decode(value)
        except DECODE_ERRORS:
            items = split_array(value, max_items=self.max_events, deadline=deadline,
                                events=known)
            exact = False
        else:
            if len(raws) > self.max_events:  # before copying 300k elements' bytes
                return records, [self._too_many(value, len(raws))]
            items = _items(value, raws)
        if items is None:
            reason, message = unparseable(value)
            rejections.append(Rejection(reason, message, value, None))
            return records, rejections
        if not items:
            rejections.append(Rejection(Reason.EMPTY_BATCH, "the batch array is empty",
                                        value, None))
            return records, rejections
        if len(items) > self.max_events:
            rejections.append(self._too_many(value, len(items) if exact else None))
            return records, rejections
        seen: dict[bytes, Rejection] = {}  # tiny elements: one diagnosis per spelling
        big, bounds, is_tiny = _by_size(items)
        # elements that could be events: one typed decode for all of them (verdicts do
        # not depend on neighbours), each on its own only when one does not decode
        if (len(big) < 2 and not known) or not self._together(
                items, big, now, expected_feed, records, rejections, known):
            for k, i in enumerate(big):
                if not k % 64:
                    check(deadline)
                self._one(items[i], i, now, expected_feed, records, rejections)
        values = _Values(value if exact else None)
        of_big = len(rejections)
        # the runs alternate between the size classes: the tiny ones are every other
        for k in range(0 if is_tiny[0] else 1, len(bounds) - 1, 2):
            a, b = bounds[k], bounds[k + 1]
            if k % 128 < 2:  # every 64 runs (k steps by 2, from 0 or 1)
                check(deadline)
            if b - a > RUN_COLLAPSE:
                rejections.append(self._tiny_run(items, a, b, now, expected_feed, seen,
                                                 values))
            elif b - a == 1 and items[a] in seen:  # e.g. the same junk between events
                raw = items[a]
                same = seen[raw]
                rejections.append(Rejection(same.reason, same.message, raw, a,
                                            same.source_id, same.event_id, 1,
                                            same.department))
            else:
                for i in range(a, b):
                    rejections.append(self._tiny(items[i], i, now, expected_feed, seen))
        if of_big and len(rejections) > of_big:  # each part is in order already
            rejections.sort(key=_position)
        return records, rejections

    def _together(self, items: list[bytes], idx: list[int], now: float,
                  expected_feed: str | None, records: list[Record],
                  rejections: list[Rejection],
                  known: dict[int, EnvelopeV1] | None = None) -> bool:
        """Validate ``items[i] for i in idx`` (e.g. the valid events the splitter found
        again between malformed elements) with one typed decode in C, as a batch that
        parses is; False (nothing added) when one of them does not decode: then each is
        taken on its own. Same verdicts as :meth:`_one` per element. ``known``: the
        envelopes of elements the splitter decoded already (the same typed decode of the
        same bytes), by index; only the others are decoded here."""
        missing = [i for i in idx if i not in known] if known else idx
        decoded: list[EnvelopeV1] = []
        if missing:
            try:
                decoded = _LIST_DECODER.decode(
                    b"[" + b",".join([items[i] for i in missing]) + b"]")
            except DECODE_ERRORS:
                return False
        if known:
            if missing:
                known = {**known, **dict(zip(missing, decoded, strict=True))}
            decoded = [known[i] for i in idx]
        limits = self._limits(now)
        for i, env in zip(idx, decoded, strict=True):
            try:
                out = self._accept(env, now, expected_feed, limits)
            except Exception as exc:  # a bug in a check costs this element only
                rejections.append(Rejection(Reason.INTERNAL_ERROR,
                                            f"validator failed: {type(exc).__name__}",
                                            items[i], i))
                continue
            if type(out) is Record:
                records.append(out)
            else:
                reason, message = out  # type: ignore[misc]
                rejections.append(Rejection(reason, message, items[i], i, env.source_id,
                                            env.event_id, department=env.department))
        return True

    def _tiny(self, raw: bytes, index: int, now: float, expected_feed: str | None,
              seen: dict[bytes, Rejection]) -> Rejection:
        """The rejection of an element shorter than :data:`TINY` (never an event), from
        ``seen`` when the same bytes were diagnosed before in this message."""
        known = seen.get(raw)
        if known is None:
            records: list[Record] = []
            found: list[Rejection] = []
            self._one(raw, index, now, expected_feed, records, found)
            if records or len(found) != 1:  # cannot happen (TINY); never lose one
                raise AssertionError("a tiny element was accepted")
            known = found[0]
            if len(seen) < 4096:
                seen[raw] = known
        return Rejection(known.reason, known.message, raw, index, known.source_id,
                         known.event_id, department=known.department)

    def _tiny_run(self, items: list[bytes], a: int, b: int, now: float,
                  expected_feed: str | None, seen: dict[bytes, Rejection],
                  values: _Values | None = None) -> Rejection:
        """One rejection for a run of more than :data:`RUN_COLLAPSE` tiny elements
        (``items[a:b]``), in bulk: the spellings are counted in C and each distinct one
        is diagnosed once, so 5,000 one-byte elements cost a few dictionary operations,
        not 5,000 diagnoses and rejections (the run would be merged into one anyway).
        Only the reason is needed here: a spelling that parses as a non-object or as an
        object without ``schema_version`` gets the reason the diagnosis would give after
        one C parse (:func:`_tiny_reason`), so distinct spellings cost little too;
        ``values``: the batch's values when it parsed whole (then, for many spellings,
        that is a type check per element and only the other spellings are counted). A
        run of one spelling repeated (the usual flood, ``[1,1,...]``) is recognised by
        one comparison per element in C, without hashing."""
        tally: dict[str, int] = {}
        run = items[a:b]
        joined = b",".join(run)
        counted: Counter[bytes] | dict[bytes, int] = {}
        parsed = None
        if values is not None and len(set(run[:128])) > 64:  # many spellings, likely
            parsed = values.get()
        if not parsed:
            # one spelling repeated (the usual flood) is recognised by comparisons in C
            counted = {run[0]: len(run)} if run.count(run[0]) == len(run) else Counter(run)
            if values is not None and len(counted) > 64:
                parsed = values.get()
        if parsed:  # many spellings: read the values (their types sorted out in C)
            dicts = list(itertools.compress(range(a, b), map(
                operator.is_, map(type, parsed[a:b]), itertools.repeat(dict))))
            others = [items[i] for i in dicts
                      if cast("dict[str, object]", parsed[i]).get("schema_version") is not None]
            scalars, missing = b - a - len(dicts), len(dicts) - len(others)
            for bulk, k in ((Reason.NOT_AN_OBJECT, scalars), (Reason.MISSING_FIELD, missing)):
                if k:
                    tally[str(bulk)] = k
            counted = Counter(others)
        for raw, k in counted.items():
            known = seen.get(raw)
            reason = _tiny_reason(raw) if known is None else str(known.reason)
            if reason is None:
                reason = str(self._tiny(raw, a, now, expected_feed, seen).reason)
            tally[reason] = tally.get(reason, 0) + k
        return _run_rejection(tally, joined, a, b - a)

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
        if raw[:1] != b"{" and raw.lstrip()[:1] != b"{":  # not an object: no ids to read
            reason, message = diagnose(raw, expected_feed)
            rejections.append(Rejection(reason, message, raw, index))
            return
        try:
            env = _ONE_DECODER.decode(raw)
        except DECODE_ERRORS as exc:
            (reason, message), obj = diagnose_read(raw, expected_feed,
                                                   fallback=str(exc)[:200])
            if obj is not NOT_READ:  # the diagnosis parsed it: no second parse
                sid, eid, dep = _ids_of(obj)
            elif reason == Reason.TOO_DEEPLY_NESTED:
                sid, eid, dep = _deep_ids(raw)
            else:  # not JSON: the ids cannot be read either
                sid = eid = dep = None
            rejections.append(Rejection(reason, message, raw, index, sid, eid,
                                        department=dep))
            return
        out = self._accept(env, now, expected_feed)
        if type(out) is Record:
            records.append(out)
        else:
            reason, message = out  # type: ignore[misc]
            rejections.append(Rejection(reason, message, raw, index, env.source_id,
                                        env.event_id, department=env.department))


_BLANKS: Final = (b" ", b"\t", b"\r", b"\n")


def _items(value: bytes, raws: list[msgspec.Raw]) -> list[bytes]:
    """The elements' bytes of a batch that parsed whole. When its text holds as many
    commas as separators (its elements hold none: scalars, ``{}``, one-field objects),
    one split in C cuts it (a copy of each element through the buffer protocol cost
    0.1 us, more than the rest of a run of tiny elements); else each element is copied."""
    lo = len(value) - len(value.lstrip(_WS)) + 1  # after the '['
    hi = len(value.rstrip(_WS)) - 1  # the ']'
    if value.count(b",", lo, hi) != len(raws) - 1:
        return list(map(bytes, raws))
    inner = value[lo:hi]
    parts = inner.split(b",")
    if any(blank in inner for blank in _BLANKS):
        return [part.strip(_WS) for part in parts]
    return parts


def _by_size(items: list[bytes]) -> tuple[list[int], list[int], list[bool]]:
    """(indexes of the elements that could be events, bounds of the runs of alike size
    class, per element whether it is tiny): in Python for a few elements (numpy's fixed
    cost dominates them), in numpy for many."""
    n = len(items)
    if n <= 64:
        is_tiny = [len(raw) < TINY for raw in items]
        big = [i for i, t in enumerate(is_tiny) if not t]
        bounds = [0, *(i for i in range(1, n) if is_tiny[i] != is_tiny[i - 1]), n]
        return big, bounds, is_tiny
    tiny = np.fromiter(map(len, items), dtype=np.int64, count=n) < TINY
    many: list[int] = (~tiny).nonzero()[0].tolist()
    edges: list[int] = ((tiny[1:] != tiny[:-1]).nonzero()[0] + 1).tolist()
    return many, [0, *edges, n], tiny.tolist()  # a list: numpy's scalar reads cost 0.1 us


class _Values:
    """A batch's values, parsed generically once and only when first asked for."""

    __slots__ = ("_parsed", "_value")

    def __init__(self, value: bytes | None) -> None:
        """``value``: the batch when it parsed whole, else None (no values)."""
        self._value = value
        self._parsed: list[object] | None = None

    def get(self) -> list[object] | None:
        if self._value is None:
            return None
        if self._parsed is None:
            self._parsed = _values(self._value)
        return self._parsed


def _values(value: bytes) -> list[object]:
    """A batch's values, parsed generically ([]: they do not parse so, e.g. ``1e999``;
    then each spelling is read on its own)."""
    try:
        values = _IDS_DECODER.decode(value)
    except DECODE_ERRORS:
        return []
    return values if isinstance(values, list) else []


def _tiny_reason(raw: bytes) -> str | None:
    """The reason :func:`~ioccore.events.diagnose.diagnose` gives an element shorter
    than :data:`TINY` when it parses as a non-object (``not_an_object``) or as an object
    without ``schema_version`` (``missing_field``; such an element never decodes as an
    envelope and is never too deep); else None (diagnose it)."""
    try:
        obj = _IDS_DECODER.decode(raw)
    except DECODE_ERRORS:
        return None
    if type(obj) is not dict:
        return str(Reason.NOT_AN_OBJECT)
    return str(Reason.MISSING_FIELD) if obj.get("schema_version") is None else None


def _position(rejection: Rejection) -> int:
    return rejection.index or 0


def _forbidden_chars(*fields: tuple[str, str]) -> Problem:
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
    (raw: the elements' bytes joined by commas, ``count``: how many); others stay. One
    pass with running sums: malformed elements between valid events (no run at all)
    cost a few comparisons each."""
    if len(rejections) <= 1:
        return rejections
    total = 0
    for rej in rejections:
        total += rej.count
    if total <= limit:
        return rejections
    out: list[Rejection] = []
    first = 0  # the current run is rejections[first:k], ``count`` elements in all
    count = 0
    follows: int | None = None  # the index a rejection must have to continue the run
    for k, rej in enumerate(rejections):
        index = rej.index
        if index is None or index != follows:
            if k - first == 1 and count <= limit:  # a lone rejection (junk between events)
                out.append(rejections[first])
            else:
                _flush(rejections, first, k, count, limit, out)
            first, count = k, 0
            if index is None:
                out.append(rej)
                first, follows = k + 1, None
                continue
        count += rej.count
        follows = index + rej.count
    _flush(rejections, first, len(rejections), count, limit, out)
    return out


def _flush(rejections: list[Rejection], a: int, b: int, count: int, limit: int,
           out: list[Rejection]) -> None:
    if b <= a:
        return
    if count > limit:
        out.append(_merge(rejections[a:b]))
    elif b - a == 1:
        out.append(rejections[a])
    else:
        out.extend(rejections[a:b])


def _merge(run: list[Rejection]) -> Rejection:
    if len(run) == 1 and run[0].tally is not None:
        return run[0]
    tally: dict[str, int] = {}
    for r in run:
        for reason, k in (r.tally or {str(r.reason): r.count}).items():
            tally[reason] = tally.get(reason, 0) + k
    return _run_rejection(tally, b",".join(r.raw for r in run), run[0].index or 0,
                          sum(r.count for r in run))


def _run_rejection(tally: dict[str, int], raw: bytes, first: int, count: int) -> Rejection:
    reasons = ", ".join(f"{k} x{v}" for k, v in sorted(tally.items(), key=lambda kv: -kv[1]))
    reason = next(iter(tally)) if len(tally) == 1 else Reason.REJECTED_RUN
    return Rejection(reason, f"{count} consecutive elements (index {first}.."
                     f"{first + count - 1}) rejected: {reasons}", raw, first, count=count,
                     tally=tally)



class _Ids(msgspec.Struct):
    """The three ids of an element, every other field skipped unbuilt."""

    source_id: object = None
    event_id: object = None
    department: object = None


_DEEP_IDS_DECODER = msgspec.json.Decoder(_Ids)


def _deep_ids(raw: bytes) -> tuple[str | None, str | None, str | None]:
    """The ids of an element too deep to be an event, without building its levels
    (a generic parse of 1 MiB of ``{"a":`` built every one before the ids were read).
    The skipped values are checked less strictly than a full parse (invalid UTF-8,
    ``1e999``), so ids may be read where a full parse would refuse: they are a claim
    either way, never a proof."""
    try:
        ids = _DEEP_IDS_DECODER.decode(raw)
    except DECODE_ERRORS:
        return None, None, None
    return _ids_of({"source_id": ids.source_id, "event_id": ids.event_id,
                    "department": ids.department})


def _ids_of(obj: object) -> tuple[str | None, str | None, str | None]:
    """source_id, event_id and department of a rejected element's generic value (None
    each: not there, or not a string)."""
    if not isinstance(obj, dict):
        return None, None, None
    sid, eid, dep = obj.get("source_id"), obj.get("event_id"), obj.get("department")
    return (sid if isinstance(sid, str) else None, eid if isinstance(eid, str) else None,
            dep if isinstance(dep, str) else None)
