"""Stage 1's pure part: validate and geo-enrich one batch of raw messages.

Contract of :meth:`Prepare.run`: pure CPU work, no I/O, never raises for bad input, safe
to run in a worker thread (:class:`streams.stage1.Stage1` does, under a time budget).
Every event of every message ends up either in ``records`` (valid, with commune and
province codes, its :class:`~ioccore.events.record.Origin` naming its raw message and
batch position) or in ``deadletters`` (its original bytes, a reason and where it came
from). Geo lookups run once per batch, columnar. It remembers nothing about events: the
only state is the per-partition mark that tells a re-delivered message from a new one.
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import NamedTuple, Protocol

import numpy as np

from ioccore import metrics
from ioccore.errors import GeoError
from ioccore.events.budget import Deadline, OverBudgetError
from ioccore.events.reasons import Reason
from ioccore.events.record import UNASSIGNED, Feed, Origin, Record
from streams import deadletters
from streams.deadletters import DeadLetter, Elements, Publisher, Raw

log = logging.getLogger(__name__)


class InMessage(NamedTuple):
    """One Kafka message as stage 1 sees it (a named tuple: one is built per raw message,
    and a frozen dataclass costs about three times as much to make)."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    """``None`` for a tombstone (the validator gives it its reason)."""


class RejectionLike(Protocol):
    reason: str
    message: str
    raw: bytes
    index: int | None
    count: int


class ValidatorLike(Protocol):
    def validate(self, value: bytes | None, *, now: float | None = None,
                 expected_feed: str | None = None, key: bytes | None = None,
                 check_key: bool = False, deadline: Deadline | None = None
                 ) -> tuple[list[Record], Sequence[RejectionLike]]: ...

    def accept_one(self, value: bytes, now: float, expected_feed: str | None
                   ) -> Record | None: ...


class CommuneIndexLike(Protocol):
    def lookup(self, lat: np.ndarray, lon: np.ndarray, source_ids: list[str] | None
               ) -> tuple[np.ndarray, np.ndarray]: ...

    def province_of(self, commune_codes: np.ndarray) -> np.ndarray: ...

    def check_code(self, code: str) -> tuple[str, str]: ...


@dataclass(slots=True)
class Prepared:
    """What :meth:`Prepare.run` made of a batch."""

    records: list[Record] = field(default_factory=list)
    deadletters: list[DeadLetter] = field(default_factory=list)
    redelivered: set[Origin] = field(default_factory=set)
    """Messages (:attr:`Origin.message`) handed out again by Kafka (rebalance, retry):
    their events were remembered the first time and are not duplicates of themselves."""
    received: Counter[str] = field(default_factory=Counter)
    rejected: Counter[tuple[str, str]] = field(default_factory=Counter)
    """(feed, reason) -> events; metrics are counted once the batch is settled."""

    def merge(self, later: Prepared) -> Prepared:
        """This and ``later`` (the next slice of the same batch) as one."""
        self.records.extend(later.records)
        self.deadletters.extend(later.deadletters)
        self.redelivered |= later.redelivered
        self.received.update(later.received)
        self.rejected.update(later.rejected)
        return self


class Prepare:
    """Validate + geo-enrich; the hot path is per batch, never per-event I/O."""

    def __init__(self, validator: ValidatorLike, index: CommuneIndexLike,
                 feed_of_topic: dict[str, Feed], *, publisher: Publisher,
                 message_budget_s: float | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        """``message_budget_s``: the time one message may take to validate (None: no
        limit); a message over it is dead-lettered whole as ``over_budget``."""
        self._validator = validator
        self._index = index
        self._feed_of_topic = feed_of_topic
        self._publisher = publisher
        self._budget_s = message_budget_s
        self._clock = clock
        self._next_offset: dict[tuple[str, int], int] = {}
        """Per partition, the offset after the last message this process validated: a
        message below it is a re-delivery (rebalance, retry), not a duplicate."""

    def run(self, messages: Sequence[InMessage], now: float | None = None) -> Prepared:
        now = time.time() if now is None else now
        out = Prepared()
        # per batch, not per message: the topic's feed (department topics are parsed)
        # and one deadline restarted for each message that needs the full validation
        feeds: dict[str, tuple[str, str | None]] = {}
        deadline = (None if self._budget_s is None else
                    Deadline.after(self._budget_s, self._clock))
        accept_one = self._validator.accept_one
        next_offset = self._next_offset
        records, received = out.records, out.received
        for msg in messages:
            topic, partition, offset, key, value = msg
            known = feeds.get(topic)
            if known is None:
                feed = self._feed_of_topic.get(topic, "unknown")
                known = feeds[topic] = (feed, feed if feed != "unknown" else None)
            tp = (topic, partition)
            if offset < next_offset.get(tp, -1):
                out.redelivered.add(Origin(topic, partition, offset))
            else:
                next_offset[tp] = offset + 1
            if key and value:  # the one-event message (most producers), when valid
                rec = accept_one(value, now, known[1])
                if rec is not None:
                    received[known[0]] += 1
                    rec.origin = Origin(topic, partition, offset, None)
                    records.append(rec)
                    continue
            if deadline is not None:
                deadline.restart()
            self._message(msg, known, now, out, deadline)
        out.records = self._enrich(out.records, out, messages)
        return out

    def _message(self, msg: InMessage, known: tuple[str, str | None], now: float,
                 out: Prepared, deadline: Deadline | None) -> None:
        feed = known[0]
        try:
            valid, rejections = self._validator.validate(
                msg.value, now=now, expected_feed=known[1], key=msg.key, check_key=True,
                deadline=deadline)
        except OverBudgetError as exc:
            self._whole(msg, feed, Reason.OVER_BUDGET, exc.message,
                        self._publisher(msg.topic, None), out)
            return
        except Exception as exc:  # a validator bug must not stall the partition
            log.exception("validator failed on %s/%d@%d", msg.topic, msg.partition,
                          msg.offset)
            self._whole(msg, feed, Reason.INTERNAL_ERROR,
                        f"validator raised {type(exc).__name__}",
                        self._publisher(msg.topic, None), out)
            return
        if len(valid) == 1 and not rejections and _one_object(msg.value):
            # the one-event message (most producers): no batch position to work out
            out.received[feed] += 1
            valid[0].origin = Origin(msg.topic, msg.partition, msg.offset, None)
            out.records.append(valid[0])
            return
        out.received[feed] += len(valid) + sum(r.count for r in rejections)
        positions = _record_positions(msg.value, len(valid), rejections)
        for rec, index in zip(valid, positions, strict=True):
            rec.origin = Origin(msg.topic, msg.partition, msg.offset, index)
        out.records.extend(valid)
        logged = log.isEnabledFor(logging.INFO)  # one check, not a dict per element
        letters, rejected, publisher = out.deadletters, out.rejected, self._publisher
        key, topic, partition, offset = msg.key, msg.topic, msg.partition, msg.offset
        by_claim: dict[str | None, str] = {}  # the publisher is a function of the claim
        for rej in rejections:
            claimed = _claimed(rej)
            who = by_claim.get(claimed)
            if who is None:
                who = by_claim[claimed] = publisher(topic, claimed)
            letters.append(_new_tuple(DeadLetter, (  # every field, in order
                key, rej.raw, rej.reason, rej.message, feed, topic, partition, offset,
                rej.index, "original", who)))
            rejected[(feed, rej.reason)] += rej.count
            if logged:
                log.info("rejected: %s", rej.message, extra={
                    "event_id": getattr(rej, "event_id", None),
                    "source_id": getattr(rej, "source_id", None),
                    "reason": str(rej.reason), "feed": feed, "topic": msg.topic,
                    "partition": msg.partition, "offset": msg.offset})

    def _whole(self, msg: InMessage, feed: str, reason: str, message: str, publisher: str,
               out: Prepared) -> None:
        out.deadletters.append(deadletters.rejected(
            key=msg.key, raw=msg.value or b"", reason=reason, message=message, feed=feed,
            topic=msg.topic, partition=msg.partition, offset=msg.offset, index=None,
            department=publisher))
        out.received[feed] += 1
        out.rejected[(feed, reason)] += 1
        log.warning("message dead-lettered whole (%s): %s", reason, message, extra={
            "reason": reason, "feed": feed, "topic": msg.topic, "partition": msg.partition,
            "offset": msg.offset})

    def _enrich(self, records: list[Record], out: Prepared,
                messages: Sequence[InMessage]) -> list[Record]:
        """Fill commune/province codes; events with a bad commune code are dead-lettered.

        The records kept stay in arrival order, located or not: of two copies of one
        identity the first to arrive is the one stored, whatever the batches were (they
        were once coded first, so a later coded copy beat an earlier located one when
        both fell in one batch)."""
        found: Elements | None = None  # built when first needed
        outcomes: Counter[str] = Counter()
        kept: list[Record] = []
        located: list[Record] = []
        for rec in records:
            if rec.geo == "code":
                try:
                    code, outcome = self._index.check_code(rec.commune_code)
                except GeoError as exc:
                    reason = str(getattr(exc, "reason", Reason.UNKNOWN_COMMUNE_CODE))
                    if found is None:
                        found = elements_of(messages)
                    out.deadletters.append(deadletters.of_record(
                        rec, reason, str(exc), found, self._publisher))
                    out.rejected[(rec.feed, reason)] += 1
                    continue
                rec.commune_code = code
                rec.geo = outcome  # type: ignore[assignment]
                outcomes[outcome] += 1
                kept.append(rec)
            elif rec.lat is not None and rec.lon is not None:
                located.append(rec)  # its codes are filled in below, in place
                kept.append(rec)
            else:  # the validator guarantees a location or a code; keep, never drop
                rec.geo = "unassigned"
                outcomes["unassigned"] += 1
                kept.append(rec)
        if located:
            lat = np.fromiter((r.lat for r in located), dtype=np.float64, count=len(located))
            lon = np.fromiter((r.lon for r in located), dtype=np.float64, count=len(located))
            codes, geo_outcomes = self._index.lookup(lat, lon, [r.source_id for r in located])
            for rec, code, outcome in zip(located, codes, geo_outcomes, strict=True):
                rec.commune_code = str(code) if code is not None else UNASSIGNED
                rec.geo = outcome
                outcomes[str(outcome)] += 1
        if kept:
            commune_codes = np.array([r.commune_code for r in kept], dtype=object)
            provinces = self._index.province_of(commune_codes)
            for rec, province in zip(kept, provinces, strict=True):
                rec.province_code = str(province) if province else UNASSIGNED
        for outcome, n in outcomes.items():
            metrics.GEO_LOOKUPS.labels(outcome).inc(n)
        return kept


def slices(messages: Sequence[InMessage], limit: int
           ) -> Iterator[tuple[Sequence[InMessage], bool]]:
    """``messages`` cut, in order, into runs of at most ``limit`` bytes of values, each
    paired with False (validate on the event loop), and every message over ``limit``
    alone, paired with True (validate in a worker thread). Validation is linear in the
    bytes, so a run blocks the loop for a bounded time whatever it holds."""
    start, size = 0, 0
    for i, msg in enumerate(messages):
        n = len(msg.value) if msg.value is not None else 0
        if n > limit:
            if start < i:
                yield messages[start:i], False
            yield messages[i:i + 1], True
            start, size = i + 1, 0
            continue
        if size + n > limit and start < i:
            yield messages[start:i], False
            start, size = i, 0
        size += n
    if start < len(messages):
        yield messages[start:], False


def elements_of(messages: Sequence[InMessage]) -> Elements:
    """The batch's raw messages, for dead letters of records (each cut once, if at all)."""
    raws: dict[Origin, Raw] = {Origin(m.topic, m.partition, m.offset): (m.key, m.value or b"")
                               for m in messages}
    return Elements(raws)


