"""``/v1/feedback/console``: the console's reads of citizen reports.

Who sees what is decided here, never by the page: a ``department`` or ``responder`` key
reads only the reports routed to its own department (asking for another answers 403);
``viewer`` keys and above read every department's, optionally filtered. No answer
carries the reporter's contact (``GET /v1/feedback/reports/{id}/contact`` is the only
route to it, for the report's department and admins).

* ``GET reports``: the list (status, category, commune, age, due, overdue, department),
  most urgent first, keyset-paginated (``after``), at most :data:`MAX_PAGE` a page.
* ``GET map``: open reports as GeoJSON points (overdue first, at most :data:`MAX_POINTS`)
  and the communes that have open reports with their counts and outlines.
* ``GET kpis``: the response KPIs of the month so far (docs/kpis.md) for a province or
  the key's department, with the reports overdue now.
"""

from __future__ import annotations

import base64
import binascii
import json
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, Final, Literal

from fastapi import APIRouter, Depends, Query, Request
from fastapi.security import HTTPAuthorizationCredentials

from ioc.api.auth import ApiKey
from ioc.api.deps import ResourcesDep, authenticate, bearer_scheme
from ioc.api.errors import BadRequestError, ForbiddenError
from ioccore import kpis as core_kpis
from ioccore.feedback import catalogue, kpis
from ioccore.feedback.contract import CLOSED

MAX_PAGE: Final = 200
MAX_POINTS: Final = 500
MAX_COMMUNES: Final = 1000
"""Communes with open reports in one map answer (a province has a few hundred)."""
MAX_DESCRIPTION: Final = 280
"""The list shows the start of a description; the full text is in Open311's answer."""

StatusFilter = Literal["open", "closed", "received", "assigned", "in_progress", "resolved",
                       "rejected"]
router = APIRouter(prefix="/v1/feedback/console", tags=["feedback"])
Province = Annotated[str | None, Query(pattern=r"^\d{2}$", description="e.g. 01")]
Department = Annotated[str | None, Query(max_length=64, pattern=r"^[a-z0-9][a-z0-9_-]*$")]


async def reader(
    request: Request, res: ResourcesDep,
    creds: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer_scheme)],
) -> ApiKey:
    """Any valid key; the routes scope what it reads by its role."""
    return await authenticate(request, creds, res)


ReaderKey = Annotated[ApiKey, Depends(reader)]


def scope_of(key: ApiKey, department: str | None) -> str | None:
    """The department whose reports the key reads (None: every department)."""
    if key.role in ("department", "responder"):
        own = str(key.department)
        if department is not None and department != own:
            raise ForbiddenError("a department key reads its own department's reports only",
                                 code="other_department")
        return own
    if not key.at_least("viewer"):
        raise ForbiddenError("this key may not read citizen reports", code="insufficient_role")
    return department


def _where(department: str | None, province: str | None, commune: str | None
           ) -> tuple[list[str], dict[str, Any]]:
    where = ["true"]
    args: dict[str, Any] = {}
    if department is not None:
        where.append("s.department = %(department)s")
        args["department"] = department
    if province is not None:
        where.append("s.province_code = %(province)s")
        args["province"] = province
    if commune is not None:
        where.append("s.commune_code = %(commune)s")
        args["commune"] = commune
    return where, args


def _cursor(due_at: datetime, report_id: str) -> str:
    raw = json.dumps([due_at.isoformat(), report_id]).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _uncursor(text: str) -> tuple[datetime, str]:
    try:
        due, report_id = json.loads(base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)))
        return datetime.fromisoformat(str(due)), str(report_id)[:64]
    except (ValueError, TypeError, binascii.Error):
        raise BadRequestError("after is not a cursor of this list",
                              code="invalid_cursor") from None


def _names(code: str) -> dict[str, str]:
    service = catalogue.default().service(code)
    return ({"vi": service.name.vi, "en": service.name.en} if service
            else {"vi": code, "en": code})


