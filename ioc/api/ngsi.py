"""NGSI-LD in: what a FIWARE context broker (Orion-LD, Scorpio, Stellio) sends, turned
into ioc events by the model tables of :mod:`ioccore.formats.ngsi` (docs/ngsi-ld.md).

Routes, authenticated like ``POST /v1/events`` (a department key; a broker's
subscription sends it with ``receiverInfo``):

* ``POST /ngsi-ld/v1/notify``: a subscription's notification
  ``{"id", "type": "Notification", "subscriptionId", "notifiedAt", "data": [...]}``;
* ``POST /ngsi-ld/v1/entityOperations/upsert``: an array of entities;
* ``POST /ngsi-ld/v1/entities``: one entity.

Entities may be normalized or keyValues. The events made from them take the gateway's
own path (:mod:`ioc.api.ingest`: validation in a validation process, department, feed
and source ownership, one Kafka envelope per source, ``acks=all``). Every refusal, of an
entity, an attribute or an event, is answered in the response *and* produced to the
dead-letter topic with its reason (a broker does not read answers), source topic
``ngsi-ld:<subscriptionId or route>``.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import orjson
from fastapi import APIRouter, Request
from fastapi.responses import Response

from ioc.api import ingest
from ioc.api.deps import DepartmentKey, Resources, ResourcesDep
from ioc.api.errors import BadRequestError, RateLimitedError, UnavailableError
from ioc.api.validation import media_type
from ioccore.formats import ngsi
from ioccore.formats.problems import INVALID_NGSI, Problem
from ioccore.metrics import NGSI_EVENTS
from streams.stage1 import DeadLetter

log = logging.getLogger("ioc.api.ngsi")
router = APIRouter(tags=["ngsi-ld"])

MEDIA_TYPES = frozenset({"application/json", "application/ld+json", ""})
_RESPONSES: dict[int | str, dict[str, Any]] = {
    207: {"description": "Some entities, attributes or events were refused."},
    400: {"description": "Not JSON, or not a notification / entity / array of entities."},
    401: {"description": "No API key, or an unknown or revoked one."},
    413: {"description": "The body is larger than api.max_body_bytes."},
    503: {"description": "Kafka did not take the events; the broker should send again."},
}


@router.post("/ngsi-ld/v1/notify", summary="Receive an NGSI-LD notification",
             responses=_RESPONSES)
async def notify(request: Request, key: DepartmentKey, res: ResourcesDep) -> Response:
    return await _ingest(request, key, res, "notify")


@router.post("/ngsi-ld/v1/entityOperations/upsert", summary="Upsert NGSI-LD entities",
             responses=_RESPONSES)
async def upsert(request: Request, key: DepartmentKey, res: ResourcesDep) -> Response:
    return await _ingest(request, key, res, "upsert")


@router.post("/ngsi-ld/v1/entities", summary="Create one NGSI-LD entity",
             responses=_RESPONSES)
async def entity(request: Request, key: DepartmentKey, res: ResourcesDep) -> Response:
    return await _ingest(request, key, res, "entities")


async def _ingest(request: Request, key: Any, res: Resources, route: str) -> Response:
    kid = str(key.id)
    wait = res.event_limiter.check(kid, cost=1.0)
    if wait > 0:
        raise RateLimitedError(f"more than {res.event_limiter.per_minute} events a minute "
                               "with this key", retry_after=wait, code="event_rate_limited")
    await res.backpressure.admit()
    kind = media_type(request.headers.get("content-type"))
    if kind not in MEDIA_TYPES:
        raise BadRequestError(f"Content-Type {kind} is not accepted; use application/json "
                              "or application/ld+json", code=INVALID_NGSI)
    body = await ingest.read_body(request.stream(), limit=res.settings.api.max_body_bytes,
                                  content_length=request.headers.get("content-length"))
    try:
        decoded = orjson.loads(body)
    except orjson.JSONDecodeError:
        raise BadRequestError("the body is not JSON", code="not_json") from None
    entities, problem = ngsi.entities_of(decoded)
    if problem is not None:
        raise BadRequestError(problem.message, code=problem.reason)
    sub = decoded.get("subscriptionId") if isinstance(decoded, dict) else None
    origin = f"ngsi-ld:{sub if isinstance(sub, str) else route}"[:200]
    events, problems = ngsi.convert(entities, department=key.department or "")
    verdicts: list[ingest.Verdict] = []
    if events:
        raws = b"[" + b",".join(orjson.dumps(e) for e in events) + b"]"
        verdicts = await ingest.split_and_validate(res, kid, raws, "application/json")
        await ingest.authorise(res, key, verdicts)
        await ingest.publish(res, verdicts)
    results: list[dict[str, Any]] = [
        {"entity": p.index, "id": _id(entities, p.index), "attribute": p.attribute,
         "status": "rejected", "reason": p.reason, "message": p.message}
        for p in problems]
    for e, v in zip(events, verdicts, strict=True):
        results.append({"id": e["source_id"], "event_id": e["event_id"],
                        "metric": e["body"].get("metric"),
                        "status": "accepted" if v.reason is None else "rejected",
                        "reason": v.reason, "message": v.message})
    if any(v.reason == ingest.PUBLISH_FAILED for v in verdicts):
        raise UnavailableError("Kafka did not acknowledge the events; send them again",
                               code="kafka_unavailable")
    await _dead_letters(res, origin, entities, problems, events, verdicts)
    accepted = sum(1 for v in verdicts if v.reason is None)
    for e, v in zip(events, verdicts, strict=True):
        NGSI_EVENTS.labels(e["feed"], v.reason or "accepted").inc()
    for p in problems:
        NGSI_EVENTS.labels("unknown", p.reason).inc()
    rejected = len(results) - accepted
    payload = {"accepted": accepted, "rejected": rejected, "results": results}
    return Response(orjson.dumps(payload), status_code=200 if rejected == 0 else 207,
                    media_type="application/json")


def _id(entities: list[Any], index: int | None) -> str | None:
    if index is None or not isinstance(entities[index], dict):
        return None
    found = entities[index].get("id")
    return found if isinstance(found, str) else None


async def _dead_letters(res: Resources, origin: str, entities: list[Any],
                        problems: list[Problem], events: list[dict[str, Any]],
                        verdicts: list[ingest.Verdict]) -> None:
    letters: list[DeadLetter] = []
    for p in problems:
        value = orjson.dumps(entities[p.index]) if p.index is not None else b""
        source = _id(entities, p.index) or ""
        letters.append(DeadLetter(source.encode() or None, value, p.reason,
                                  f"{p.attribute}: {p.message}" if p.attribute else p.message,
                                  "unknown", origin, -1, -1, p.index))
    for e, v in zip(events, verdicts, strict=True):
        if v.reason is not None:
            letters.append(DeadLetter(e["source_id"].encode(), orjson.dumps(e), v.reason,
                                      v.message or "", e["feed"], origin, -1, -1, None))
    if not letters:
        return
    # best effort: the refusals are in the answer whatever happens here
    producer = res.require_producer()
    topic = res.settings.kafka.topics.deadletter.name
    sends = []
    try:
        for d in letters:
            sends.append(await producer.send(topic, value=d.value, key=d.key,
                                             headers=d.headers()))
    except Exception as exc:
        log.warning("NGSI-LD dead letters not produced: %s", type(exc).__name__)
    for outcome in await asyncio.gather(*sends, return_exceptions=True):
        if isinstance(outcome, BaseException):
            log.warning("NGSI-LD dead letter not acknowledged: %s", type(outcome).__name__)
