"""Storage of citizen reports: idempotent writes, the geo join, dead letters, queries.

Every write is keyed by ``(source_id, event_id)``: a replay returns the stored row and
changes nothing. The commune of a located report is the one whose polygon contains the
point (PostGIS, ``current_communes``), else the nearest within ``nearest_max_m``.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Final

from psycopg import AsyncConnection

from ioccore.errors import IocError
from ioccore.feedback.catalogue import Service
from ioccore.feedback.contract import (
    CLOSED,
    FeedbackRatingV1,
    FeedbackReportV1,
    FeedbackStatusV1,
)

MAX_DEAD_PAYLOAD: Final = 8192
MAX_FUTURE_SKEW: Final = timedelta(minutes=5)


def report_id_of(source_id: str, event_id: str) -> str:
    """A stable public id: the same submission always gets the same id (replay-safe),
    and it reveals neither the device nor the client's event id."""
    digest = hashlib.sha256(f"{source_id}\x00{event_id}".encode()).hexdigest()
    return f"fb-{digest[:20]}"


@dataclass(frozen=True, slots=True)
class Contact:
    email: str | None = None
    phone: str | None = None
    first_name: str | None = None
    last_name: str | None = None
    device_id: str | None = None

    def empty(self) -> bool:
        return not any((self.email, self.phone, self.first_name, self.last_name,
                        self.device_id))


class FeedbackRefusedError(IocError):
    """A write that cannot be stored; ``reason`` is the dead-letter reason."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(detail)
        self.reason = reason
        self.detail = detail


_COMMUNE_SQL = """
SELECT commune_code, province_code FROM current_communes
WHERE ST_Covers(geom, ST_SetSRID(ST_MakePoint(%(lon)s, %(lat)s), 4326))
UNION ALL
(SELECT commune_code, province_code FROM current_communes
 WHERE ST_DWithin(geom::geography, ST_SetSRID(ST_MakePoint(%(lon)s, %(lat)s), 4326)::geography,
                  %(max_m)s)
 ORDER BY geom::geography <-> ST_SetSRID(ST_MakePoint(%(lon)s, %(lat)s), 4326)::geography
 LIMIT 1)
