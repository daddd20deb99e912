"""One MQTT message into the parts the ingest path validates (or dead-letters).

The topic ``<root>/<department>/<feed>/<source_id>`` is the identity: Mosquitto's ACL
lets department ``d`` publish only under ``<root>/d/<its feeds>/+``, so the department
is the topic's, never the payload's. Payloads:

* ioc envelopes (docs/events.md), one object or an array: ``department`` is filled in
  when absent and must equal the topic's; ``feed`` and ``source_id`` must equal the
  topic's; a missing ``event_id`` is derived from (source, occurred_at, body);
* SenML JSON (MQTT 5 content type ``application/senml+json``, or an array whose first
  record has only SenML fields): :mod:`ioccore.formats.senml`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Final

import msgspec
import orjson

from ioccore.events.reasons import Reason
from ioccore.formats import problems as p
from ioccore.formats import senml
from ioccore.formats.eventid import derive
from ioccore.principals import DEPARTMENT_CODE, FEEDS

INVALID_TOPIC: Final = "invalid_topic"
FORBIDDEN_DEPARTMENT: Final = "forbidden_department"
SENML_TYPES: Final = frozenset({"application/senml+json", "application/senml-json"})
_DECODE = msgspec.json.Decoder()
MAX_ELEMENTS: Final = 1000


@dataclass(frozen=True, slots=True)
class Topic:
    department: str
    feed: str
    source_id: str


def parse_topic(topic: str, root: str) -> Topic | None:
    levels = topic.split("/")
    if len(levels) != 4 or levels[0] != root:
        return None
    _, department, feed, source = levels
    if not DEPARTMENT_CODE.match(department) or feed not in FEEDS \
            or not 0 < len(source) <= 128:
        return None
    return Topic(department, feed, source)


@dataclass(frozen=True, slots=True)
class Inbound:
    """One MQTT message as the client received it."""

    mid: int
    qos: int
    topic: str
    payload: bytes
    generation: int
    """The connection it came on: its acknowledgement is sent only on that connection."""
    content_type: str | None = None
    received: float = 0.0
    """time.monotonic() at arrival."""


@dataclass(slots=True)
class Part:
    """One event of a message (an envelope to validate) or a refused piece of it."""

    topic: str
    department: str
    feed: str
    source_id: str
    event: dict[str, Any] | None
    """The envelope (location filled in later from the registry when absent)."""
    original: bytes
    """What the dead letter carries: the element or record as sent, or the payload."""
    index: int | None
    reason: str | None = None
    message: str | None = None


def decode(msg: Inbound, *, root: str, max_bytes: int) -> list[Part]:
    """The parts of a message; never raises, linear in the payload."""
    topic = parse_topic(msg.topic, root)
    if topic is None:
        return [Part(msg.topic, "", "", "", None, msg.payload, None, INVALID_TOPIC,
                     f"topic {msg.topic[:200]!r} is not {root}/<department>/<feed>/<source>")]
    d, f, s = topic.department, topic.feed, topic.source_id

    def refused(reason: str, message: str, original: bytes = msg.payload,
                index: int | None = None) -> Part:
        return Part(msg.topic, d, f, s, None, original, index, reason, message)

    if len(msg.payload) > max_bytes:
        return [refused(Reason.MESSAGE_TOO_LARGE, f"the payload is {len(msg.payload)} "
                        f"bytes; the limit is {max_bytes}")]
    try:
        value = _DECODE.decode(msg.payload)
    except (msgspec.DecodeError, RecursionError):
        return [refused(Reason.NOT_JSON, "the payload is not UTF-8 JSON")]
    if (msg.content_type or "").split(";")[0].strip().lower() in SENML_TYPES \
            or senml.is_senml(value):
        events, problems = senml.convert(value, department=d, feed=f, source_id=s)
        parts = [Part(msg.topic, d, f, s, e, b"", None) for e in events]
        for prob in problems:
            original = msg.payload if prob.index is None else orjson.dumps(value[prob.index])
            parts.append(refused(prob.reason, prob.message, original, prob.index))
        return parts
    elements = value if isinstance(value, list) else [value]
    if not elements:
        return [refused(Reason.EMPTY_BATCH, "the payload is an empty array")]
    if len(elements) > MAX_ELEMENTS:
        return [refused(Reason.TOO_MANY_EVENTS, f"more than {MAX_ELEMENTS} events")]
    batch = isinstance(value, list)
    parts = []
    for i, element in enumerate(elements):
        index = i if batch else None
        original = orjson.dumps(element) if batch else msg.payload
        if not isinstance(element, dict):
            parts.append(refused(Reason.NOT_AN_OBJECT, "an event must be a JSON object",
                                 original, index))
            continue
        event = dict(element)
        problem = _own(event, topic)
        if problem is not None:
            parts.append(refused(problem[0], problem[1], original, index))
            continue
        parts.append(Part(msg.topic, d, f, s, event, original, index))
    return parts


def _own(event: dict[str, Any], topic: Topic) -> tuple[str, str] | None:
    """Make the envelope the topic's, or say why it is not."""
    department = event.get("department")
    if department is None:
        event["department"] = topic.department
    elif department != topic.department:
        return (FORBIDDEN_DEPARTMENT, f"department {str(department)[:64]!r} is not the "
                f"topic's ({topic.department})")
    if event.get("feed", topic.feed) != topic.feed:
        return (Reason.FEED_TOPIC_MISMATCH, f"feed {str(event.get('feed'))[:20]!r} sent "
                f"to a {topic.feed} topic")
    event.setdefault("feed", topic.feed)
    if event.get("source_id", topic.source_id) != topic.source_id:
        return (p.SOURCE_TOPIC_MISMATCH, f"source_id {str(event.get('source_id'))[:128]!r}"
                f" is not the topic's ({topic.source_id})")
    event.setdefault("source_id", topic.source_id)
    if event.get("event_id") is None and isinstance(event.get("occurred_at"), str):
        event["event_id"] = derive(topic.source_id, event["occurred_at"],
                                   {"feed": topic.feed, "body": event.get("body")})
    return None
