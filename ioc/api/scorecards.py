"""``GET /v1/scorecards``: each commune, agency or province against its own targets and
ranked among its peers, for leaders (docs/kpis.md "Scorecards", docs/api.md).
Read-only, viewer keys and above."""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any

from fastapi import APIRouter, Query

from ioc.api.deps import ResourcesDep, ViewerKey
from ioc.api.errors import BadRequestError
from ioccore import kpis, scorecards
from ioccore.kpis import KPI_IDS, Grain
from ioccore.scorecards import Level

router = APIRouter(tags=["kpis"])


@router.get("/v1/scorecards", summary="Units' KPIs against their targets, ranked among "
                                       "their peers")
async def scorecard(
    _key: ViewerKey, res: ResourcesDep,
    level: Annotated[Level, Query(description="commune or agency (of a province), or "
                                              "province (of the nation)")] = "province",
    province: Annotated[str | None, Query(pattern=r"^\d{2}$")] = None,
    grain: Annotated[Grain, Query()] = "month",
    period: Annotated[date | None, Query(description="Any day of the period; default "
                                                     "today (Vietnam time)")] = None,
    rank_by: Annotated[str, Query()] = "online_share",
) -> dict[str, Any]:
    if rank_by not in KPI_IDS:
        raise BadRequestError(f"rank_by must be one of {list(KPI_IDS)}", code="invalid_query")
    if level != "province" and province is None:
        raise BadRequestError(f"level={level} needs province", code="invalid_query")
    source = scorecards.default_source(res.settings)
    async with res.pool.connection() as conn:
        card = await scorecards.fetch_scorecard(
            conn, level=level, province=province, grain=grain,
            period=period or kpis.vn_today(), source=source)
    return card.as_json(rank_by)