@router.get("/reports", summary="Citizen reports in the key's scope, most urgent first")
async def reports(
    key: ReaderKey, res: ResourcesDep,
    status: Annotated[StatusFilter | None, Query()] = None,
    overdue: Annotated[bool | None, Query()] = None,
    department: Department = None,
    province: Province = None,
    commune: Annotated[str | None, Query(pattern=r"^\d{5}$")] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 50,
    after: Annotated[str | None, Query(max_length=256)] = None,
) -> dict[str, Any]:
    dept = scope_of(key, department)
    where, args = _where(dept, province, commune)
    scope_sql = " AND ".join(where)
    if status == "open":
        where.append("s.status <> ALL(%(closed)s)")
    elif status == "closed":
        where.append("s.status = ANY(%(closed)s)")
    elif status is not None:
        where.append("s.status = %(status)s")
        args["status"] = status
    if overdue is not None:
        where.append(("" if overdue else "NOT ")
                     + "(s.status <> ALL(%(closed)s) AND s.due_at < %(now)s)")
    if after is not None:
        args["a_due"], args["a_id"] = _uncursor(after)
        where.append("(s.due_at, s.report_id) > (%(a_due)s, %(a_id)s)")
    now = datetime.now(UTC)
    args.update(closed=sorted(CLOSED), now=now, limit=limit + 1)
    async with res.pool.connection() as conn:
        # the page first (materialized), then its names and texts: joins on the page's
        # rows only, whatever the planner thinks of the scope's size
        cur = await conn.execute(
            "WITH s AS MATERIALIZED (SELECT s.report_id, s.service_code, s.commune_code,"
            " s.province_code, s.department, s.status, s.reason, s.received_at, s.due_at,"
            " s.updated_at, s.closed_at, s.rating FROM feedback_state s"
            f" WHERE {' AND '.join(where)}"
            " ORDER BY s.due_at, s.report_id LIMIT %(limit)s)"
            " SELECT s.report_id, s.service_code, s.commune_code, c.commune_name,"
            " s.province_code, s.department, s.status, s.reason, s.received_at, s.due_at,"
            " s.updated_at, s.closed_at, s.rating, left(r.description, %(dlen)s),"
            " r.lat IS NOT NULL"
            " FROM s JOIN feedback_reports r USING (report_id)"
            " LEFT JOIN current_communes c ON c.commune_code = s.commune_code"
            " ORDER BY s.due_at, s.report_id",
            {**args, "dlen": MAX_DESCRIPTION})
        rows = await cur.fetchall()
        counts = await (await conn.execute(
            "SELECT count(*) FILTER (WHERE s.status <> ALL(%(closed)s)),"
            " count(*) FILTER (WHERE s.status <> ALL(%(closed)s) AND s.due_at < %(now)s)"
            f" FROM feedback_state s WHERE {scope_sql}", args)).fetchone()
    page = rows[:limit]
    out = []
    for (rid, code, commune_code, commune_name, prov, dep, st, reason, received, due,
         updated, closed_at, rating, description, located) in page:
        is_open = st not in CLOSED
        out.append({
            "report_id": rid, "service_code": code, "service": _names(code),
            "commune_code": commune_code, "commune_name": commune_name,
            "province_code": prov, "department": dep, "status": st, "reason": reason,
            "received_at": received.isoformat(), "due_at": due.isoformat(),
            "updated_at": updated.isoformat(),
            "closed_at": closed_at.isoformat() if closed_at else None,
            "age_hours": round(((closed_at or now) - received).total_seconds() / 3600, 2),
            "overdue": is_open and due < now,
            "late": closed_at is not None and st == "resolved" and closed_at > due,
            "rating": rating, "description": description, "located": located,
        })
    return {"scope": dept or "all", "as_of": now.isoformat(), "reports": out,
            "next": _cursor(page[-1][9], page[-1][0]) if len(rows) > limit else None,
            "counts": {"open": counts[0] if counts else 0,
                       "overdue": counts[1] if counts else 0}}


