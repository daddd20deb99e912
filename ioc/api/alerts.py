"""The operator API: alerts, acknowledgements, manual resolution, silences, live stream.

Roles: ``viewer`` reads (alerts, history, silences, the stream); ``operator`` also
acknowledges, resolves and manages silences; ``admin`` also reads the audit log. Every
action goes through :mod:`alerts.store`, which locks the alert, applies the state
machine, queues notifications and writes ``audit_log`` with the key's name as actor,
all in one transaction.

The stream (``GET /v1/alerts/stream``) is server-sent events: one ``transition`` event
per row stored in ``alert_transitions``, found by polling every second with keyset
paging on ``(recorded_at, fingerprint, seq)`` over a window that overlaps the last 30 s
(a transaction that commits late is still seen, once). Every page advances the key, so
any number of transitions sharing one ``recorded_at`` is read once and the loop always
sleeps between polls. The event id is ``<recorded_at>|<fingerprint>|<seq>``; a client
reconnecting with ``Last-Event-ID`` continues after it (an id that is not one of these
is refused with 400 before the stream starts). Streams are capped per key and per
process (429), and the key is checked again on every poll, so a revoked key's streams
end within the key cache's lifetime.

Bodies are read after authentication (never as FastAPI body parameters, which are read
and parsed before any dependency runs), within ``api.max_operator_body_bytes``.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Mapping
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, Final, TypeVar

import orjson
from fastapi import APIRouter, Depends, Header, Query, Request
from fastapi.responses import StreamingResponse
from fastapi.security import HTTPAuthorizationCredentials
from psycopg.rows import dict_row
from pydantic import AwareDatetime, BaseModel, Field, ValidationError
from starlette.background import BackgroundTask

from alerts import store
from alerts.durations import parse_duration
from alerts.errors import AlertNotFoundError, InvalidTransitionError
from alerts.model import AlertState, Transition
from alerts.notify import generator_url, receivers_for
from alerts.silences import MAX_MATCHERS, MAX_NAME, MAX_VALUE, Matcher, Silence
from ioc.api.deps import (
    AdminKey,
    OperatorKey,
    Resources,
    ResourcesDep,
    ViewerKey,
    bearer_scheme,
)
from ioc.api.errors import BadRequestError, ConflictError, NotFoundError, RateLimitedError
from ioc.api.ingest import read_body
from ioccore.events.validate import FORBIDDEN_CHARS

log = logging.getLogger("ioc.api.alerts")

POLL_S: Final = 1.0
OVERLAP: Final = timedelta(seconds=30)
HEARTBEAT_S: Final = 15.0
PAGE: Final = 1000
MAX_SILENCE: Final = timedelta(days=366)
"""Longest silence (ends_at - starts_at); starts_at at most this far from now either."""
_EVENT_ID_MAX: Final = 200

router = APIRouter(tags=["alerts"])


# --------------------------------------------------------------------------- models
class AlertOut(BaseModel):
    fingerprint: str
    rule_id: str
    state: str
    severity: str
    labels: dict[str, str]
    annotations: dict[str, str]
    commune_code: str | None
    province_code: str | None
    seq: int
    started_at: datetime | None
    firing_at: datetime | None
    acknowledged_by: str | None
    acknowledged_at: datetime | None
    resolved_at: datetime | None
    last_value: float | None
    updated_at: datetime | None

    @classmethod
    def of(cls, a: AlertState) -> AlertOut:
        return cls(fingerprint=a.fingerprint, rule_id=a.rule_id, state=a.state,
                   severity=a.severity, labels=a.labels, annotations=a.annotations,
                   commune_code=a.labels.get("commune_code"),
                   province_code=a.labels.get("province_code"), seq=a.seq,
                   started_at=a.started_at, firing_at=a.firing_at,
                   acknowledged_by=a.acknowledged_by, acknowledged_at=a.acknowledged_at,
                   resolved_at=a.resolved_at, last_value=a.last_value,
                   updated_at=a.updated_at)


class TransitionOut(BaseModel):
    fingerprint: str
    seq: int
    rule_id: str
    kind: str
    from_state: str
    to_state: str
    at: datetime
    severity: str
    labels: dict[str, str]
    annotations: dict[str, str]
    value: float | None
    actor: str
    note: str | None
    receiver: str | None
    backfilled: bool = False
    """Already in the past when evaluated (event-time backfill): history, not a page."""

    @classmethod
    def of(cls, t: Transition) -> TransitionOut:
        return cls(fingerprint=t.fingerprint, seq=t.seq, rule_id=t.rule_id, kind=t.kind,
                   from_state=t.from_state, to_state=t.to_state, at=t.at,
                   severity=t.severity, labels=dict(t.labels),
                   annotations=dict(t.annotations), value=t.value, actor=t.actor,
                   note=t.note, receiver=t.receiver,
                   backfilled=bool(getattr(t, "backfilled", False)))


class AlertPage(BaseModel):
    alerts: list[AlertOut]
    limit: int
    offset: int
    next_offset: int | None = Field(description="Offset of the next page; null at the end.")


class AlertDetail(BaseModel):
    alert: AlertOut
    history: list[TransitionOut]


class NoteIn(BaseModel):
    note: str | None = Field(None, max_length=2000)


class MatcherIn(BaseModel):
    name: str = Field(max_length=MAX_NAME)
    op: str = Field("=", pattern=r"^(=|!=|=~|!~)$")
    value: str = Field(max_length=MAX_VALUE)


M = TypeVar("M", bound=BaseModel)


class SilenceIn(BaseModel):
    matchers: list[Annotated[str, Field(max_length=MAX_VALUE + MAX_NAME + 8)] | MatcherIn] = \
        Field(min_length=1, max_length=MAX_MATCHERS,
              description='Matchers as text (`commune_code="00004"`, `rule_id=~"pm25_.*"`, '
              "RE2 syntax) or objects {name, op, value}.")
    starts_at: AwareDatetime | None = Field(None, description="Default: now.")
    ends_at: AwareDatetime | None = None
    duration: str | None = Field(None, max_length=32,
                                 description="Instead of ends_at: 30m, 2h, 1d ...")
    comment: str = Field("", max_length=2000)


async def read_model(request: Request, model: type[M], *,
                     optional: bool = False) -> M | None:
    """The request's JSON body as ``model``, read now (after authentication) and
    within the body limit; 400 ``bad_body`` when it is not one."""
    limit = request.app.state.resources.settings.api.max_operator_body_bytes
    body = await read_body(request.stream(), limit=limit,
                           content_length=request.headers.get("content-length"))
    if not body.strip():
        if optional:
            return None
        raise BadRequestError("a JSON body is required", code="bad_body")
    try:
        return model.model_validate_json(body)
    except ValidationError as exc:
        problems = [{"loc": [str(x) for x in e["loc"]], "msg": e["msg"]}
                    for e in exc.errors(include_url=False, include_input=False)][:20]
        raise BadRequestError("the body does not match the schema", code="bad_body",
                              detail=problems) from None


class SilenceOut(BaseModel):
    id: int
    matchers: list[dict[str, str]]
    starts_at: datetime
    ends_at: datetime
    created_by: str
    comment: str
    expired_by: str | None

    @classmethod
    def of(cls, s: Silence) -> SilenceOut:
        return cls(id=s.id, matchers=[m.to_json() for m in s.matchers], starts_at=s.starts_at,
                   ends_at=s.ends_at, created_by=s.created_by, comment=s.comment,
                   expired_by=s.expired_by)


class AuditOut(BaseModel):
    at: datetime
    actor: str
    action: str
    target: str
    detail: dict[str, Any]


# --------------------------------------------------------------------------- helpers
def _values(raw: list[str] | None) -> list[str] | None:
    """Repeated and comma-separated query values, flattened (None when absent)."""
    if not raw:
        return None
    out = [v.strip() for item in raw for v in item.split(",") if v.strip()]
    return out or None


def _matcher(m: str | MatcherIn) -> Matcher:
    try:
        if isinstance(m, str):
            return Matcher.parse(m)
        return Matcher.from_json(m.model_dump())
    except (ValueError, KeyError) as exc:
        raise BadRequestError(str(exc), code="bad_matcher") from exc


Multi = Annotated[list[str] | None, Query()]


def _body_doc(model: type[BaseModel], *, required: bool) -> dict[str, Any]:
    """OpenAPI request body of a route that reads its body itself (after auth); the
    model's ``$defs`` are inlined (their ``#/$defs/...`` refs mean nothing in OpenAPI)."""
    schema = model.model_json_schema()
    defs = schema.pop("$defs", {})

    def inline(node: Any) -> Any:
        if isinstance(node, dict):
            ref = node.get("$ref")
            if isinstance(ref, str) and ref.startswith("#/$defs/"):
                return inline(defs[ref.removeprefix("#/$defs/")])
            return {k: inline(v) for k, v in node.items()}
        if isinstance(node, list):
            return [inline(v) for v in node]
        return node

    return {"requestBody": {"required": required, "content": {
        "application/json": {"schema": inline(schema)}}}}


