"""``/v1/reports``: the stored periodic reports and their files, and on-demand reports
(docs/reports.md). Listing and downloading: viewer keys and above; generating one now:
operator keys (it costs a database snapshot's worth of queries)."""

from __future__ import annotations

import asyncio
from datetime import date
from typing import Annotated, Any, Final, Literal

from fastapi import APIRouter, Query
from fastapi.responses import Response
from pydantic import BaseModel, ConfigDict, Field

from ioc.api.deps import OperatorKey, ResourcesDep, ViewerKey
from ioc.api.errors import NotFoundError
from ioccore import kpis, scorecards
from ioccore.db.connections import connect
from ioccore.kpis import Grain
from ioccore.reports import store

router = APIRouter(tags=["reports"])
SCOPE: Final = r"^(nation|\d{2})$"
MEDIA: Final = {
    "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    "csv": "text/csv; charset=utf-8"}


@router.get("/v1/reports", summary="Stored reports, newest period first")
async def list_reports(
    _key: ViewerKey, res: ResourcesDep,
    scope: Annotated[str | None, Query(pattern=SCOPE)] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> dict[str, Any]:
    async with res.pool.connection() as conn:
        cur = await conn.execute(store.list_query(), {"scope": scope, "limit": limit})
        rows = await cur.fetchall()
    return {"reports": [store.ReportInfo(*r).as_json() for r in rows]}


@router.get("/v1/reports/{report_id}.{fmt}", summary="A report's file (XLSX or CSV)")
async def download(_key: ViewerKey, res: ResourcesDep, report_id: int,
                   fmt: Literal["xlsx", "csv"]) -> Response:
    async with res.pool.connection() as conn:
        cur = await conn.execute(
            f"SELECT scope, grain, period, {fmt} FROM reports "  # fmt: one of two literals
            "WHERE id = %s AND state = 'done'", (report_id,))
        row = await cur.fetchone()
    if row is None or row[3] is None:
        raise NotFoundError(f"no finished report {report_id}")
    name = f"ioc-report-{row[0]}-{row[1]}-{row[2].isoformat()}-{report_id}.{fmt}"
    return Response(bytes(row[3]), media_type=MEDIA[fmt],
                    headers={"Content-Disposition": f'attachment; filename="{name}"'})


class ReportRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    scope: str = Field(pattern=SCOPE)
    grain: Grain = "month"
    period: date | None = None


@router.post("/v1/reports", status_code=201, summary="Generate a report now")
async def generate(key: OperatorKey, res: ResourcesDep, body: ReportRequest
                   ) -> dict[str, Any]:
    source = scorecards.default_source(res.settings)
    conninfo = res.settings.database.conninfo()

    def work() -> store.ReportInfo:
        with connect(conninfo, purpose="api-reports", autocommit=True) as conn:
            return store.generate_on_demand(
                conn, scope=body.scope, grain=body.grain,
                period=body.period or kpis.vn_today(), source=source,
                requested_by=key.name)

    info = await asyncio.to_thread(work)
    return info.as_json()
