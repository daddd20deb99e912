"""The audit log (``GET /v1/audit``), admin only: who acknowledged, resolved, silenced,
created or revoked what. Entries are written by :mod:`alerts.store` and the key tools
in the transaction of the action they record."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query
from pydantic import BaseModel

from alerts import store
from ioc.api.deps import AdminKey, ResourcesDep

router = APIRouter(tags=["alerts"])


class AuditOut(BaseModel):
    at: datetime
    actor: str
    action: str
    target: str
    detail: dict[str, Any]


@router.get("/v1/audit", response_model=list[AuditOut], summary="The audit log (admin)")
async def audit_log(_key: AdminKey, res: ResourcesDep, target: str | None = None,
                    limit: Annotated[int, Query(ge=1, le=1000)] = 100) -> list[AuditOut]:
    async with res.pool.connection() as conn:
        rows = await store.list_audit(conn, target=target, limit=limit)
    return [AuditOut(**row) for row in rows]
