"""Stable rejection reason codes, each with a human message.

The codes are a public contract: they appear in ``ioc.deadletter.v1``, in the HTTP
gateway's per-event results, and as the ``reason`` label of the rejection counter.
Add codes; never rename or reuse one. ``docs/events.md`` lists them all (a unit test
keeps the list and the document in step).
"""

from __future__ import annotations

from enum import StrEnum


class Reason(StrEnum):
    """Why an event (or a whole message) was rejected."""

    MESSAGE_TOO_LARGE = "message_too_large"
    NOT_JSON = "not_json"
    NOT_AN_OBJECT = "not_an_object"
    EMPTY_BATCH = "empty_batch"
    NON_FINITE_NUMBER = "non_finite_number"
    UNSUPPORTED_SCHEMA_VERSION = "unsupported_schema_version"
    UNKNOWN_FEED = "unknown_feed"
    FEED_TOPIC_MISMATCH = "feed_topic_mismatch"
    MISSING_FIELD = "missing_field"
    UNKNOWN_FIELD = "unknown_field"
    WRONG_TYPE = "wrong_type"
    INVALID_VALUE = "invalid_value"
    INVALID_TIMESTAMP = "invalid_timestamp"
    TIMESTAMP_WITHOUT_OFFSET = "timestamp_without_offset"
    TIMESTAMP_IN_FUTURE = "timestamp_in_future"
    TIMESTAMP_TOO_OLD = "timestamp_too_old"
    MISSING_LOCATION = "missing_location"
    LOCATION_OUTSIDE_VIETNAM = "location_outside_vietnam"
    UNKNOWN_COMMUNE_CODE = "unknown_commune_code"
    UNKNOWN_METRIC = "unknown_metric"
    UNKNOWN_UNIT = "unknown_unit"
    WRONG_UNIT = "wrong_unit"
    OUT_OF_RANGE = "out_of_range"
    NEGATIVE_COUNT = "negative_count"
    INCONSISTENT_EVENT = "inconsistent_event"
    DUPLICATE_EVENT_ID = "duplicate_event_id"
    SCHEMA_VIOLATION = "schema_violation"
    AMBIGUOUS_LEGACY_CODE = "ambiguous_legacy_code"
    INTERNAL_ERROR = "internal_error"
    STORAGE_REJECTED = "storage_rejected"
    FORBIDDEN_DEPARTMENT = "forbidden_department"
    FORBIDDEN_FEED = "forbidden_feed"
    FORBIDDEN_SOURCE = "forbidden_source"
    UNREGISTERED_SOURCE = "unregistered_source"
    OUT_OF_AREA = "out_of_area"
    # hostile input (issue 15)
    TOMBSTONE = "tombstone"
    MISSING_KEY = "missing_key"
    TOO_MANY_EVENTS = "too_many_events"
    REJECTED_RUN = "rejected_run"
    TOO_DEEPLY_NESTED = "too_deeply_nested"
    TIMESTAMP_OUT_OF_RANGE = "timestamp_out_of_range"
    FORBIDDEN_CHARACTER = "forbidden_character"
    # cost (issue 24)
    OVER_BUDGET = "over_budget"


