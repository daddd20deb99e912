"""Why a payload (or one part of it) could not become an envelope."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final


@dataclass(frozen=True, slots=True)
class Problem:
    """One refused part: ``index`` is its position in the payload (a SenML record, an
    NGSI-LD entity), ``None`` for the whole payload."""

    reason: str
    message: str
    index: int | None = None
    attribute: str | None = None


INVALID_SENML: Final = "invalid_senml"
SENML_TIME_MISSING: Final = "senml_time_missing"
SENML_NOT_NUMERIC: Final = "senml_not_numeric"
SENML_MUST_UNDERSTAND: Final = "senml_must_understand"
UNSUPPORTED_FEED: Final = "unsupported_feed"
SOURCE_TOPIC_MISMATCH: Final = "source_topic_mismatch"
INVALID_NGSI: Final = "invalid_ngsi"
UNKNOWN_ENTITY_TYPE: Final = "unknown_entity_type"
INVALID_ATTRIBUTE: Final = "invalid_attribute"
UNKNOWN_UNIT_CODE: Final = "unknown_unit_code"

REASONS: Final[dict[str, str]] = {
    INVALID_SENML: "The payload is not a SenML JSON pack (an array of records).",
    SENML_TIME_MISSING: "A SenML record has no absolute time (set bt or t to seconds "
                        "since 1970); relative times cannot be told from a retransmission.",
    SENML_NOT_NUMERIC: "A SenML record of a sensor or traffic field holds no number (v).",
    SENML_MUST_UNDERSTAND: "A SenML record carries a must-understand field (name ending "
                           "in '_') this IOC does not know.",
    UNSUPPORTED_FEED: "This format cannot carry events of this feed.",
    SOURCE_TOPIC_MISMATCH: "The event's source_id is not the source named by its MQTT topic.",
    INVALID_NGSI: "The body is not an NGSI-LD notification or an array of entities.",
    UNKNOWN_ENTITY_TYPE: "No mapping for this NGSI-LD entity type.",
    INVALID_ATTRIBUTE: "An NGSI-LD attribute of a mapped name has a value that cannot be "
                       "read (not a number, a bad unit code, a bad time or location).",
    UNKNOWN_UNIT_CODE: "The attribute's UN/CEFACT unitCode is not one this IOC converts.",
}
"""Reasons of the open-format paths (beside :class:`ioccore.events.reasons.Reason`)."""