# --------------------------------------------------------------------------- alerts
@router.get("/v1/alerts", response_model=AlertPage, summary="List and filter alerts")
async def list_alerts(
    _key: ViewerKey, res: ResourcesDep,
    state: Multi = None, severity: Multi = None, commune: Multi = None,
    province: Multi = None, rule: Multi = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> AlertPage:
    """Alerts, most recently changed first. Every filter takes repeated or
    comma-separated values (``state=firing,acknowledged``)."""
    async with res.pool.connection() as conn:
        found = await store.list_alerts(
            conn, states=_values(state), severities=_values(severity),
            communes=_values(commune), provinces=_values(province), rule_ids=_values(rule),
            limit=limit + 1, offset=offset)
    more = len(found) > limit
    return AlertPage(alerts=[AlertOut.of(a) for a in found[:limit]], limit=limit,
                     offset=offset, next_offset=offset + limit if more else None)


@router.get("/v1/alerts/stream", summary="Live alert transitions (server-sent events)",
            response_class=StreamingResponse,
            responses={200: {"content": {"text/event-stream": {}},
                             "description": "`event: transition` with a JSON transition."},
                       400: {"description": "Last-Event-ID is not an id of this stream."},
                       429: {"description": "Too many open streams (key or process)."}})
async def stream_alerts(
    request: Request, key: ViewerKey, res: ResourcesDep,
    creds: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer_scheme)],
    severity: Multi = None, commune: Multi = None, province: Multi = None, rule: Multi = None,
    last_event_id: Annotated[str | None, Header(alias="Last-Event-ID")] = None,
) -> StreamingResponse:
    since = parse_event_id(last_event_id) if last_event_id else None
    filters = {"severity": _values(severity), "commune_code": _values(commune),
               "province_code": _values(province), "rule_id": _values(rule)}
    api = res.settings.api
    if res.streams.get(key.id, 0) >= api.max_streams_per_key:
        raise RateLimitedError(f"at most {api.max_streams_per_key} open streams per key",
                               retry_after=POLL_S * 5, code="too_many_streams")
    if sum(res.streams.values()) >= api.max_streams:
        raise RateLimitedError("too many open streams; retry later", retry_after=POLL_S * 5,
                               code="too_many_streams")
    token = creds.credentials if creds is not None else ""
    slot = _StreamSlot(res, key.id)
    return StreamingResponse(
        _counted(slot, _transitions(request, res, token, since, filters)),
        media_type="text/event-stream", background=BackgroundTask(slot.release),
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})