DESCRIPTIONS: dict[Reason, str] = {
    Reason.MESSAGE_TOO_LARGE: "The message is larger than the configured maximum size.",
    Reason.NOT_JSON: "The bytes are not valid UTF-8 JSON.",
    Reason.NOT_AN_OBJECT: "An event must be a JSON object (a batch: an array of objects).",
    Reason.EMPTY_BATCH: "A batch message is an empty array.",
    Reason.NON_FINITE_NUMBER: "NaN, Infinity or a number too large for a double.",
    Reason.UNSUPPORTED_SCHEMA_VERSION: "schema_version is not one this IOC accepts (1).",
    Reason.UNKNOWN_FEED: "feed is not one of sensor, traffic, service.",
    Reason.FEED_TOPIC_MISMATCH: "The event's feed does not match the topic it was sent to.",
    Reason.MISSING_FIELD: "A required field is absent (or null).",
    Reason.UNKNOWN_FIELD: "A field that the schema does not define (check the spelling).",
    Reason.WRONG_TYPE: "A field has the wrong JSON type (e.g. a string for a number).",
    Reason.INVALID_VALUE: "A field has a value outside its allowed set or format.",
    Reason.INVALID_TIMESTAMP: "A timestamp is not RFC 3339 (e.g. 2025-11-03T08:00:00+07:00).",
    Reason.TIMESTAMP_WITHOUT_OFFSET: "A timestamp lacks its UTC offset (add Z or +07:00).",
    Reason.TIMESTAMP_IN_FUTURE: "occurred_at is further in the future than the allowed skew.",
    Reason.TIMESTAMP_TOO_OLD: "occurred_at is before 2000-01-01 (a device clock not set?).",
    Reason.MISSING_LOCATION: "Neither location {lat, lon} nor commune_code is given.",
    Reason.LOCATION_OUTSIDE_VIETNAM: "lat/lon fall outside Vietnam's bounding box.",
    Reason.UNKNOWN_COMMUNE_CODE: "commune_code is not a current (post-2025) commune code.",
    Reason.UNKNOWN_METRIC: "The sensor metric is not one this IOC accepts.",
    Reason.UNKNOWN_UNIT: "The unit is not recognised at all.",
    Reason.WRONG_UNIT: "The unit is recognised but does not measure this metric.",
    Reason.OUT_OF_RANGE: "A value is outside its physical range (after unit conversion).",
    Reason.NEGATIVE_COUNT: "A count is negative.",
    Reason.INCONSISTENT_EVENT: "Fields contradict each other (e.g. resolved_at without resolved).",
    Reason.DUPLICATE_EVENT_ID: "This source already sent an event with this event_id.",
    Reason.SCHEMA_VIOLATION: "The event breaks the schema in a way no finer reason covers.",
    Reason.AMBIGUOUS_LEGACY_CODE: ("A pre-2025 commune_code that was split between several"
                                   " current communes: send the current code or a location."),
    Reason.INTERNAL_ERROR: ("The IOC failed to process the message (a bug on our side, not"
                            " yours): the whole message is kept (the validator's own failure"
                            " costs only that element); the operators are told."),
    Reason.STORAGE_REJECTED: ("The database refused the event after it passed validation (the"
                              " value is the enriched record; the headers name the message)."),
    Reason.FORBIDDEN_DEPARTMENT: "The event's department is not the publisher's (API key "
                                 "or department topic).",
    Reason.FORBIDDEN_FEED: "The publishing department does not publish this feed.",
    Reason.FORBIDDEN_SOURCE: "The source is registered to another department or feed.",
    Reason.UNREGISTERED_SOURCE: "The source is not registered and the department's "
                                "automatic registration quota is used up.",
    Reason.OUT_OF_AREA: "The reading's commune lies outside the area its source (or "
                        "department) is bound to.",
    Reason.TOMBSTONE: "The Kafka message has no value (a tombstone); nothing to validate.",
    Reason.MISSING_KEY: "The Kafka message has no key; the key must be the source_id.",
    Reason.TOO_MANY_EVENTS: "A batch holds more events than the per-message cap.",
    Reason.REJECTED_RUN: "A long run of consecutive rejected elements, dead-lettered as one "
                         "(the message gives the count and the reasons).",
    Reason.TOO_DEEPLY_NESTED: "JSON nested deeper than any event can be.",
    Reason.TIMESTAMP_OUT_OF_RANGE: "A timestamp cannot be converted to UTC (e.g. year 9999 "
                                   "with a negative offset).",
    Reason.FORBIDDEN_CHARACTER: "An identifier holds a control, bidirectional or zero-width "
                                "character (or NUL).",
    Reason.OVER_BUDGET: "Validating the message took longer than its time budget; it is "
                        "dead-lettered whole (a second line of defence: no well-formed or "
                        "malformed message should come near it).",
}

NOT_FROM_THE_VALIDATOR: frozenset[Reason] = frozenset({
    Reason.AMBIGUOUS_LEGACY_CODE, Reason.INTERNAL_ERROR, Reason.STORAGE_REJECTED,
    Reason.FORBIDDEN_DEPARTMENT, Reason.FORBIDDEN_FEED, Reason.FORBIDDEN_SOURCE,
    Reason.UNREGISTERED_SOURCE, Reason.OUT_OF_AREA, Reason.DUPLICATE_EVENT_ID,
    Reason.OVER_BUDGET})
"""Reasons given after validation: by the commune lookup (stage 1), when the validator
itself fails or runs over its time budget (stage 1, gateway), when the database refuses
a row (stage 2), the source registry's authorisation checks (gateway; stage 1 for
department topics) and stage 1's duplicate memory (after every check)."""
