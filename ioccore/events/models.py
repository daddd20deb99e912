"""The event contract as code: one set of msgspec Structs per schema version.

Schema version 1 (``"schema_version": 1``): an envelope with a feed-specific ``body``.
The three envelope classes are a tagged union on ``feed``, so one decoder reads any
feed. Constraints that JSON Schema can express (types, enums, bounds, patterns) live
here as ``msgspec.Meta``; those it cannot (units per metric, physical ranges after
conversion, cross-field rules, duplicates, future timestamps) live in
:mod:`ioccore.events.validate`. ``config/schemas/*.json`` are generated from these classes
by :mod:`ioccore.events.schemas` and a unit test keeps them identical.

Field order matters: the diagnostic pass reports the first failing field in it.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Final, Literal

import msgspec
from msgspec import Meta

SCHEMA_VERSION: Final = 1
SUPPORTED_SCHEMA_VERSIONS: Final[frozenset[int]] = frozenset({1})

# Generous bounding box of Vietnam incl. Hoang Sa (Paracels, ~17.1N 111.5E) and
# Truong Sa (Spratlys, down to ~8.6N, east to ~117.2E).
VN_LAT_MIN: Final = 8.0
VN_LAT_MAX: Final = 23.5
VN_LON_MIN: Final = 102.0
VN_LON_MAX: Final = 117.5

EVENT_TIME_MIN: Final = 946_684_800.0
"""2000-01-01T00:00:00Z: earlier ``occurred_at`` values are ``timestamp_too_old``."""

# Identifiers are free text (no pattern: a regex per field would halve decode speed);
# the validator refuses control, bidirectional and zero-width characters in them
# (``validate.FORBIDDEN_CHARS``, one search per event).
EventId = Annotated[str, Meta(min_length=1, max_length=128,
                             description="Client-chosen id, unique per source_id.")]
SourceId = Annotated[str, Meta(min_length=1, max_length=128,
                              description="Device or system id; the Kafka key.")]
DepartmentId = Annotated[str, Meta(min_length=1, max_length=64,
                                  description="Publishing department (as registered).")]
Name = Annotated[str, Meta(min_length=1, max_length=128)]
# max_length too: "$" also matches before a final newline, so "00004\n" passed the
# pattern alone (and stage 1 then refused the code).
CommuneCode = Annotated[str, Meta(pattern=r"^[0-9]{5}$", min_length=5, max_length=5,
                                 description="Post-2025 commune/ward code (5 digits).")]
AwareDatetime = Annotated[datetime, Meta(tz=True, description="RFC 3339 with a UTC offset.")]
Latitude = Annotated[float, Meta(ge=VN_LAT_MIN, le=VN_LAT_MAX, description="WGS84 degrees.")]
Longitude = Annotated[float, Meta(ge=VN_LON_MIN, le=VN_LON_MAX, description="WGS84 degrees.")]

Metric = Literal["pm25", "pm10", "no2", "o3", "co", "so2", "water_level", "rainfall",
                 "temperature", "humidity", "noise", "wind_speed"]
Incident = Literal["accident", "breakdown", "flooding", "congestion", "roadworks", "fire",
                   "other"]
Channel = Literal["online", "offline"]
Status = Literal["received", "in_progress", "resolved", "returned", "paid"]


class LocationV1(msgspec.Struct, forbid_unknown_fields=True):
    """Where the event happened (WGS84), inside Vietnam's bounding box."""

    lat: Latitude
    lon: Longitude


class SensorBodyV1(msgspec.Struct, forbid_unknown_fields=True):
    """One reading of one metric. ``unit`` must be accepted for the metric."""

    metric: Metric
    value: float
    unit: Annotated[str, Meta(min_length=1, max_length=32)]


class TrafficBodyV1(msgspec.Struct, forbid_unknown_fields=True):
    """One observation of a road segment over the camera's reporting interval."""

    segment_id: Name
    vehicle_count: Annotated[int, Meta(ge=0, le=100_000)]
    avg_speed_kmh: Annotated[float, Meta(ge=0.0, le=250.0)]
    occupancy: Annotated[float, Meta(ge=0.0, le=1.0, description="Share of time occupied.")]
    incident: Incident | None = None


class ServiceBodyV1(msgspec.Struct, forbid_unknown_fields=True):
    """One status change of an administrative dossier (hồ sơ thủ tục hành chính)."""

    dossier_id: Name
    procedure_code: Annotated[str, Meta(min_length=1, max_length=64)]
    agency: Name
    channel: Channel
    status: Status
    due_at: AwareDatetime
    fee_bearing: bool
    digitised: bool
    resolved_at: AwareDatetime | None = None
    paid_online: bool | None = None


class _EnvelopeV1(msgspec.Struct, forbid_unknown_fields=True, tag_field="feed", kw_only=True):
    schema_version: Literal[1]
    event_id: EventId
    source_id: SourceId
    department: DepartmentId
    occurred_at: AwareDatetime
    location: LocationV1 | None = None
    commune_code: CommuneCode | None = None


class SensorEnvelopeV1(_EnvelopeV1, tag="sensor"):
    """A sensor reading (air quality, weather, water level, noise)."""

    body: SensorBodyV1


class TrafficEnvelopeV1(_EnvelopeV1, tag="traffic"):
    """A traffic observation from a camera or loop detector."""

    body: TrafficBodyV1


class ServiceEnvelopeV1(_EnvelopeV1, tag="service"):
    """A public-service (dossier) status change."""

    body: ServiceBodyV1


EnvelopeV1 = SensorEnvelopeV1 | TrafficEnvelopeV1 | ServiceEnvelopeV1
"""Any v1 event; ``feed`` selects the class."""

FEED_OF: Final[dict[type[_EnvelopeV1], str]] = {
    SensorEnvelopeV1: "sensor", TrafficEnvelopeV1: "traffic", ServiceEnvelopeV1: "service",
}
ENVELOPE_V1_BY_FEED: Final[dict[str, type[_EnvelopeV1]]] = {v: k for k, v in FEED_OF.items()}
BODY_V1_BY_FEED: Final[dict[str, type[msgspec.Struct]]] = {
    "sensor": SensorBodyV1, "traffic": TrafficBodyV1, "service": ServiceBodyV1,
}

METRIC_NAMES: Final[tuple[str, ...]] = Metric.__args__  # type: ignore[attr-defined]
"""The metrics of :data:`Metric` (a test keeps them equal to ``units.METRICS``)."""
