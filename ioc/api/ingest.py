"""The HTTP ingest gateway: ``POST /v1/events`` for departments without a Kafka client.

One request carries a JSON array of events (``application/json``) or one event per line
(``application/x-ndjson``). The path of a request:

0. while the pipeline is behind, the request waits for admission
   (:mod:`ioc.api.backpressure`; 503 ``pipeline_backlogged`` past ``max_wait_s``);
1. the body is read up to ``api.max_body_bytes`` and refused with 413 past it, while
   reading (a ``Content-Length`` above the limit is refused before reading anything);
2. the body is split into events (``index`` = position in the array, or among the
   non-blank NDJSON lines), at most ``api.max_events_per_request`` of them (413
   ``too_many_events``), charged to the key's event budget (429; a rejected event
   costs :data:`REJECTED_WEIGHT`); each is validated on
   its own by the shared :class:`ioccore.events.validate.Validator`, with the stream's
   reason codes, in a validation worker process (:mod:`ioc.api.validation`:
   splitting and validating never run on the event loop, so a large body cannot stall
   other requests);
3. each valid event is authorised: its ``department`` must be the key's
   (``forbidden_department``), its feed one of the department's feeds
   (``forbidden_feed``), its source one of the department's sources
   (``forbidden_source``) or a new one, registered on first use only within the
   department's quota (``unregistered_source``; ioccore.source_registry);
4. the allowed events are produced, as sent, to their feed's topic keyed by
   ``source_id`` by an idempotent producer with ``acks=all``, and every send is awaited:
   one JSON-array envelope per source per request (at most 1,000 events and 90 % of
   ``kafka.max_message_bytes``), so the worker pays its per-message cost once per
   envelope instead of once per event.

The answer lists every event: 200 when all were accepted, 207 when some were not, 403
when every event was refused by authorisation, 503 when Kafka took none of them.
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from collections.abc import AsyncIterator, Collection, Sequence
from concurrent.futures.process import BrokenProcessPool
from typing import Any, Final, Literal

import orjson
from aiokafka import AIOKafkaProducer
from fastapi import APIRouter, Request
from fastapi.responses import Response
from psycopg_pool import AsyncConnectionPool
from pydantic import BaseModel, Field

from ioc.api import validation
from ioc.api.auth import ApiKey
from ioc.api.deps import DepartmentKey, Resources, ResourcesDep
from ioc.api.errors import (
    BadRequestError,
    PayloadTooLargeError,
    RateLimitedError,
    UnavailableError,
)
from ioccore import source_registry as registry
from ioccore.events.reasons import Reason
from ioccore.metrics import API_INGEST_EVENTS

log = logging.getLogger("ioc.api.ingest")

FORBIDDEN_DEPARTMENT: Final = "forbidden_department"
FORBIDDEN_FEED: Final = "forbidden_feed"
FORBIDDEN_SOURCE: Final = "forbidden_source"
UNREGISTERED_SOURCE: Final = "unregistered_source"
PUBLISH_FAILED: Final = "publish_failed"
GATEWAY_REASONS: Final[dict[str, str]] = {
    FORBIDDEN_DEPARTMENT: "The event's department is not the API key's department.",
    FORBIDDEN_FEED: "The key's department does not publish this feed.",
    FORBIDDEN_SOURCE: "The source belongs to another department.",
    UNREGISTERED_SOURCE: "The source is not registered and the quota is used up.",
    PUBLISH_FAILED: "Kafka did not acknowledge the event; send it again.",
}
"""Reasons only the gateway gives (the others are :class:`ioccore.events.reasons.Reason`)."""
_FORBIDDEN: Final = frozenset({FORBIDDEN_DEPARTMENT, FORBIDDEN_FEED, FORBIDDEN_SOURCE,
                               UNREGISTERED_SOURCE})

JSON_TYPES: Final = validation.JSON_TYPES
NDJSON_TYPES: Final = validation.NDJSON_TYPES
_LOG_REJECTED_MAX: Final = 20
REJECTED_WEIGHT: Final = 10
"""A rejected event costs this many events of the key's budget: diagnosing junk costs the
validator about ten times what a valid event does."""
_INFLIGHT_PER_KEY: Final = 2
"""Requests of one key validated at the same time (the others get 429)."""


# --------------------------------------------------------------------------- body
async def read_body(chunks: AsyncIterator[bytes], *, limit: int,
                    content_length: str | None = None) -> bytes:
    """The whole body, refusing (413) as soon as more than ``limit`` bytes arrive."""
    if content_length is not None:
        try:
            declared = int(content_length)
        except ValueError:
            raise BadRequestError("Content-Length is not a number") from None
        if declared > limit:
            raise PayloadTooLargeError(f"the body is {declared} bytes; the limit is {limit}")
    buf = bytearray()
    async for chunk in chunks:
        buf += chunk
        if len(buf) > limit:
            raise PayloadTooLargeError(f"the body is larger than the limit of {limit} bytes")
    return bytes(buf)


media_type = validation.media_type
split_events = validation.split_events
"""Splitting a body into events lives in :mod:`ioc.api.validation` (it runs in the
validation workers); re-exported here for the gateway's callers."""


