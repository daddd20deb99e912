"""``GET /v1/kpis``, ``/v1/kpis/national``, ``/v1/kpis/overdue``: public-service KPIs by
tier, over time and across the 34 provinces, against their targets (docs/api.md,
docs/kpis.md). Read-only, viewer keys and above; every figure comes with its exact
numerator and denominator from :func:`ioccore.kpis.fetch_counts`.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Annotated, Any, Final, Literal

from fastapi import APIRouter, Query

from ioc.api.deps import Resources, ResourcesDep, ViewerKey
from ioc.api.errors import BadRequestError
from ioccore import kpis
from ioccore.kpis import KPI_IDS, Grain

MAX_DAYS: Final = 400
router = APIRouter(tags=["kpis"])

ProvinceQ = Annotated[str | None, Query(pattern=r"^\d{2}$", description="e.g. 01")]
CommuneQ = Annotated[str | None, Query(pattern=r"^\d{5}$", description="e.g. 00004")]
GrainQ = Annotated[Grain, Query(description="day, week (ISO, from Monday) or month")]


def _source(res: Resources) -> kpis.KpiSource:
    """The nation reads what the provinces published; a province its own rows."""
    return "fed_kpi_daily" if res.settings.federation.role == "national" else "kpi_daily"


def _bad(message: str) -> BadRequestError:
    return BadRequestError(message, code="invalid_query")


@router.get("/v1/kpis", summary="KPIs per period and tier for the nation, a province or "
                                 "a commune, with targets and the previous period")
async def kpi_series(
    _key: ViewerKey, res: ResourcesDep,
    scope: Annotated[Literal["nation", "province", "commune"], Query()] = "nation",
    province: ProvinceQ = None, commune: CommuneQ = None, grain: GrainQ = "month",
    from_: Annotated[date | None, Query(alias="from")] = None,
    to: Annotated[date | None, Query()] = None,
) -> dict[str, Any]:
    today = kpis.vn_today()
    end_day = to or today
    start_day = from_ or kpis.previous_period(kpis.period_start(today, "month"), "month")
    if end_day < start_day:
        raise _bad("to is before from")
    if (end_day - start_day).days > MAX_DAYS:
        raise _bad(f"at most {MAX_DAYS} days per request")
    if scope == "province" and province is None:
        raise _bad("scope=province needs province")
    if scope == "commune" and commune is None:
        raise _bad("scope=commune needs commune")
    if scope == "nation":
        province = commune = None
    elif scope == "province":
        commune = None
    start = kpis.period_start(start_day, grain)
    end = kpis.next_period(kpis.period_start(end_day, grain), grain)
    async with res.pool.connection() as conn:
        if scope == "commune" and province is None:
            row = await (await conn.execute(
                "SELECT province_code FROM current_communes WHERE commune_code = %s",
                (commune,))).fetchone()
            province = row[0] if row else None
        rows = await kpis.fetch_counts(
            conn, grain=grain, start=kpis.previous_period(start, grain), end=end,
            province=province, commune=commune, source=_source(res))
    values = kpis.with_previous(rows, grain)
    periods = [
        {"period": p.isoformat(), "tier": tier,
         "kpis": {k: v.as_json() for k, v in vals.items()}}
        for (p, _prov, tier), vals in sorted(
            values.items(), key=lambda kv: (kv[0][0], kpis.tier_sort_key(kv[0][2])))
        if p >= start
    ]
    return {"scope": scope, "province_code": province, "commune_code": commune,
            "grain": grain, "timezone": "Asia/Ho_Chi_Minh", "from": start.isoformat(),
            "to": (end - timedelta(days=1)).isoformat(),
            "periods": periods}


@router.get("/v1/kpis/national", summary="All provinces side by side for one period, "
                                          "ranked, with the gap between tiers")
async def national(
    _key: ViewerKey, res: ResourcesDep, grain: GrainQ = "month",
    period: Annotated[date | None, Query(description="Any day of the period; default "
                                                     "today (Vietnam time)")] = None,
    rank_by: Annotated[str, Query()] = "online_share",
) -> dict[str, Any]:
    if rank_by not in KPI_IDS:
        raise _bad(f"rank_by must be one of {list(KPI_IDS)}")
    start = kpis.period_start(period or kpis.vn_today(), grain)
    async with res.pool.connection() as conn:
        rows = await kpis.fetch_counts(conn, grain=grain,
                                       start=kpis.previous_period(start, grain),
                                       end=kpis.next_period(start, grain), by_province=True,
                                       source=_source(res))
        names = await (await conn.execute(
            "SELECT province_code, province_name FROM current_provinces")).fetchall()
    values = kpis.with_previous(rows, grain)

    def block(province: str | None) -> dict[str, Any]:
        tiers = {tier: vals for (p, prov, tier), vals in values.items()
                 if p == start and prov == province}
        out: dict[str, Any] = {}
        for kid in KPI_IDS:
            per = {t: tiers[t][kid] for t in tiers}
            entry: dict[str, Any] = {t: v.as_json() for t, v in sorted(
                per.items(), key=lambda kv: kpis.tier_sort_key(kv[0]))}
            entry["tier_gap"] = kpis.tier_gap(per)
            out[kid] = entry
        return out

    provinces = [{"province_code": code, "province_name": name, "kpis": block(code)}
                 for code, name in names]
    extra = {prov for (_, prov, _) in values if prov is not None} - {c for c, _ in names}
    provinces += [{"province_code": code, "province_name": None, "kpis": block(code)}
                  for code in sorted(extra)]

    def rank_value(p: dict[str, Any]) -> tuple[int, float, str]:
        v = p["kpis"][rank_by].get("all", {}).get("value")
        return (0, -v, p["province_code"]) if v is not None else (1, 0.0, p["province_code"])

    provinces.sort(key=rank_value)
    for i, p in enumerate(provinces, 1):
        p["rank"] = i
    return {"grain": grain, "period": start.isoformat(), "rank_by": rank_by,
            "nation": block(None), "provinces": provinces}


_OVERDUE: Final = """
SELECT agency, min(agency_name), min(tier), min(province_code), count(*),
       min(due_at), extract(epoch FROM max(now() - due_at)) / 86400.0
FROM overdue_dossiers
WHERE (%(province)s::text IS NULL OR province_code = %(province)s::text)
  AND (%(tier)s::text IS NULL OR tier = %(tier)s::text)
GROUP BY agency ORDER BY count(*) DESC, agency LIMIT %(limit)s
"""


@router.get("/v1/kpis/overdue", summary="Per agency, dossiers open now past their deadline")
async def overdue(
    _key: ViewerKey, res: ResourcesDep, province: ProvinceQ = None,
    tier: Annotated[Literal["province", "commune", "unassigned"] | None, Query()] = None,
    limit: Annotated[int, Query(ge=1, le=5000)] = 100,
) -> dict[str, Any]:
    async with res.pool.connection() as conn:
        now_row = await (await conn.execute("SELECT now()")).fetchone()
        cur = await conn.execute(_OVERDUE, {"province": province, "tier": tier,
                                            "limit": limit})
        rows = await cur.fetchall()
    as_of = now_row[0] if now_row else datetime.now(UTC)
    return {"as_of": _iso(as_of), "agencies": [
        {"agency": a, "name": name, "tier": t, "province_code": p, "overdue": int(n),
         "oldest_due_at": _iso(due), "max_overdue_days": round(float(days), 2)}
        for a, name, t, p, n, due, days in rows]}


def _iso(t: datetime) -> str:
    return t.astimezone(UTC).isoformat().replace("+00:00", "Z")
