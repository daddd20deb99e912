"""The federation contract, version 1: one JSON record per Kafka message.

A province publishes absolute values under a key, never increments: the nation keeps,
per (province, key), the record with the newest ``as_of`` (the province database's
clock when it read the values). So a record delivered twice, replayed by MirrorMaker or
overtaken by a newer one changes nothing, and the national figures are the provinces'
own figures whatever the delivery did. Three kinds:

- ``kpi_day``: one row of the province's ``kpi_daily`` (docs/kpis.md) under its storage
  key (day, agency, applicant's province and commune), with the commune, province and
  tier the province resolved and the nine counts.
- ``alert_summary``: the province's alerts now, counted by rule, severity and state,
  with incidents open past their deadline when the province runs incidents. One record
  holds the whole summary and replaces the previous one.
- ``feed_health``: per department and feed, its registered sources, how many were
  heard from in the last hour and the last arrival. Whole, like the alert summary.

``config/schemas/federation.v1.json`` is generated from these types
(``python -m ioccore.federation.schema``); a test keeps the two equal.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Final, Literal

import msgspec
from msgspec import Meta, Struct

SCHEMA: Final = "ioc.federation.v1"
MAX_RECORD_BYTES: Final = 1024 * 1024
"""A record larger than this is refused before it is parsed."""

ProvinceCode = Annotated[str, Meta(pattern=r"^[0-9]{2}$", min_length=2, max_length=2,
                                   description="Two-digit province code (2025 list).")]
AreaCode = Annotated[str, Meta(pattern=r"^([0-9]{2}|[0-9]{5}|unassigned)$", max_length=10,
                               description="A province or commune code, or 'unassigned'.")]
Agency = Annotated[str, Meta(min_length=1, max_length=128)]
Count = Annotated[int, Meta(ge=0, le=10**12)]
AwareDatetime = Annotated[datetime, Meta(tz=True)]
Label = Annotated[str, Meta(min_length=1, max_length=128)]
Tier = Literal["province", "commune", "unassigned"]


class RecordError(ValueError):
    """A record that does not follow the contract; ``reason`` is a stable code."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


class KpiDayKey(Struct, frozen=True, forbid_unknown_fields=True):
    day: date
    agency: Agency
    applicant_province: AreaCode
    applicant_commune: AreaCode


class KpiDayValues(Struct, frozen=True, forbid_unknown_fields=True):
    province_code: AreaCode
    commune_code: AreaCode
    tier: Tier
    received: Count
    received_online: Count
    received_digitised: Count
    resolved: Count
    resolved_online: Count
    resolved_with_due: Count
    resolved_on_time: Count
    paid_fee_bearing: Count
    paid_online: Count


class AlertCount(Struct, frozen=True, forbid_unknown_fields=True):
    rule_id: Label
    severity: Literal["info", "warning", "critical"]
    state: Literal["pending", "firing", "acknowledged", "resolved"]
    count: Count


class AlertSummary(Struct, frozen=True, forbid_unknown_fields=True):
    alerts: Annotated[list[AlertCount], Meta(max_length=20_000)]
    incidents_open: Count | None = None
    incidents_open_past_sla: Count | None = None


class FeedRow(Struct, frozen=True, forbid_unknown_fields=True):
    department: Label
    feed: Label
    sources: Count
    sources_active_1h: Count
    last_received_at: AwareDatetime | None


class FeedHealth(Struct, frozen=True, forbid_unknown_fields=True):
    feeds: Annotated[list[FeedRow], Meta(max_length=20_000)]


class _Base(Struct, frozen=True, forbid_unknown_fields=True, tag_field="kind"):
    schema: Literal["ioc.federation.v1"]
    province_code: ProvinceCode
    as_of: AwareDatetime


class KpiDayRecord(_Base, frozen=True, tag="kpi_day"):
    key: KpiDayKey
    values: KpiDayValues


class AlertSummaryRecord(_Base, frozen=True, tag="alert_summary"):
    values: AlertSummary


class FeedHealthRecord(_Base, frozen=True, tag="feed_health"):
    values: FeedHealth


Record = KpiDayRecord | AlertSummaryRecord | FeedHealthRecord

_DECODER: Final = msgspec.json.Decoder(Record)
_ENCODER: Final = msgspec.json.Encoder()


def encode(record: Record) -> bytes:
    return _ENCODER.encode(record)


def decode(raw: bytes) -> Record:
    """One record, validated (types, bounds, unknown fields); :class:`RecordError`."""
    if len(raw) > MAX_RECORD_BYTES:
        raise RecordError("too_large", f"{len(raw)} bytes")
    try:
        return _DECODER.decode(raw)
    except msgspec.ValidationError as exc:
        raise RecordError("invalid_record", str(exc)[:300]) from None
    except msgspec.DecodeError as exc:
        raise RecordError("malformed_json", str(exc)[:300]) from None


def record_key(record: Record) -> bytes:
    """The Kafka key: one per quantity, so a compacted topic keeps the latest of each."""
    parts: tuple[str, ...]
    if isinstance(record, KpiDayRecord):
        k = record.key
        parts = ("kpi_day", k.day.isoformat(), k.agency, k.applicant_province,
                 k.applicant_commune)
    elif isinstance(record, AlertSummaryRecord):
        parts = ("alert_summary",)
    else:
        parts = ("feed_health",)
    return "|".join((record.province_code, *parts)).encode()
