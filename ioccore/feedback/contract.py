"""The ``feedback`` contract: a citizen report and a department's status change.

Bounds are part of the contract (abuse costs little): text, URLs and identifiers have
maximum lengths, and the media URL must be ``https://`` (the server never fetches it;
apps show it). ``config/schemas/feedback.v1.json`` is generated from these classes
(``python -m ioccore.feedback.contract``) and a unit test keeps them identical.
"""

from __future__ import annotations

import json
import sys
from typing import Annotated, Any, Final, Literal

import msgspec
from msgspec import Meta

from ioccore.events.models import (
    VN_LAT_MAX,
    VN_LAT_MIN,
    VN_LON_MAX,
    VN_LON_MIN,
    AwareDatetime,
    CommuneCode,
    DepartmentId,
    EventId,
    SourceId,
)
from ioccore.settings import ROOT

FeedbackStatus = Literal["received", "assigned", "in_progress", "resolved", "rejected"]
RejectReason = Literal["duplicate", "out_of_scope"]

STATUSES: Final[tuple[str, ...]] = ("received", "assigned", "in_progress", "resolved",
                                    "rejected")
CLOSED: Final[frozenset[str]] = frozenset({"resolved", "rejected"})
"""Open311's ``closed``; every other status is ``open``."""
RANK: Final[dict[str, int]] = {"received": 0, "assigned": 1, "in_progress": 2,
                               "resolved": 3, "rejected": 3}
"""Tie-break of status events at the same instant (later in the workflow wins)."""

MAX_DESCRIPTION: Final = 4000
MAX_URL: Final = 1024
MAX_ADDRESS: Final = 256
MAX_NOTE: Final = 1000

ServiceCode = Annotated[str, Meta(pattern=r"^[a-z][a-z0-9_]{0,31}$", min_length=1,
                                  max_length=32, description="A code of config/feedback.yaml")]
MediaUrl = Annotated[str, Meta(pattern=r"^https://[^\s]+$", max_length=MAX_URL,
                               description="https only; never fetched by the server.")]
Latitude = Annotated[float, Meta(ge=VN_LAT_MIN, le=VN_LAT_MAX)]
Longitude = Annotated[float, Meta(ge=VN_LON_MIN, le=VN_LON_MAX)]


class FeedbackReportV1(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """A citizen's report as stored (``report_id`` is the Open311 service_request_id).

    Either ``lat``/``lon`` or ``commune_code`` is required; with coordinates the commune
    is the one containing them (geo join). The reporter's contact is not part of it."""

    schema_version: Literal[1] = 1
    event_id: EventId
    source_id: SourceId
    occurred_at: AwareDatetime
    service_code: ServiceCode
    description: Annotated[str, Meta(min_length=1, max_length=MAX_DESCRIPTION)]
    lat: Latitude | None = None
    lon: Longitude | None = None
    commune_code: CommuneCode | None = None
    address: Annotated[str, Meta(max_length=MAX_ADDRESS)] | None = None
    media_url: MediaUrl | None = None


class FeedbackStatusV1(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """One status change by the responsible department.

    ``reason`` is required with ``rejected`` and refused otherwise (checked by
    :func:`check_status`, JSON Schema cannot say it on this shape)."""

    schema_version: Literal[1] = 1
    event_id: EventId
    source_id: SourceId
    department: DepartmentId
    report_id: Annotated[str, Meta(min_length=1, max_length=64)]
    occurred_at: AwareDatetime
    status: FeedbackStatus
    reason: RejectReason | None = None
    note: Annotated[str, Meta(max_length=MAX_NOTE)] | None = None


class FeedbackRatingV1(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """The reporter's satisfaction (1-5) with a resolved report."""

    report_id: Annotated[str, Meta(min_length=1, max_length=64)]
    rating: Annotated[int, Meta(ge=1, le=5)]
    occurred_at: AwareDatetime


def check_report(report: FeedbackReportV1) -> str | None:
    """The dead-letter reason of a decoded report, or None when it is acceptable."""
    if (report.lat is None) != (report.lon is None):
        return "location_incomplete"
    if report.lat is None and report.commune_code is None:
        return "location_missing"
    if any(ord(ch) < 32 and ch not in "\n\t" for ch in report.description):
        return "control_characters"
    return None


def check_status(change: FeedbackStatusV1) -> str | None:
    """The dead-letter reason of a decoded status change, or None."""
    if change.status == "rejected" and change.reason is None:
        return "reject_reason_missing"
    if change.status != "rejected" and change.reason is not None:
        return "reason_without_reject"
    return None


SCHEMA_PATH: Final = ROOT / "config" / "schemas" / "feedback.v1.json"


def json_schema() -> dict[str, Any]:
    """The JSON Schema of the three shapes (``$defs``), as committed."""
    _, defs = msgspec.json.schema_components(
        [FeedbackReportV1, FeedbackStatusV1, FeedbackRatingV1],
        ref_template="#/$defs/{name}")
    return {"$schema": "https://json-schema.org/draft/2020-12/schema",
            "$id": "https://ioc.example.gov.vn/schemas/feedback.v1.json",
            "title": "ioc feedback feed v1 (citizen reports)",
            "oneOf": [{"$ref": f"#/$defs/{name}"} for name in
                      ("FeedbackReportV1", "FeedbackStatusV1", "FeedbackRatingV1")],
            "$defs": defs}


def render_schema() -> str:
    return json.dumps(json_schema(), indent=2, ensure_ascii=False, sort_keys=True) + "\n"


if __name__ == "__main__":
    SCHEMA_PATH.write_text(render_schema(), encoding="utf-8")
    sys.stdout.write(f"wrote {SCHEMA_PATH}\n")