StreamKey = tuple[datetime, str, int]


def parse_event_id(text: str) -> StreamKey:
    """``<recorded_at>|<fingerprint>|<seq>`` (or a bare ``recorded_at`` of older
    clients); 400 ``bad_last_event_id`` for anything else."""
    bad = BadRequestError("Last-Event-ID is not an id from this stream",
                          code="bad_last_event_id")
    if len(text) > _EVENT_ID_MAX or FORBIDDEN_CHARS.search(text):
        raise bad
    parts = text.split("|")
    try:
        at = datetime.fromisoformat(parts[0])
        if at.tzinfo is None:
            raise bad
        at.astimezone(UTC)  # OverflowError at the edges of the calendar
        if len(parts) == 1:
            return (at, "", -1)
        if len(parts) != 3 or not parts[1]:
            raise bad
        seq = int(parts[2])
    except (ValueError, OverflowError):
        raise bad from None
    if not -1 <= seq < 2**62:
        raise bad
    return (at, parts[1], seq)


def event_id(k: StreamKey) -> bytes:
    return f"{k[0].isoformat()}|{k[1]}|{k[2]}".encode()


class _StreamSlot:
    """One open stream of a key, taken now and given back once (by the stream's end or
    the response's background task, whichever comes first: a client that disconnects
    before the first byte never starts the generator)."""

    def __init__(self, res: Resources, key_id: int) -> None:
        self.res, self.key_id, self.held = res, key_id, True
        res.streams[key_id] = res.streams.get(key_id, 0) + 1

    def release(self) -> None:
        if not self.held:
            return
        self.held = False
        left = self.res.streams.get(self.key_id, 1) - 1
        if left > 0:
            self.res.streams[self.key_id] = left
        else:
            self.res.streams.pop(self.key_id, None)