# --------------------------------------------------------------------------- models
class EventResult(BaseModel):
    """The verdict on one event of the request."""

    index: int = Field(description="Position of the event in the array / NDJSON lines.")
    event_id: str | None = Field(description="The event's event_id when it could be read.")
    status: Literal["accepted", "rejected"]
    reason: str | None = Field(None, description="Rejection reason code (docs/api.md).")
    message: str | None = None
    count: int = Field(1, description="Events this result covers from index on: more than "
                       "1 for a run of consecutive rejected events (docs/events.md).")


class IngestResponse(BaseModel):
    accepted: int
    rejected: int
    results: list[EventResult]


Verdict = validation.Verdict


# --------------------------------------------------------------------------- processing
def validate(res: Resources, items: Sequence[bytes]) -> list[Verdict]:
    """Size and contract checks of every event (no database, no Kafka), in this thread."""
    return validation.validate_items(res.validator, res.settings.kafka.max_message_bytes,
                                     items)


async def authorise(res: Resources, key: ApiKey, verdicts: list[Verdict]) -> None:
    """Department, feed and source checks against the source registry (ioccore.source_registry,
    shared with stage 1): a new source is registered only within the department's quota."""
    await authorise_department(res.pool, key.department or "", key.feeds,
                               f"api:{key.name}", verdicts)


async def authorise_department(pool: AsyncConnectionPool[Any], department: str,
                               feeds: Collection[str] | None, actor: str,
                               verdicts: list[Verdict]) -> None:
    """:func:`authorise` for a principal other than an API key (the MQTT bridge: the
    department named by the topic; ``feeds`` None leaves the feed check to the registry)."""
    candidates: list[Verdict] = []
    for v in verdicts:
        rec = v.record
        if rec is None:
            continue
        if rec.department != department:
            _refuse(v, FORBIDDEN_DEPARTMENT,
                    f"department {rec.department!r} is not this key's ({department})")
        elif feeds is not None and rec.feed not in feeds:
            _refuse(v, FORBIDDEN_FEED, f"department {department} does not publish the "
                    f"{rec.feed} feed (it publishes: {', '.join(sorted(feeds)) or 'none'})")
        else:
            candidates.append(v)
    if not candidates:
        return
    # one claim set per feed: a source registered for one feed cannot carry another's
    # events by sharing a request with them (issue 24, finding 14)
    by_feed: dict[str, dict[str, str]] = {}
    locations: dict[str, registry.Location] = {}
    for v in candidates:
        if v.record is not None:
            r = v.record
            by_feed.setdefault(r.feed, {})[r.source_id] = r.feed
            locations.setdefault(r.source_id, registry.Location(r.commune_code, r.lat, r.lon))
    refused: dict[tuple[str, str], registry.Refusal] = {}
    async with pool.connection() as conn:
        for feed, claims in by_feed.items():
            found = await registry.authorise(conn, department, claims,
                                             actor=actor, locations=locations)
            refused.update({(source, feed): r for source, r in found.items()})
        bound = await registry.areas(conn, sorted({
            v.record.source_id for v in candidates if v.record is not None}))
    for v in candidates:
        if v.record is None:
            continue
        r = v.record
        refusal = refused.get((r.source_id, r.feed)) or _outside(r, bound.get(r.source_id))
        if refusal is not None:
            _refuse(v, str(refusal.reason), refusal.message)


def _outside(rec: validation.Accepted, area: registry.Area | None
             ) -> registry.Refusal | None:
    """The early area check: only an event that names its commune, against an area of
    communes (a province area needs the commune lookup, which stage 1 makes; stage 1
    checks every event's area again after it, lat/lon ones included)."""
    if area is None or rec.commune_code is None or area.provinces:
        return None
    return area.refusal(rec.source_id, rec.commune_code, "")


def _refuse(v: Verdict, reason: str, message: str) -> None:
    v.record = None
    v.reason = reason
    v.message = message


ENVELOPE_MAX_EVENTS: Final = 1000
"""Events per Kafka message the gateway produces at most (stage 1 validates each)."""


