"""The operator API's alerts: list, one alert with its history, acknowledge, resolve.

Roles: ``viewer`` reads; ``operator`` (and ``admin``) also acknowledges and resolves.
Every action goes through :mod:`alerts.store`, which locks the alert, applies the state
machine, queues notifications and writes ``audit_log`` with the key's name as actor,
all in one transaction. The live stream is :mod:`ioc.api.alert_stream`, silences
:mod:`ioc.api.silences`, the audit log :mod:`ioc.api.audit`.
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from pydantic import BaseModel, Field

from alerts import store
from alerts.errors import AlertNotFoundError, InvalidTransitionError
from alerts.model import AlertState, Transition
from alerts.notify import generator_url, receivers_for
from ioc.api.deps import OperatorKey, Resources, ResourcesDep, ViewerKey
from ioc.api.errors import ConflictError, NotFoundError
from ioc.api.inputs import Multi, body_doc, query_values, read_model

log = logging.getLogger("ioc.api.alerts")

router = APIRouter(tags=["alerts"])


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
            conn, states=query_values(state), severities=query_values(severity),
            communes=query_values(commune), provinces=query_values(province),
            rule_ids=query_values(rule),
            limit=limit + 1, offset=offset)
    more = len(found) > limit
    return AlertPage(alerts=[AlertOut.of(a) for a in found[:limit]], limit=limit,
                     offset=offset, next_offset=offset + limit if more else None)


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
             openapi_extra=body_doc(NoteIn, required=False))
async def ack_alert(fingerprint: str, key: OperatorKey, res: ResourcesDep,
                    request: Request) -> TransitionOut:
    body = await read_model(request, NoteIn, optional=True)
    return await _act("acknowledge", fingerprint, body.note if body else None, key.name, res)


@router.post("/v1/alerts/{fingerprint}/resolve", response_model=TransitionOut,
             summary="Resolve an alert by hand", responses=_ACTION_RESPONSES,
             openapi_extra=body_doc(NoteIn, required=False))
async def resolve_alert(fingerprint: str, key: OperatorKey, res: ResourcesDep,
                        request: Request) -> TransitionOut:
    body = await read_model(request, NoteIn, optional=True)
    return await _act("resolve", fingerprint, body.note if body else None, key.name, res)
