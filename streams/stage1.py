"""Stage 1: validate and enrich a batch of raw messages (stateless, any number of workers).

Contract: ``process(messages)`` never raises for bad input. Every event of every message
ends up either in ``enriched`` (valid, with commune and province codes, grouped by
commune for the commune-keyed ``ioc.enriched.v1``) or in ``deadletters`` (its original
bytes, a reason code and where it came from). Geo lookups run once per batch, columnar.
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence, Set
from dataclasses import dataclass, field
from typing import NamedTuple, Protocol

import numpy as np

from ioccore import metrics
from ioccore.errors import GeoError
from ioccore.events.reasons import Reason
from ioccore.events.record import UNASSIGNED, Feed, Origin, Record
from streams.originals import element_of
from streams.stage import TopicPartition

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


@dataclass(frozen=True, slots=True)
class DeadLetter:
    """An event that cannot be processed: its bytes exactly as received, and why."""

    key: bytes | None
    value: bytes
    reason: str
    message: str
    feed: str
    source_topic: str
    source_partition: int
    source_offset: int
    batch_index: int | None
    value_kind: str = "original"
    """``original``: the bytes as received; ``enriched-record``: the record as stage 1
    wrote it (only when the original could not be read back from the raw topic)."""

    def headers(self) -> list[tuple[str, bytes]]:
        """Kafka headers carrying the reason and origin (the value stays the raw bytes)."""
        return [
            ("ioc-reason", self.reason.encode()),
            ("ioc-message", self.message.encode()),
            ("ioc-feed", self.feed.encode()),
            ("ioc-source-topic", self.source_topic.encode()),
            ("ioc-source-partition", str(self.source_partition).encode()),
            ("ioc-source-offset", str(self.source_offset).encode()),
            ("ioc-batch-index", b"" if self.batch_index is None else
             str(self.batch_index).encode()),
            ("ioc-value-kind", self.value_kind.encode()),
        ]


class RejectionLike(Protocol):
    reason: str
    message: str
    raw: bytes
    index: int | None


class ValidatorLike(Protocol):
    def validate(self, value: bytes | None, *, now: float | None = None,
                 expected_feed: str | None = None, redelivered: bool = False,
                 key: bytes | None = None, check_key: bool = False
                 ) -> tuple[list[Record], Sequence[RejectionLike]]: ...


class CommuneIndexLike(Protocol):
    def lookup(self, lat: np.ndarray, lon: np.ndarray, source_ids: list[str] | None
               ) -> tuple[np.ndarray, np.ndarray]: ...

    def province_of(self, commune_codes: np.ndarray) -> np.ndarray: ...

    def check_code(self, code: str) -> tuple[str, str]: ...


@dataclass(slots=True)
class Stage1Output:
    enriched: dict[str, list[Record]] = field(default_factory=dict)
    deadletters: list[DeadLetter] = field(default_factory=list)
    valid: int = 0


class Stage1:
    """Validate + geo-enrich; the hot path is per batch, never per-event I/O."""

    def __init__(self, validator: ValidatorLike, index: CommuneIndexLike,
                 feed_of_topic: dict[str, Feed]) -> None:
        self._validator = validator
        self._index = index
        self._feed_of_topic = feed_of_topic
        self._next_offset: dict[tuple[str, int], int] = {}
        """Per partition, the offset after the last message this process validated: a
        message below it is a re-delivery (rebalance, retry), not a duplicate."""

    def process(self, messages: Sequence[InMessage], now: float | None = None) -> Stage1Output:
        now = time.time() if now is None else now
        out = Stage1Output()
        records: list[Record] = []
        received: Counter[str] = Counter()
        rejected: Counter[tuple[str, str]] = Counter()
        for msg in messages:
            feed = self._feed_of_topic.get(msg.topic, "unknown")
            tp = (msg.topic, msg.partition)
            redelivered = msg.offset < self._next_offset.get(tp, -1)
            self._next_offset[tp] = max(msg.offset + 1, self._next_offset.get(tp, -1))
            try:
                valid, rejections = self._validator.validate(
                    msg.value, now=now, expected_feed=feed if feed != "unknown" else None,
                    redelivered=redelivered, key=msg.key, check_key=True)
            except Exception as exc:  # a validator bug must not stall the partition
                log.exception("validator failed on %s/%d@%d", msg.topic, msg.partition,
                              msg.offset)
                out.deadletters.append(self._dead(msg, None, msg.value or b"",
                                                  Reason.INTERNAL_ERROR,
                                                  f"validator raised {type(exc).__name__}",
                                                  feed))
                rejected[(feed, Reason.INTERNAL_ERROR)] += 1
                continue
            received[feed] += len(valid) + sum(getattr(r, "count", 1) for r in rejections)
            origin = Origin(msg.topic, msg.partition, msg.offset)
            for rec in valid:
                rec.origin = origin
            records.extend(valid)
            for rej in rejections:
                out.deadletters.append(self._dead(msg, rej.index, rej.raw, rej.reason,
                                                  rej.message, feed))
                rejected[(feed, rej.reason)] += getattr(rej, "count", 1)
                log.info("rejected: %s", rej.message, extra={
                    "event_id": getattr(rej, "event_id", None),
                    "source_id": getattr(rej, "source_id", None), "reason": str(rej.reason),
                    "feed": feed, "topic": msg.topic, "partition": msg.partition,
                    "offset": msg.offset})
        kept = self._enrich(records, out, rejected, messages)
        for rec in kept:
            out.enriched.setdefault(rec.commune_code, []).append(rec)
        out.valid = len(kept)
        for feed_name, n in received.items():
            metrics.EVENTS_RECEIVED.labels(feed_name).inc(n)
        valid_by_feed = Counter(r.feed for r in kept)
        for feed_name, n in valid_by_feed.items():
            metrics.EVENTS_VALID.labels(feed_name).inc(n)
        for (feed_name, reason), n in rejected.items():
            metrics.EVENTS_REJECTED.labels(feed_name, reason).inc(n)
        return out

    def _dead(self, msg: InMessage, index: int | None, raw: bytes, reason: str,
              message: str, feed: str) -> DeadLetter:
        return DeadLetter(key=msg.key, value=raw, reason=reason, message=message, feed=feed,
                          source_topic=msg.topic, source_partition=msg.partition,
                          source_offset=msg.offset, batch_index=index)

    def _enrich(self, records: list[Record], out: Stage1Output,
                rejected: Counter[tuple[str, str]],
                messages: Sequence[InMessage]) -> list[Record]:
        """Fill commune/province codes; events with a bad commune code are dead-lettered."""
        by_origin: dict[tuple[str, int, int], InMessage] = {}  # built when first needed
        outcomes: Counter[str] = Counter()
        kept: list[Record] = []
        located: list[Record] = []
        for rec in records:
            if rec.geo == "code":
                try:
                    code, outcome = self._index.check_code(rec.commune_code)
                except GeoError as exc:
                    reason = str(getattr(exc, "reason", Reason.UNKNOWN_COMMUNE_CODE))
                    if not by_origin:
                        by_origin = {(m.topic, m.partition, m.offset): m for m in messages}
                    out.deadletters.append(_dead_record(rec, reason, str(exc), by_origin))
                    rejected[(rec.feed, reason)] += 1
                    continue
                rec.commune_code = code
                rec.geo = outcome  # type: ignore[assignment]
                outcomes[outcome] += 1
                kept.append(rec)
            elif rec.lat is not None and rec.lon is not None:
                located.append(rec)
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
            kept.extend(located)
        if kept:
            commune_codes = np.array([r.commune_code for r in kept], dtype=object)
            provinces = self._index.province_of(commune_codes)
            for rec, province in zip(kept, provinces, strict=True):
                rec.province_code = str(province) if province else UNASSIGNED
        for outcome, n in outcomes.items():
            metrics.GEO_LOOKUPS.labels(outcome).inc(n)
        return kept


def _dead_record(rec: Record, reason: str, message: str,
                 by_origin: dict[tuple[str, int, int], InMessage]) -> DeadLetter:
    """A dead letter for a validated record: its element's original bytes and origin."""
    o = rec.origin
    msg = by_origin.get((o.topic, o.partition, o.offset)) if o is not None else None
    if o is not None and msg is not None:
        value, index = element_of(msg.value or b"", rec.source_id, rec.event_id)
        return DeadLetter(key=msg.key, value=value, reason=reason, message=message,
                          feed=rec.feed, source_topic=o.topic, source_partition=o.partition,
                          source_offset=o.offset, batch_index=index)
    from ioccore.events.record import RECORDS_ENCODER

    return DeadLetter(key=rec.source_id.encode(), value=RECORDS_ENCODER.encode(rec),
                      reason=reason, message=message, feed=rec.feed, source_topic="",
                      source_partition=-1, source_offset=-1, batch_index=None,
                      value_kind="enriched-record")