def envelopes(todo: Sequence[Verdict], max_bytes: int
              ) -> list[tuple[str, str, list[Verdict]]]:
    """Accepted events grouped into envelopes: per (feed, source) in request order, at
    most ``ENVELOPE_MAX_EVENTS`` events and ``max_bytes`` bytes of JSON array each.

    One message per event made the worker pay faust's per-message cost for every HTTP
    event (issue 18: about 1,360 stored rows/s behind a 15,400 ev/s gateway); the array
    holds the events' bytes exactly as sent, so stage 1 sees what the department sent.
    """
    open_: dict[tuple[str, str], tuple[list[Verdict], int]] = {}
    out: list[tuple[str, str, list[Verdict]]] = []
    for v in todo:
        rec = v.record
        if rec is None:
            continue
        key = (rec.feed, rec.source_id)
        group, size = open_.get(key, ([], 2))
        if group and (len(group) >= ENVELOPE_MAX_EVENTS or size + len(v.raw) + 1 > max_bytes):
            open_.pop(key)
            group, size = [], 2
        if not group:
            out.append((rec.feed, rec.source_id, group))
        group.append(v)
        open_[key] = (group, size + len(v.raw) + 1)
    return out


async def publish(res: Resources, verdicts: list[Verdict]) -> int:
    """Produce every still-accepted event, batched into envelopes per source, and wait
    for Kafka's acknowledgement of each; the number of messages sent."""
    if not any(v.record is not None for v in verdicts):
        return 0
    return await publish_to(res.require_producer(), {
        feed: t.name for feed, t in res.settings.kafka.topics.raw().items()},
        res.settings.kafka.max_message_bytes, verdicts)


async def publish_to(producer: AIOKafkaProducer, topics: dict[str, str],
                     max_message_bytes: int, verdicts: list[Verdict]) -> int:
    """:func:`publish` with an explicit producer and feed topics (the MQTT bridge)."""
    todo = [v for v in verdicts if v.record is not None]
    if not todo:
        return 0
    limit = max_message_bytes * 9 // 10  # headroom for the record
    sends: list[tuple[list[Verdict], asyncio.Future[Any]]] = []
    for feed, source_id, group in envelopes(todo, limit):
        value = b"[" + b",".join(v.raw for v in group) + b"]"
        try:
            fut = await producer.send(topics[feed], value=value, key=source_id.encode())
        except Exception as exc:
            for v in group:
                _refuse(v, PUBLISH_FAILED, f"Kafka refused the event: {type(exc).__name__}")
            continue
        sends.append((group, fut))
    outcomes = await asyncio.gather(*(f for _, f in sends), return_exceptions=True)
    for (group, _), outcome in zip(sends, outcomes, strict=True):
        if isinstance(outcome, BaseException):
            for v in group:
                _refuse(v, PUBLISH_FAILED,
                        f"Kafka did not acknowledge: {type(outcome).__name__}")
    return len(sends)


def _count(verdicts: list[Verdict]) -> None:
    # Accepted events are counted again by stage 1 (ioc_ingest_*): the gateway has its own
    # counter so pipeline dashboards do not count HTTP events twice.
    outcomes: Counter[tuple[str, str]] = Counter()
    for v in verdicts:
        outcomes[(v.feed or "unknown", v.reason or "accepted")] += 1
    for (feed, outcome), n in outcomes.items():
        API_INGEST_EVENTS.labels(feed, outcome).inc(n)


# --------------------------------------------------------------------------- route
router = APIRouter(tags=["ingest"])

_BODY_DOC: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "description": "A JSON array of event envelopes, or NDJSON (one event per line). "
                       "The envelope is documented in docs/events.md.",
        "content": {
            "application/json": {"schema": {"type": "array", "items": {"type": "object"}}},
            "application/x-ndjson": {"schema": {"type": "string"}},
        },
    },
}


