"""``POST /v1/alertmanager/webhook/<receiver>``: Alertmanager's webhook receivers.

Alertmanager routes every notification (config/alertmanager/alertmanager.yml); each
department's (and the duty desk's) webhook receiver posts here, and this route records
a receipt per notification in ``alertmanager_receipts``: who was told what, and when,
for incidents and audits. It routes nothing itself.

Authentication: ``Authorization: Bearer <token>``, the receiver's own token
(``<alerts.receiver_tokens_dir>/<receiver>.token``, :mod:`alerts.receiver_tokens`),
compared in constant time; a wrong, missing or unknown receiver's token is 401 alike,
and costs the client address a token of the keyless throttle (429 once spent).
The body is Alertmanager's webhook payload (version 4), bounded by
``api.max_operator_body_bytes`` and by the field limits below; the payload must name
the receiver of the path.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

import orjson
from fastapi import APIRouter, Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from psycopg.types.json import Jsonb
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from alerts.receiver_tokens import RECEIVER, token_matches
from ioc.api.deps import KEY_NAME_SCOPE, ResourcesDep
from ioc.api.errors import BadRequestError, RateLimitedError, UnauthorizedError

router = APIRouter(tags=["alertmanager"])

_bearer = HTTPBearer(auto_error=False, description="The receiver's token (credentials_file)")
_Labels = Annotated[dict[Annotated[str, Field(max_length=128)],
                         Annotated[str, Field(max_length=4096)]], Field(max_length=64)]

_INSERT = """
INSERT INTO alertmanager_receipts (receiver, department, status, alertname, province_code,
                                   group_key, truncated, alerts)
VALUES (%s, %s, %s, %s, %s, %s, %s, %s)
RETURNING id
"""


class AmAlert(BaseModel):
    """One alert of a notification (the fields ioc keeps)."""

    model_config = ConfigDict(extra="ignore")
    status: Literal["firing", "resolved"]
    labels: _Labels
    annotations: _Labels = {}
    startsAt: datetime  # noqa: N815 - Alertmanager's field names
    endsAt: datetime | None = None  # noqa: N815
    fingerprint: str = Field("", max_length=64)


class AmNotification(BaseModel):
    """Alertmanager's webhook payload, version 4."""

    model_config = ConfigDict(extra="ignore")
    version: Literal["4"]
    receiver: str = Field(max_length=63)
    status: Literal["firing", "resolved"]
    groupKey: str = Field(max_length=4096)  # noqa: N815
    truncatedAlerts: int = Field(0, ge=0)  # noqa: N815
    groupLabels: _Labels = {}  # noqa: N815
    commonLabels: _Labels = {}  # noqa: N815
    alerts: list[AmAlert] = Field(max_length=1000)


def _receipt_alerts(n: AmNotification) -> list[dict[str, Any]]:
    return [{"fingerprint": a.annotations.get("fingerprint") or a.fingerprint,
             "status": a.status, "labels": a.labels} for a in n.alerts]


@router.post("/v1/alertmanager/webhook/{receiver}", summary="Alertmanager webhook receiver")
async def receive(
    receiver: str,
    request: Request,
    res: ResourcesDep,
    creds: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> dict[str, Any]:
    """Record one notification Alertmanager sent to ``receiver``."""
    presented = creds.credentials if creds is not None and \
        creds.scheme.lower() == "bearer" else ""
    if not RECEIVER.match(receiver) or not presented or not token_matches(
            res.settings.receiver_tokens_dir(), receiver, presented):
        # wrong tokens cost the address like keyless requests (ioc.api.deps); a right
        # token is never throttled, so a flood cannot lock Alertmanager out
        address = request.client.host if request.client is not None else "unknown"
        if res.anonymous_limiter.wait(address) > 0:
            raise RateLimitedError("too many requests without a valid token from this "
                                   "address", retry_after=1.0,
                                   code="too_many_unauthenticated")
        res.anonymous_limiter.debit(address, 1.0)
        raise UnauthorizedError("send the receiver's token as 'Authorization: Bearer "
                                "<token>' (alerts.receiver_tokens_dir/<receiver>.token)",
                                code="invalid_receiver_token")
    if res.global_limiter.check("*") > 0:
        raise RateLimitedError("the API is busy; retry shortly", retry_after=1.0,
                               code="overloaded")
    request.scope[KEY_NAME_SCOPE] = f"alertmanager:{receiver}"
    try:
        note = AmNotification.model_validate(orjson.loads(await request.body()))
    except (orjson.JSONDecodeError, ValidationError) as exc:
        raise BadRequestError("not an Alertmanager webhook payload (version 4)",
                              code="invalid_notification",
                              detail=str(exc)[:500]) from exc
    if note.receiver != receiver:
        raise BadRequestError(f"the payload is for receiver {note.receiver!r}, not "
                              f"{receiver!r}", code="receiver_mismatch")
    labels = {**note.commonLabels, **note.groupLabels}
    async with res.pool.connection() as conn:
        cur = await conn.execute(_INSERT, (
            receiver, labels.get("department"), note.status, labels.get("alertname"),
            labels.get("province_code"), note.groupKey, note.truncatedAlerts,
            Jsonb(_receipt_alerts(note))))
        row = await cur.fetchone()
    return {"receipt": row[0] if row else None, "alerts": len(note.alerts)}
