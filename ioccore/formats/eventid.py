"""Event ids for payloads that carry none (SenML records, NGSI-LD attributes, MQTT
envelopes without ``event_id``).

The id is a hash of what identifies the observation: the source, its time and its
content. A retransmission (an MQTT redelivery, a context broker notifying again) yields
the same id, so the pair ``(source_id, event_id)`` stores it once; two different
readings of one source differ in time or content and get different ids.
"""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from typing import Any

import orjson

PREFIX = "h1-"
"""Marks a derived id (and the derivation's version) among ids departments choose."""


def canonical_time(value: datetime) -> str:
    """The instant as RFC 3339 UTC with microseconds: one spelling per instant, so
    ``08:00+07:00`` and ``01:00Z`` give one id."""
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def parse_time(text: str) -> datetime | None:
    """An RFC 3339 time with offset, or None (the validator reports the details)."""
    try:
        value = datetime.fromisoformat(text.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        return None
    return value if value.tzinfo is not None else None


def derive(source_id: str, occurred_at: datetime | str, content: Any) -> str:
    """``h1-`` + 32 hex digits of BLAKE2b-128 over (source, UTC time, canonical JSON of
    ``content`` with sorted keys)."""
    if isinstance(occurred_at, str):
        parsed = parse_time(occurred_at)
        when = canonical_time(parsed) if parsed is not None else occurred_at
    else:
        when = canonical_time(occurred_at)
    h = hashlib.blake2b(digest_size=16)
    h.update(source_id.encode())
    h.update(b"\x00")
    h.update(when.encode())
    h.update(b"\x00")
    h.update(orjson.dumps(content, option=orjson.OPT_SORT_KEYS))
    return PREFIX + h.hexdigest()