_MAP_SQL = """
WITH o AS MATERIALIZED (
    SELECT s.report_id, s.service_code, s.status, s.commune_code, s.received_at, s.due_at,
           s.due_at < %(now)s AS overdue
    FROM feedback_state s
    WHERE {where} AND s.status <> ALL(%(closed)s)
), per AS MATERIALIZED (
    SELECT commune_code, count(*) AS open, count(*) FILTER (WHERE overdue) AS overdue
    FROM o GROUP BY commune_code
    ORDER BY overdue DESC, open DESC, commune_code LIMIT %(communes)s
), pts AS MATERIALIZED (
    SELECT o.*, r.lat, r.lon FROM (
        SELECT * FROM o ORDER BY overdue DESC, due_at, report_id LIMIT %(points)s) o
    JOIN feedback_reports r USING (report_id)
)
SELECT
  (SELECT coalesce(json_agg(json_build_object(
       'type', 'Feature', 'id', pts.report_id,
       'geometry', ST_AsGeoJSON(coalesce(ST_SetSRID(ST_MakePoint(pts.lon, pts.lat), 4326),
                                         c.centroid, ST_PointOnSurface(c.geom)), 6)::json,
       'properties', json_build_object(
           'kind', 'report', 'report_id', pts.report_id, 'service_code', pts.service_code,
           'status', pts.status, 'overdue', pts.overdue, 'commune_code', pts.commune_code,
           'commune_name', c.name,
           'located', pts.lat IS NOT NULL, 'received_at', pts.received_at,
           'due_at', pts.due_at)) ORDER BY pts.overdue DESC, pts.due_at, pts.report_id),
       '[]'::json)
   FROM pts LEFT JOIN current_admin_units c
        ON c.code = pts.commune_code AND c.level = 'commune'),
  (SELECT coalesce(json_agg(json_build_object(
       'type', 'Feature', 'id', per.commune_code,
       'geometry', ST_AsGeoJSON(ST_SimplifyPreserveTopology(c.geom, 0.0002), 5)::json,
       'properties', json_build_object(
           'kind', 'commune', 'code', per.commune_code, 'name', c.commune_name,
           'province_code', c.province_code, 'open', per.open, 'overdue', per.overdue))
       ORDER BY per.overdue DESC, per.open DESC, per.commune_code), '[]'::json)
   FROM per LEFT JOIN current_communes c ON c.commune_code = per.commune_code),
  (SELECT count(*) FROM o)
"""


@router.get("/map", summary="Open reports as GeoJSON points, with per-commune counts")
async def report_map(
    key: ReaderKey, res: ResourcesDep,
    department: Department = None,
    province: Province = None,
) -> dict[str, Any]:
    dept = scope_of(key, department)
    where, args = _where(dept, province, None)
    args.update(closed=sorted(CLOSED), now=datetime.now(UTC), points=MAX_POINTS,
                communes=MAX_COMMUNES)
    async with res.pool.connection() as conn:
        row = await (await conn.execute(_MAP_SQL.format(where=" AND ".join(where)),
                                        args)).fetchone()
    points, communes, total = row if row else ([], [], 0)
    for point in points:  # the category's names, from the catalogue
        point["properties"]["service"] = _names(point["properties"]["service_code"])
    return {"type": "FeatureCollection", "features": [*communes, *points],
            "scope": dept or "all", "open": total, "points": len(points),
            "truncated": total > len(points)}


@router.get("/kpis", summary="Response KPIs of the month so far, with overdue now")
async def report_kpis(
    key: ReaderKey, res: ResourcesDep,
    department: Department = None,
    province: Province = None,
) -> dict[str, Any]:
    dept = scope_of(key, department)
    if dept is None and province is None:
        raise BadRequestError("name a province or a department", code="invalid_query")
    today = core_kpis.vn_today()
    start = core_kpis.period_start(today, "month")
    now = datetime.now(UTC)
    group_by: kpis.GroupBy = "department" if dept is not None else "province"
    code = dept if dept is not None else province
    where, args = _where(dept, province if dept is None else None, None)
    async with res.pool.connection() as conn:
        rows = await kpis.fetch(conn, group_by=group_by, grain="month", start=start,
                                end=today + timedelta(days=1), now=now, code=code)
        overdue = await (await conn.execute(
            "SELECT count(*) FROM feedback_state s WHERE " + " AND ".join(where)
            + " AND s.status <> ALL(%(closed)s) AND s.due_at < %(now)s",
            {**args, "closed": sorted(CLOSED), "now": now})).fetchone()
    row = rows[-1] if rows else {}
    return {"scope": group_by, "code": code, "from": start.isoformat(),
            "to": today.isoformat(), "timezone": "Asia/Ho_Chi_Minh",
            "received": row.get("received", 0), "resolved": row.get("resolved", 0),
            "share_resolved_in_sla": row.get("share_resolved_in_sla"),
            "median_hours_to_resolve": row.get("median_hours_to_resolve"),
            "p90_hours_to_resolve": row.get("p90_hours_to_resolve"),
            "overdue_now": overdue[0] if overdue else 0,
            "satisfaction": row.get("satisfaction"), "rated": row.get("rated", 0)}

