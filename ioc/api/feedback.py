"""``/v1/feedback``: what departments and operators do with citizen reports.

* ``POST /v1/feedback/status``: a department moves reports routed to it through their
  statuses (its department key, with the ``feedback`` feed); refusals are dead-lettered
  with a reason and answered 422.
* ``POST /v1/feedback/ratings``: the city app forwards a citizen's 1-5 satisfaction.
* ``GET /v1/feedback/reports``: a department's list (status, age, overdue).
* ``GET /v1/feedback/reports/{id}/contact``: the reporter's contact, only for the
  report's own department or an admin; every read is in the access log.
* ``GET /v1/feedback/kpis``: response KPIs (docs/kpis.md), viewer keys and above.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Annotated, Any, Final

import msgspec
from fastapi import APIRouter, Depends, Query, Request
from fastapi.security import HTTPAuthorizationCredentials

from ioc.api.deps import DepartmentKey, ResourcesDep, ViewerKey, authenticate, bearer_scheme
from ioc.api.errors import ApiError, BadRequestError, ForbiddenError, NotFoundError
from ioccore import kpis as core_kpis
from ioccore.feedback import catalogue, kpis, store
from ioccore.feedback.contract import (
    FeedbackRatingV1,
    FeedbackStatusV1,
    check_status,
)

MAX_BATCH: Final = 100
MAX_KPI_DAYS: Final = 400
router = APIRouter(prefix="/v1/feedback", tags=["feedback"])


class RefusedError(ApiError):
    status = 422
    default_code = "refused"


def _feedback_department(key: Any) -> str:
    if "feedback" not in key.feeds:
        raise ForbiddenError("this department key lacks the feedback feed",
                             code="feed_not_allowed")
    return str(key.department)


@router.post("/status", summary="Status changes of reports routed to this department")
async def post_status(request: Request, key: DepartmentKey,
                      res: ResourcesDep) -> dict[str, Any]:
    department = _feedback_department(key)
    body = await request.body()
    try:
        changes = msgspec.json.decode(body, type=list[FeedbackStatusV1] | FeedbackStatusV1)
    except msgspec.DecodeError as exc:
        async with res.pool.connection() as conn:
            await store.dead_letter(conn, principal=f"key:{key.name}", reason="invalid",
                                    detail=str(exc), payload=body)
        raise RefusedError(str(exc)[:300], code="invalid") from None
    batch = changes if isinstance(changes, list) else [changes]
    if len(batch) > MAX_BATCH:
        raise BadRequestError(f"at most {MAX_BATCH} changes per request")
    results: list[dict[str, Any]] = []
    async with res.pool.connection() as conn:
        for change in batch:
            reason = check_status(change)
            if reason is None and change.department != department:
                reason = "department_mismatch"
            stored = False
            if reason is None:
                try:
                    stored = await store.store_status(conn, change)
                except store.FeedbackRefusedError as exc:
                    reason = exc.reason
            if reason is not None:
                await store.dead_letter(conn, principal=f"key:{key.name}", reason=reason,
                                        detail=reason,
                                        payload=msgspec.json.encode(change))
            results.append({"event_id": change.event_id,
                            "outcome": reason or ("stored" if stored else "duplicate")})
    return {"results": results}


@router.post("/ratings", summary="A citizen's satisfaction with a resolved report")
async def post_rating(request: Request, key: DepartmentKey,
                      res: ResourcesDep) -> dict[str, Any]:
    _feedback_department(key)
    try:
        rating = msgspec.json.decode(await request.body(), type=FeedbackRatingV1)
    except msgspec.DecodeError as exc:
        raise RefusedError(str(exc)[:300], code="invalid") from None
    async with res.pool.connection() as conn:
        try:
            await store.store_rating(conn, rating)
        except store.FeedbackRefusedError as exc:
            raise RefusedError(exc.detail, code=exc.reason) from None
    return {"report_id": rating.report_id, "rating": rating.rating}


@router.get("/reports", summary="This department's reports: status, age, overdue")
async def department_reports(
    key: DepartmentKey, res: ResourcesDep,
    open_only: Annotated[bool, Query()] = True,
    limit: Annotated[int, Query(ge=1, le=1000)] = 200,
) -> dict[str, Any]:
    department = _feedback_department(key)
    now = datetime.now(UTC)
    async with res.pool.connection() as conn:
        cur = await conn.execute(
            "SELECT report_id, service_code, commune_code, status, received_at, due_at"
            " FROM feedback_state WHERE department = %s"
            " AND (NOT %s OR status NOT IN ('resolved', 'rejected'))"
            " ORDER BY due_at, report_id LIMIT %s", (department, open_only, limit))
        rows = await cur.fetchall()
    return {"department": department, "reports": [
        {"report_id": r[0], "service_code": r[1], "commune_code": r[2], "status": r[3],
         "received_at": r[4].isoformat(), "due_at": r[5].isoformat(),
         "age_hours": round((now - r[4]).total_seconds() / 3600, 2),
         "overdue": r[3] not in ("resolved", "rejected") and r[5] < now}
        for r in rows]}


@router.get("/reports/{report_id}/contact",
            summary="The reporter's contact: the report's department or an admin only")
async def report_contact(
    report_id: str, request: Request, res: ResourcesDep,
    creds: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer_scheme)],
) -> dict[str, Any]:
    key = await authenticate(request, creds, res)
    async with res.pool.connection() as conn:
        row = await (await conn.execute(
            "SELECT r.department, c.email, c.phone, c.first_name, c.last_name"
            " FROM feedback_reports r LEFT JOIN feedback_contacts c ON c.report_id ="
            " r.report_id AND c.stored_at >= now() - make_interval(days => %s)"
            " WHERE r.report_id = %s",
            (catalogue.default().contact_retention_days, report_id[:64]))).fetchone()
    allowed = row is not None and (key.role == "admin" or (
        key.role == "department" and key.department == row[0]))
    if not allowed:
        # the same answer for "no such report" and "not yours": ids are not probed
        raise NotFoundError("no report with this id is routed to this key",
                            code="not_found")
    assert row is not None
    return {"report_id": report_id, "email": row[1], "phone": row[2],
            "first_name": row[3], "last_name": row[4]}


@router.get("/kpis", summary="Response KPIs per commune, department or province")
async def feedback_kpis(
    _key: ViewerKey, res: ResourcesDep,
    group_by: Annotated[kpis.GroupBy, Query()] = "province",
    code: Annotated[str | None, Query(max_length=64)] = None,
    grain: Annotated[kpis.Grain, Query()] = "month",
    from_: Annotated[date | None, Query(alias="from")] = None,
    to: Annotated[date | None, Query()] = None,
) -> dict[str, Any]:
    today = core_kpis.vn_today()
    end_day = (to or today) + timedelta(days=1)
    start_day = from_ or core_kpis.period_start(today, "month")
    if end_day <= start_day or (end_day - start_day).days > MAX_KPI_DAYS:
        raise BadRequestError(f"from must precede to, at most {MAX_KPI_DAYS} days",
                              code="invalid_query")
    async with res.pool.connection() as conn:
        rows = await kpis.fetch(conn, group_by=group_by, grain=grain, start=start_day,
                                end=end_day, now=datetime.now(UTC), code=code)
    return {"group_by": group_by, "grain": grain, "timezone": "Asia/Ho_Chi_Minh",
            "from": start_day.isoformat(), "to": (end_day - timedelta(days=1)).isoformat(),
            "rows": rows}