@router.post(
    "/v1/events",
    summary="Publish events (JSON array or NDJSON)",
    response_model=IngestResponse,
    responses={
        207: {"model": IngestResponse, "description": "Some events were rejected."},
        400: {"description": "The body holds no events or is not a JSON array."},
        401: {"description": "No API key, or an unknown or revoked one."},
        403: {"description": "Not a department key, or every event was refused."},
        413: {"description": "The body is larger than api.max_body_bytes, or holds more "
                            "than api.max_events_per_request events."},
        415: {"description": "Neither application/json nor application/x-ndjson."},
        429: {"description": "Request or event rate of the key (or the process) exceeded; "
                            "see Retry-After."},
        503: {"description": "Kafka did not take the events, or the pipeline is behind "
                            "(pipeline_backlogged, see Retry-After); send them again."},
    },
    openapi_extra=_BODY_DOC,
)
async def post_events(request: Request, key: DepartmentKey, res: ResourcesDep
                      ) -> Response:
    """Validate, authorise and publish events to their feed's Kafka topic."""
    kid = str(key.id)
    wait = res.event_limiter.check(kid, cost=1.0)  # before reading: a spent key costs nothing
    if wait > 0:
        raise RateLimitedError(f"more than {res.event_limiter.per_minute} events a minute "
                               "with this key", retry_after=wait, code="event_rate_limited")
    # before reading the body: a held request costs an open connection, nothing more
    await res.backpressure.admit()
    if res.validation_inflight.get(kid, 0) >= _INFLIGHT_PER_KEY:
        raise RateLimitedError("another request of this key is being validated",
                               retry_after=1.0, code="too_many_concurrent")
    res.validation_inflight[kid] = res.validation_inflight.get(kid, 0) + 1
    try:
        body = await read_body(request.stream(), limit=res.settings.api.max_body_bytes,
                               content_length=request.headers.get("content-length"))
        verdicts = await split_and_validate(res, kid, body,
                                             request.headers.get("content-type"))
    finally:
        left = res.validation_inflight.get(kid, 1) - 1
        if left > 0:
            res.validation_inflight[kid] = left
        else:
            res.validation_inflight.pop(kid, None)
    await authorise(res, key, verdicts)
    messages = await publish(res, verdicts)
    _count(verdicts)
    # plain dicts (not one pydantic model per event): a request of 5,000 rejected events
    # must not cost the event loop more than its answer's JSON
    results = [{"index": i, "event_id": v.event_id,
                "status": "accepted" if v.reason is None else "rejected",
                "reason": v.reason, "message": v.message, "count": v.run}
               for i, v in enumerate(verdicts) if v.run]
    accepted = sum(1 for v in verdicts if v.reason is None)
    res.backpressure.published(accepted, messages)
    payload: dict[str, Any] = {"accepted": accepted, "rejected": len(verdicts) - accepted,
                               "results": results}
    _log_rejections(key, verdicts)
    if accepted == len(verdicts):
        return _json(payload, 200)
    if accepted == 0 and all(v.reason in _FORBIDDEN for v in verdicts):
        payload.update(error="forbidden", message="no event of this request may be "
                       "published with this key")
        return _json(payload, 403)
    if accepted == 0 and any(v.reason == PUBLISH_FAILED for v in verdicts):
        raise UnavailableError("Kafka did not acknowledge the events; send them again",
                          code="kafka_unavailable", detail=payload["results"])
    return _json(payload, 207)


VALIDATION_SLACK_S: Final = 5.0
"""Beyond the validation budget, how long the gateway waits for a worker's answer (queued
behind other requests) before answering 503."""


async def split_and_validate(res: Resources, kid: str, body: bytes,
                              content_type: str | None) -> list[Verdict]:
    """Split and validate in a validation worker process, then charge the key's event
    budget in full (the route took one event before reading the body)."""
    try:
        budget = res.settings.api.validation_budget_s
        wire, err = await asyncio.wait_for(asyncio.get_running_loop().run_in_executor(
            res.validation, validation.run, body, content_type,
            res.settings.api.max_events_per_request, budget), budget + VALIDATION_SLACK_S)
    except TimeoutError:  # the worker stops at its own deadline; this is the backstop
        raise UnavailableError("event validation is busy; send the events again",
                               code="validation_timeout") from None
    except BrokenProcessPool:  # a worker died (killed, out of memory): start new ones
        log.error("validation workers died; starting new ones")
        res.restart_validation()
        raise UnavailableError("event validation is restarting; send the events again",
                               code="validation_unavailable") from None
    if err is not None:
        if err[2] == Reason.TOO_MANY_EVENTS:  # as costly as a full request of junk
            res.event_limiter.debit(kid, float(REJECTED_WEIGHT
                                               * res.settings.api.max_events_per_request))
        validation.raise_error(err)
    assert wire is not None
    verdicts = validation.from_wire(wire)
    rejected = sum(1 for v in verdicts if v.reason is not None)
    res.event_limiter.debit(kid, float(len(verdicts) - rejected - 1
                                       + REJECTED_WEIGHT * rejected))
    return verdicts


def _json(payload: dict[str, Any], status: int) -> Response:
    return Response(orjson.dumps(payload), status_code=status, media_type="application/json")


def _log_rejections(key: ApiKey, verdicts: list[Verdict]) -> None:
    shown = 0
    for i, v in enumerate(verdicts):
        if v.reason is None:
            continue
        if shown == _LOG_REJECTED_MAX:
            log.info("more events rejected", extra={"key": key.name})
            return
        shown += 1
        log.info("event rejected", extra={"key": key.name, "index": i, "event_id": v.event_id,
                                          "feed": v.feed, "reason": v.reason})
