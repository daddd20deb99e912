"""Dead letters: every builder of an ``ioc.deadletter.v1`` message, in one place.

A dead letter holds the event's bytes exactly as received (the element of its batch, cut
once per message by :func:`ioccore.events.batch_split.elements` and indexed by the
position the validator reported), a reason code, and where it came from. It is
attributed to the **publishing** department: the department whose topic carried it (only
that department's principal may write it), or for the shared topics, which only the
gateway writes after authorising each event, the department the event names. Never the
Kafka key: a key is chosen by whoever writes, so it cannot say whose a letter is.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import NamedTuple

from ioccore.events.batch_split import elements
from ioccore.events.record import RECORDS_ENCODER, Origin, Record

Raw = tuple[bytes | None, bytes]
"""(key, value) of a raw message."""

Publisher = Callable[[str, str | None], str]
"""(raw topic, department the event names or None) -> the publishing department."""


def named_department(topic: str, claimed: str | None) -> str:
    """The publisher when only shared topics are read: the department the event names
    (the gateway checked it against the key that sent it)."""
    return claimed or ""


class DeadLetter(NamedTuple):
    """An event that cannot be processed: its bytes exactly as received, and why.

    A named tuple (immutable, as the frozen dataclass it was): stage 1 builds one per
    rejected element, and a frozen dataclass cost 1.8 us to make against 0.4 us (a
    quarter of a junk element's cost between valid events, issue 24)."""

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
    department: str = ""
    """The publishing department (module docstring); empty when it cannot be known."""

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
            ("ioc-department", self.department.encode()),
        ]


def rejected(*, key: bytes | None, raw: bytes, reason: str, message: str, feed: str,
             topic: str, partition: int, offset: int, index: int | None,
             department: str = "") -> DeadLetter:
    """A dead letter for an element (or a whole message) the validator refused."""
    return DeadLetter(key=key, value=raw, reason=reason, message=message, feed=feed,
                      source_topic=topic, source_partition=partition, source_offset=offset,
                      batch_index=index, department=department)


class Elements:
    """The elements of raw messages, each message cut once however many of its events
    are dead-lettered (one split per message: linear, never a search per event)."""

    def __init__(self, raws: Mapping[Origin, Raw]) -> None:
        """``raws``: raw messages by their :attr:`Origin.message`."""
        self._raws = raws
        self._cut: dict[Origin, list[bytes] | None] = {}

    def find(self, origin: Origin) -> tuple[bytes | None, bytes, int | None] | None:
        """(key, element bytes, index) of the event at ``origin``; None when its message
        is not at hand or the index does not fit it."""
        msg = origin.message
        raw = self._raws.get(msg)
        if raw is None:
            return None
        key, value = raw
        if origin.index is None:
            return key, value, None
        if msg not in self._cut:
            self._cut[msg] = elements(value)
        items = self._cut[msg]
        if items is None or not 0 <= origin.index < len(items):
            return key, value, None
        return key, items[origin.index], origin.index


def of_record(rec: Record, reason: str, message: str, found: Elements,
              publisher: Publisher, where: Origin | None = None) -> DeadLetter:
    """A dead letter for a validated record: its element's original bytes and origin, or
    (when the raw message cannot be read back) the enriched record, marked as such, with
    ``where`` (e.g. the enriched message) as its provenance."""
    o = rec.origin
    hit = found.find(o) if o is not None else None
    department = publisher(o.topic if o is not None else "", rec.department)
    if o is not None and hit is not None:
        key, value, index = hit
        return DeadLetter(key=key, value=value, reason=reason, message=message,
                          feed=rec.feed, source_topic=o.topic, source_partition=o.partition,
                          source_offset=o.offset, batch_index=index,
                          department=department)
    return DeadLetter(key=rec.source_id.encode(), value=RECORDS_ENCODER.encode(rec),
                      reason=reason, message=message, feed=rec.feed,
                      source_topic="" if where is None else where.topic,
                      source_partition=-1 if where is None else where.partition,
                      source_offset=-1 if where is None else where.offset, batch_index=None,
                      value_kind="enriched-record", department=department)
