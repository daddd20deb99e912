"""The operator API: alerts, acknowledgements, manual resolution, silences, live stream.

Roles: ``viewer`` reads (alerts, history, silences, the stream); ``operator`` also
acknowledges, resolves and manages silences; ``admin`` also reads the audit log. Every
action goes through :mod:`alerts.store`, which locks the alert, applies the state
machine, queues notifications and writes ``audit_log`` with the key's name as actor,
all in one transaction.

The stream (``GET /v1/alerts/stream``) is server-sent events: one ``transition`` event
per row stored in ``alert_transitions``, found by polling ``recorded_at`` every second
with an overlap (a transaction that commits late is still seen, once). The event id is
the row's ``recorded_at``; a client reconnecting with ``Last-Event-ID`` continues
after it.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Mapping
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, Final

import orjson
from fastapi import APIRouter, Header, Query, Request
from fastapi.responses import StreamingResponse
from psycopg.rows import dict_row
from pydantic import AwareDatetime, BaseModel, Field

from alerts import store
from alerts.durations import parse_duration
from alerts.errors import AlertNotFoundError, InvalidTransitionError
from alerts.model import AlertState, Transition
from alerts.notify import generator_url, receivers_for
from alerts.silences import Matcher, Silence
from ioc.api.deps import AdminKey, OperatorKey, Resources, ResourcesDep, ViewerKey
from ioc.api.errors import BadRequestError, ConflictError, NotFoundError

log = logging.getLogger("ioc.api.alerts")

POLL_S: Final = 1.0
OVERLAP: Final = timedelta(seconds=30)
HEARTBEAT_S: Final = 15.0

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
    name: str
    op: str = Field("=", pattern=r"^(=|!=|=~|!~)$")
    value: str


class SilenceIn(BaseModel):
    matchers: list[str | MatcherIn] = Field(
        min_length=1, description='Matchers as text (`commune_code="00004"`, '
        '`rule_id=~"pm25_.*"`) or objects {name, op, value}.')
    starts_at: AwareDatetime | None = Field(None, description="Default: now.")
    ends_at: AwareDatetime | None = None
    duration: str | None = Field(None, description="Instead of ends_at: 30m, 2h, 1d ...")
    comment: str = Field("", max_length=2000)


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
                             "description": "`event: transition` with a JSON transition."}})
async def stream_alerts(
    request: Request, _key: ViewerKey, res: ResourcesDep,
    severity: Multi = None, commune: Multi = None, province: Multi = None, rule: Multi = None,
    last_event_id: Annotated[str | None, Header(alias="Last-Event-ID")] = None,
) -> StreamingResponse:
    since: datetime | None = None
    if last_event_id:
        try:
            since = datetime.fromisoformat(last_event_id)
        except ValueError:
            raise BadRequestError("Last-Event-ID is not a timestamp from this stream") from None
    filters = {"severity": _values(severity), "commune_code": _values(commune),
               "province_code": _values(province), "rule_id": _values(rule)}
    return StreamingResponse(
        _transitions(request, res, since, filters), media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})


async def _transitions(request: Request, res: Resources, since: datetime | None,
                       filters: Mapping[str, list[str] | None]) -> AsyncIterator[bytes]:
    where = ["recorded_at > %s"]
    params: list[Any] = []
    for column, values in filters.items():
        if values is not None:
            if column in ("commune_code", "province_code"):
                where.append(f"labels->>'{column}' = ANY(%s)")
            else:
                where.append(f"{column} = ANY(%s)")
            params.append(values)
    sql = ("SELECT * FROM alert_transitions WHERE " + " AND ".join(where)
           + " ORDER BY recorded_at, fingerprint, seq LIMIT 1000")
    if since is None:  # the database's clock, the one recorded_at is written with
        async with res.pool.connection() as conn:
            cur0 = await conn.execute("SELECT clock_timestamp()")
            row0 = await cur0.fetchone()
        since = row0[0] if row0 else datetime.now(UTC)
    floor: datetime = since
    cursor = floor
    seen: dict[tuple[str, int, str], datetime] = {}
    yield b"retry: 2000\n: connected\n\n"
    idle = 0.0
    while not await request.is_disconnected():
        lower = max(floor, cursor - OVERLAP)
        async with res.pool.connection() as conn, conn.cursor(row_factory=dict_row) as cur:
            await cur.execute(sql, [lower, *params])
            rows = await cur.fetchall()
        sent = False
        for row in rows:
            key = (str(row["fingerprint"]), int(row["seq"]), str(row["kind"]))
            recorded: datetime = row["recorded_at"]
            cursor = max(cursor, recorded)
            if key in seen:
                continue
            seen[key] = recorded
            data = TransitionOut.model_validate(row).model_dump(mode="json")
            data["recorded_at"] = recorded.isoformat()
            yield (b"id: " + recorded.isoformat().encode() + b"\nevent: transition\ndata: "
                   + orjson.dumps(data) + b"\n\n")
            sent = True
        horizon = cursor - OVERLAP
        for k in [k for k, at in seen.items() if at < horizon]:
            del seen[k]
        if len(rows) == 1000:
            continue  # more to read right away
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
             summary="Acknowledge a firing alert", responses=_ACTION_RESPONSES)
async def ack_alert(fingerprint: str, key: OperatorKey, res: ResourcesDep,
                    body: NoteIn | None = None) -> TransitionOut:
    return await _act("acknowledge", fingerprint, body.note if body else None, key.name, res)


@router.post("/v1/alerts/{fingerprint}/resolve", response_model=TransitionOut,
             summary="Resolve an alert by hand", responses=_ACTION_RESPONSES)
async def resolve_alert(fingerprint: str, key: OperatorKey, res: ResourcesDep,
                        body: NoteIn | None = None) -> TransitionOut:
    return await _act("resolve", fingerprint, body.note if body else None, key.name, res)


# --------------------------------------------------------------------------- silences
@router.get("/v1/silences", response_model=list[SilenceOut], summary="List silences")
async def list_silences(_key: ViewerKey, res: ResourcesDep,
                        include_expired: bool = False) -> list[SilenceOut]:
    async with res.pool.connection() as conn:
        found = await store.list_silences(conn, include_expired=include_expired)
    return [SilenceOut.of(s) for s in found]


@router.post("/v1/silences", response_model=SilenceOut, status_code=201,
             summary="Create a silence", responses={400: {"description": "Bad matcher/time"}})
async def create_silence(body: SilenceIn, key: OperatorKey, res: ResourcesDep) -> SilenceOut:
    matchers = [_matcher(m) for m in body.matchers]
    starts = body.starts_at or datetime.now(UTC)
    if body.ends_at is not None:
        ends = body.ends_at
    elif body.duration is not None:
        try:
            ends = starts + parse_duration(body.duration)
        except ValueError as exc:
            raise BadRequestError(str(exc), code="bad_duration") from exc
    else:
        raise BadRequestError("give ends_at or duration", code="missing_end")
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