_LATENCY_SAMPLE = 20  # observations per commune per batch

def observe_latency(out: Stage1Output) -> None:
    """occurred_at -> delivered, for a sample of the records just sent."""
    delivered = time.time()
    for records in out.enriched.values():  # a sample per commune is plenty
        for rec in records[:_LATENCY_SAMPLE]:
            metrics.LATENCY_PROCESSED.labels(rec.feed).observe(
                max(0.0, delivered - rec.occurred_at.timestamp()))


SendEnriched = Callable[[dict[str, list[Record]], list[DeadLetter]], Awaitable[None]]
"""Sends enriched records (by commune) and dead letters; returns once Kafka has them."""


class ValidateEnrich:
    """Stage 1 under the :class:`~streams.stage.Stage` contract: validate, enrich, send.

    ``process`` returns once every enriched and dead-letter message is delivered, so the
    raw batch is acknowledged only then. A retried batch sends again (at-least-once; the
    messages' offsets are below the per-partition mark, so stage 1 does not call its own
    re-delivery a duplicate, and stage 2 stores each event once).
    """

    name = "stage1"

    def __init__(self, stage1: Stage1, send: SendEnriched) -> None:
        self._stage1 = stage1
        self._send = send

    async def process(self, batch: Sequence[InMessage]) -> Stage1Output:
        out = self._stage1.process(batch)
        await self._send(out.enriched, out.deadletters)
        observe_latency(out)
        return out

    def on_assign(self, partitions: Set[TopicPartition]) -> None:
        """Nothing to prepare (stage 1 is stateless but for its re-delivery marks)."""

    def on_revoke(self, partitions: Set[TopicPartition]) -> None:
        """Re-delivery marks are kept: a partition that comes back re-reads from its
        committed offset, and those messages are re-deliveries, not duplicates."""

    async def close(self) -> None:
        """Nothing to release (the faust producer belongs to the app)."""