LIMIT 1
"""


async def locate(conn: AsyncConnection[Any], report: FeedbackReportV1,
                 nearest_max_m: float) -> tuple[str, str]:
    """``(commune_code, province_code)`` of a report, or :class:`FeedbackRefusedError`."""
    if report.lat is not None and report.lon is not None:
        row = await (await conn.execute(_COMMUNE_SQL, {
            "lat": report.lat, "lon": report.lon, "max_m": nearest_max_m})).fetchone()
        if row is None:
            raise FeedbackRefusedError("outside_communes", "the location is in no known commune")
        return str(row[0]), str(row[1])
    row = await (await conn.execute(
        "SELECT commune_code, province_code FROM current_communes WHERE commune_code = %s",
        (report.commune_code,))).fetchone()
    if row is None:
        raise FeedbackRefusedError("unknown_commune", "commune_code is not a current commune")
    return str(row[0]), str(row[1])


# the reports per commune and minute, like the other feeds' rollups (what Grafana and a
# rule over the rollup read): metric feedback.received.<service_code>, value 1 a report
_ROLLUP_SQL = """
WITH up AS (
    INSERT INTO rollup_1m AS r (bucket, commune_code, metric, province_code, count, sum,
                                min, max, last, last_at)
    VALUES (time_bucket('1 minute', %(t)s::timestamptz), %(commune)s, %(metric)s,
            %(province)s, 1, 1, 1, 1, 1, %(t)s)
    ON CONFLICT (commune_code, metric, bucket) DO UPDATE SET
        count = r.count + 1, sum = r.sum + 1,
        last_at = GREATEST(r.last_at, EXCLUDED.last_at), updated_at = clock_timestamp()
    RETURNING r.bucket
)
INSERT INTO rollup_1h_pending (hour) SELECT time_bucket('1 hour', bucket) FROM up
ON CONFLICT DO NOTHING
"""


async def store_report(conn: AsyncConnection[Any], report: FeedbackReportV1,
                       service: Service, contact: Contact, *,
                       nearest_max_m: float) -> tuple[str, bool]:
    """Store a new report (and its contact, apart): ``(report_id, created)``."""
    report_id = report_id_of(report.source_id, report.event_id)
    commune, province = await locate(conn, report, nearest_max_m)
    async with conn.transaction():
        cur = await conn.execute(
            "INSERT INTO feedback_reports (report_id, source_id, event_id, service_code,"
            " description, lat, lon, address, media_url, commune_code, province_code,"
            " department, received_at, due_at) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s,"
            " %s, %s, %s, %s, %s) ON CONFLICT DO NOTHING",
            (report_id, report.source_id, report.event_id, report.service_code,
             report.description, report.lat, report.lon, report.address, report.media_url,
             commune, province, service.department, report.occurred_at,
             service.due_at(report.occurred_at)))
        created = cur.rowcount == 1
        if created:  # only a new report counts: replays leave the rollup alone
            await conn.execute(_ROLLUP_SQL, {"t": report.occurred_at, "commune": commune,
                                             "province": province,
                                             "metric": f"feedback.received.{service.code}"})
        if created and not contact.empty():
            await conn.execute(
                "INSERT INTO feedback_contacts (report_id, email, phone, first_name,"
                " last_name, device_id) VALUES (%s, %s, %s, %s, %s, %s)"
                " ON CONFLICT DO NOTHING",
                (report_id, contact.email, contact.phone, contact.first_name,
                 contact.last_name, contact.device_id))
    return report_id, created


async def store_status(conn: AsyncConnection[Any], change: FeedbackStatusV1) -> bool:
    """Store a department's status change; only the report's department may. True when
    new, False for a replay; :class:`FeedbackRefusedError` otherwise."""
    row = await (await conn.execute(
        "SELECT department, received_at, now() FROM feedback_reports WHERE report_id = %s",
        (change.report_id,))).fetchone()
    if row is None:
        raise FeedbackRefusedError("unknown_report", "no report has this report_id")
    if row[0] != change.department:
        raise FeedbackRefusedError("not_routed_to_department",
                              "the report is routed to another department")
    # a change dated before the report or in the future would make times to resolve
    # meaningless; both depend only on the report, so refusals do not depend on order
    if change.occurred_at < row[1]:
        raise FeedbackRefusedError("before_report", "occurred_at precedes the report")
    if change.occurred_at > row[2] + MAX_FUTURE_SKEW:
        raise FeedbackRefusedError("timestamp_in_future", "occurred_at is in the future")
    cur = await conn.execute(
        "INSERT INTO feedback_status_events (source_id, event_id, report_id, department,"
        " status, reason, note, occurred_at) VALUES (%s, %s, %s, %s, %s, %s, %s, %s)"
        " ON CONFLICT DO NOTHING",
        (change.source_id, change.event_id, change.report_id, change.department,
         change.status, change.reason, change.note, change.occurred_at))
    return cur.rowcount == 1


async def store_rating(conn: AsyncConnection[Any], rating: FeedbackRatingV1) -> None:
    """Record a satisfaction rating of a resolved report (the latest one counts)."""
    row = await (await conn.execute(
        "SELECT status FROM feedback_state WHERE report_id = %s",
        (rating.report_id,))).fetchone()
    if row is None:
        raise FeedbackRefusedError("unknown_report", "no report has this report_id")
    if row[0] != "resolved":
        raise FeedbackRefusedError("not_resolved", "only a resolved report can be rated")
    await conn.execute(
        "INSERT INTO feedback_ratings (report_id, rating, occurred_at) VALUES (%s, %s, %s)"
        " ON CONFLICT (report_id) DO UPDATE SET rating = excluded.rating,"
        " occurred_at = excluded.occurred_at"
        " WHERE (excluded.occurred_at, excluded.rating)"
        "       > (feedback_ratings.occurred_at, feedback_ratings.rating)",
        (rating.report_id, rating.rating, rating.occurred_at))


async def dead_letter(conn: AsyncConnection[Any], *, principal: str, reason: str,
                      detail: str, payload: bytes | str) -> None:
    """Keep a refused submission (bounded) with its reason for the department to see."""
    text = payload.decode("utf-8", "replace") if isinstance(payload, bytes) else payload
    await conn.execute(
        "INSERT INTO feedback_dead_letters (principal, reason, detail, payload)"
        " VALUES (%s, %s, %s, %s)",
        (principal[:128], reason[:64], detail[:512], text[:MAX_DEAD_PAYLOAD]))


@dataclass(frozen=True, slots=True)
class RequestQuery:
    """An Open311 ``GET requests`` query (bounds already checked by the router)."""

    ids: tuple[str, ...] = ()
    service_codes: tuple[str, ...] = ()
    statuses: tuple[str, ...] = ()
    """``open`` and/or ``closed``."""
    start: datetime | None = None
    end: datetime | None = None
    bbox: tuple[float, float, float, float] | None = None
    """min_lon, min_lat, max_lon, max_lat."""
    limit: int = 1000


_PUBLIC_COLUMNS = (
    "s.report_id, s.status, s.reason, r.service_code, r.description, s.department,"
    " r.received_at, s.updated_at, s.due_at, r.address, r.lat, r.lon, r.media_url,"
    " r.commune_code, s.closed_at")


async def find_requests(conn: AsyncConnection[Any], q: RequestQuery) -> list[dict[str, Any]]:
    """Reports as public rows (no reporter field exists in them), newest first."""
    where: list[str] = []
    args: dict[str, Any] = {"limit": q.limit}
    if q.ids:
        where.append("s.report_id = ANY(%(ids)s)")
        args["ids"] = list(q.ids)
    else:
        if q.service_codes:
            where.append("r.service_code = ANY(%(codes)s)")
            args["codes"] = list(q.service_codes)
        if set(q.statuses) == {"open"}:
            where.append("s.status <> ALL(%(closed)s)")
            args["closed"] = sorted(CLOSED)
        elif set(q.statuses) == {"closed"}:
            where.append("s.status = ANY(%(closed)s)")
            args["closed"] = sorted(CLOSED)
        if q.start is not None:
            where.append("r.received_at >= %(start)s")
            args["start"] = q.start
        if q.end is not None:
            where.append("r.received_at <= %(end)s")
            args["end"] = q.end
        if q.bbox is not None:
            where.append("r.lon BETWEEN %(x0)s AND %(x1)s AND r.lat BETWEEN %(y0)s AND %(y1)s")
            args.update(x0=q.bbox[0], y0=q.bbox[1], x1=q.bbox[2], y1=q.bbox[3])
    sql = (f"SELECT {_PUBLIC_COLUMNS} FROM feedback_state s"
           " JOIN feedback_reports r USING (report_id)"
           + (" WHERE " + " AND ".join(where) if where else "")
           + " ORDER BY r.received_at DESC, s.report_id LIMIT %(limit)s")
    cur = await conn.execute(sql, args)
    names = [d.name for d in cur.description or ()]
    return [dict(zip(names, row, strict=True)) for row in await cur.fetchall()]