def _one_object(value: bytes | None) -> bool:
    """Whether ``value`` is a single JSON value rather than an array (its first byte after
    whitespace is not ``[``), without copying it (``lstrip`` would)."""
    if not value:
        return True
    first = value[0]
    if first not in _JSON_SPACE:
        return first != _OPEN_ARRAY
    return value.lstrip()[:1] != b"["


_new_tuple = tuple.__new__
"""A named tuple from all its fields without the generated ``__new__``'s Python frame
(0.25 against 0.9 us: stage 1 builds one dead letter per malformed element)."""

_JSON_SPACE = frozenset(b" \t\r\n")
_OPEN_ARRAY = ord("[")


def _record_positions(value: bytes | None, n: int, rejections: Sequence[RejectionLike]
                      ) -> list[int | None]:
    """Batch positions of a message's ``n`` accepted events: the positions no rejection
    covers, in order (every element is in exactly one place: the validator's contract).
    A single-event message has none (``None``)."""
    if not n:
        return []
    if value is None or _one_object(value):
        return [None] * n
    covered: set[int] = set()
    for rej in rejections:
        index = rej.index
        if index is not None:
            if rej.count == 1:  # malformed elements between events: one each
                covered.add(index)
            else:
                covered.update(range(index, index + rej.count))
    # the first n + |covered| positions hold at least n that no rejection covers
    out: list[int | None] = [i for i in range(n + len(covered)) if i not in covered]
    return out[:n]


def _claimed(rej: RejectionLike) -> str | None:
    """The department a rejected element names, when it could be read."""
    dep = getattr(rej, "department", None)
    return dep if isinstance(dep, str) else None
