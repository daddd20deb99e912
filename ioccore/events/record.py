"""The record that flows between stages after validation and enrichment.

Stage 1 turns an incoming envelope into a :class:`Record` (flat: envelope fields plus
the feed body, in canonical units), fills ``commune_code``/``province_code`` from the
geo join, and publishes records to ``ioc.enriched.v1``, one message per partition, each
commune on the partition its code hashes to. Stage 2 and the sinks read only this shape.
Fields that do not apply to a feed stay ``None``.

``Record`` and ``Origin`` are not tracked by the cyclic garbage collector (``gc=False``):
they hold only strings, numbers, datetimes and an ``Origin``, so they can form no cycle,
and a one-event drain makes one of each per message (tracked, they were most of what
made the collector run).
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal

import msgspec

Feed = Literal["sensor", "traffic", "service"]
FEEDS: tuple[Feed, ...] = ("sensor", "traffic", "service")

UNASSIGNED = "unassigned"
"""Commune/province code of an event whose location matched no commune."""

GeoOutcome = Literal["code", "legacy_code", "cache", "contains", "nearest", "unassigned"]


class Origin(msgspec.Struct, array_like=True, frozen=True, gc=False):
    """Where stage 1 read an event: the raw message and the event's position in its
    batch (``[topic, partition, offset, index]`` on the wire, index ``null`` for a
    single-event message; a three-element origin written before the index existed still
    reads). Used only to dead-letter the event's original bytes with their provenance (a
    refused or storage-rejected event): the index finds the element in one split of the
    message, never by searching it (docs/architecture.md)."""

    topic: str
    partition: int
    offset: int
    index: int | None = None

    @property
    def message(self) -> Origin:
        """The raw message alone (the key to fetch it by)."""
        return self if self.index is None else Origin(self.topic, self.partition, self.offset)


class Record(msgspec.Struct, kw_only=True, omit_defaults=True, gc=False):
    """One valid, enriched event. Times are timezone-aware UTC."""

    event_id: str
    source_id: str
    department: str
    feed: Feed
    occurred_at: datetime
    received_at: float  # epoch seconds when stage 1 read it (latency accounting)
    lat: float | None = None
    lon: float | None = None
    commune_code: str = UNASSIGNED
    province_code: str = UNASSIGNED
    geo: GeoOutcome = "unassigned"
    # sensor
    metric: str | None = None
    value: float | None = None
    unit: str | None = None
    # traffic
    segment_id: str | None = None
    vehicle_count: int | None = None
    avg_speed_kmh: float | None = None
    occupancy: float | None = None
    incident: str | None = None
    # service
    dossier_id: str | None = None
    procedure_code: str | None = None
    agency: str | None = None
    channel: Literal["online", "offline"] | None = None
    status: Literal["received", "in_progress", "resolved", "returned", "paid"] | None = None
    due_at: datetime | None = None
    resolved_at: datetime | None = None
    fee_bearing: bool | None = None
    paid_online: bool | None = None
    digitised: bool | None = None
    origin: Origin | None = None


RECORDS_ENCODER = msgspec.json.Encoder()
RECORDS_DECODER = msgspec.json.Decoder(list[Record])


def encode_records(records: list[Record]) -> bytes:
    """One enriched-topic message value: a JSON array of records."""
    return RECORDS_ENCODER.encode(records)


def decode_records(value: bytes) -> list[Record]:
    """Inverse of :func:`encode_records`."""
    return RECORDS_DECODER.decode(value)