async def _counted(slot: _StreamSlot, stream: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
    """``stream``, with its slot released however it ends."""
    try:
        async for chunk in stream:
            yield chunk
    finally:
        slot.release()


async def _transitions(request: Request, res: Resources, token: str,
                       since: StreamKey | None, filters: Mapping[str, list[str] | None]
                       ) -> AsyncIterator[bytes]:
    where = ["(recorded_at, fingerprint, seq) > (%s, %s, %s)"]
    params: list[Any] = []
    for column, values in filters.items():
        if values is not None:
            if column in ("commune_code", "province_code"):
                where.append(f"labels->>'{column}' = ANY(%s)")
            else:
                where.append(f"{column} = ANY(%s)")
            params.append(values)
    sql = ("SELECT * FROM alert_transitions WHERE " + " AND ".join(where)
           + f" ORDER BY recorded_at, fingerprint, seq LIMIT {PAGE}")
    if since is None:  # the database's clock, the one recorded_at is written with
        async with res.pool.connection() as conn:
            cur0 = await conn.execute("SELECT clock_timestamp()")
            row0 = await cur0.fetchone()
        since = (row0[0] if row0 else datetime.now(UTC), "", -1)
    floor = since
    newest: datetime = since[0]
    seen: dict[tuple[str, int, str], datetime] = {}
    yield b"retry: 2000\n: connected\n\n"
    idle = 0.0
    while not await request.is_disconnected():
        if await res.keys.authenticate(token) is None:
            yield b"event: revoked\ndata: {}\n\n"  # the key was revoked: end the stream
            return
        # keyset pages over [newest - OVERLAP, now]: each page starts after the last key
        # read, so transitions sharing a recorded_at are never re-read within a poll
        start = max(floor, (newest - OVERLAP, "", -1))
        sent = False
        while True:
            async with res.pool.connection() as conn, \
                    conn.cursor(row_factory=dict_row) as cur:
                await cur.execute(sql, [*start, *params])
                rows = await cur.fetchall()
            for row in rows:
                recorded: datetime = row["recorded_at"]
                k = (str(row["fingerprint"]), int(row["seq"]), str(row["kind"]))
                start = (recorded, k[0], k[1])
                newest = max(newest, recorded)
                if k in seen:
                    continue
                seen[k] = recorded
                data = TransitionOut.model_validate(row).model_dump(mode="json")
                data["recorded_at"] = recorded.isoformat()
                yield (b"id: " + event_id(start) + b"\nevent: transition\ndata: "
                       + orjson.dumps(data) + b"\n\n")
                sent = True
            if len(rows) < PAGE:
                break
        horizon = newest - OVERLAP
        for k in [k for k, at in seen.items() if at < horizon]:
            del seen[k]
        idle = 0.0 if sent else idle + POLL_S
        if idle >= HEARTBEAT_S:
            idle = 0.0
            yield b": keep-alive\n\n"
        await asyncio.sleep(POLL_S)


@router.get("/v1/alerts/{fingerprint}", response_model=AlertDetail,
            summary="One alert with its history", responses={404: {"description": "Unknown"}})
async def get_alert(fingerprint: str, _key: ViewerKey, res: ResourcesDep) -> AlertDetail:
    async with res.pool.connection() as conn:
        try:
            alert, history = await store.get_alert(conn, fingerprint)
        except AlertNotFoundError as exc:
            raise NotFoundError(str(exc)) from exc
    return AlertDetail(alert=AlertOut.of(alert), history=[TransitionOut.of(t) for t in history])


async def _act(action: str, fingerprint: str, note: str | None, actor: str,
               res: Resources) -> TransitionOut:
    fn = store.acknowledge if action == "acknowledge" else store.resolve
    async with res.pool.connection() as conn:
        try:
            t = await fn(conn, fingerprint, actor, note, receivers=receivers_for(res.settings),
                         generator_url=generator_url(res.settings))
        except AlertNotFoundError as exc:
            raise NotFoundError(str(exc)) from exc
        except InvalidTransitionError as exc:
            raise ConflictError(str(exc), code="invalid_transition",
                           detail={"state": exc.state}) from exc
    log.info("alert %s", action, extra={"key": actor, "fingerprint": fingerprint})
    return TransitionOut.of(t)


_ACTION_RESPONSES: dict[int | str, dict[str, Any]] = {
    403: {"description": "The key is not an operator or admin key."},
    404: {"description": "No alert with this fingerprint."},
    409: {"description": "The alert's state does not allow this action."},
}


@router.post("/v1/alerts/{fingerprint}/ack", response_model=TransitionOut,
             summary="Acknowledge a firing alert", responses=_ACTION_RESPONSES,
             openapi_extra=_body_doc(NoteIn, required=False))
async def ack_alert(fingerprint: str, key: OperatorKey, res: ResourcesDep,
                    request: Request) -> TransitionOut:
    body = await read_model(request, NoteIn, optional=True)
    return await _act("acknowledge", fingerprint, body.note if body else None, key.name, res)


@router.post("/v1/alerts/{fingerprint}/resolve", response_model=TransitionOut,
             summary="Resolve an alert by hand", responses=_ACTION_RESPONSES,
             openapi_extra=_body_doc(NoteIn, required=False))
async def resolve_alert(fingerprint: str, key: OperatorKey, res: ResourcesDep,
                        request: Request) -> TransitionOut:
    body = await read_model(request, NoteIn, optional=True)
    return await _act("resolve", fingerprint, body.note if body else None, key.name, res)


# --------------------------------------------------------------------------- silences
@router.get("/v1/silences", response_model=list[SilenceOut], summary="List silences")
async def list_silences(_key: ViewerKey, res: ResourcesDep,
                        include_expired: bool = False) -> list[SilenceOut]:
    async with res.pool.connection() as conn:
        found = await store.list_silences(conn, include_expired=include_expired)
    return [SilenceOut.of(s) for s in found]


@router.post("/v1/silences", response_model=SilenceOut, status_code=201,
             summary="Create a silence", responses={400: {"description": "Bad matcher/time"}},
             openapi_extra=_body_doc(SilenceIn, required=True))
async def create_silence(request: Request, key: OperatorKey, res: ResourcesDep) -> SilenceOut:
    body = await read_model(request, SilenceIn)
    assert body is not None  # not optional
    matchers = [_matcher(m) for m in body.matchers]
    now = datetime.now(UTC)
    starts = body.starts_at or now
    try:
        if abs(starts - now) > MAX_SILENCE:
            raise BadRequestError(f"starts_at is more than {MAX_SILENCE.days} days from now",
                                  code="bad_duration")
        if body.ends_at is not None:
            ends = body.ends_at
        elif body.duration is not None:
            ends = starts + parse_duration(body.duration)
        else:
            raise BadRequestError("give ends_at or duration", code="missing_end")
        if ends - starts > MAX_SILENCE:
            raise BadRequestError(f"a silence lasts at most {MAX_SILENCE.days} days",
                                  code="bad_duration")
    except (ValueError, OverflowError) as exc:
        raise BadRequestError(f"bad duration or time: {str(exc)[:200]}",
                              code="bad_duration") from None
    async with res.pool.connection() as conn:
        try:
            silence = await store.create_silence(conn, matchers, starts_at=starts, ends_at=ends,
                                                 created_by=key.name, comment=body.comment)
        except ValueError as exc:
            raise BadRequestError(str(exc), code="bad_silence") from exc
    log.info("silence created", extra={"key": key.name, "silence": silence.id})
    return SilenceOut.of(silence)


@router.delete("/v1/silences/{silence_id}", response_model=SilenceOut,
               summary="Expire a silence now", responses={404: {"description": "Unknown"}})
async def expire_silence(silence_id: int, key: OperatorKey, res: ResourcesDep) -> SilenceOut:
    async with res.pool.connection() as conn:
        try:
            silence = await store.expire_silence(conn, silence_id, key.name)
        except AlertNotFoundError as exc:
            raise NotFoundError(str(exc)) from exc
    log.info("silence expired", extra={"key": key.name, "silence": silence_id})
    return SilenceOut.of(silence)


# --------------------------------------------------------------------------- audit
@router.get("/v1/audit", response_model=list[AuditOut], summary="The audit log (admin)")
async def audit_log(_key: AdminKey, res: ResourcesDep, target: str | None = None,
                    limit: Annotated[int, Query(ge=1, le=1000)] = 100) -> list[AuditOut]:
    async with res.pool.connection() as conn:
        rows = await store.list_audit(conn, target=target, limit=limit)
    return [AuditOut(**row) for row in rows]
