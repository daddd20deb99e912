"""Response KPIs of citizen reports (docs/kpis.md, "Citizen reports").

Computed at query time from ``feedback_state``, itself a pure function of the stored
set of events: with idempotent writes, late, reordered and replayed status events give
the same figures. Periods are Vietnam calendar days, ISO weeks and months of the
report's receipt (its cohort).
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any, Final, Literal

from psycopg import AsyncConnection, sql

Grain = Literal["day", "week", "month"]
GroupBy = Literal["commune", "department", "province"]
COLUMN: Final[dict[str, str]] = {"commune": "commune_code", "department": "department",
                                 "province": "province_code"}

_SQL = """
SELECT date_trunc(%(grain)s, received_at AT TIME ZONE 'Asia/Ho_Chi_Minh')::date AS period,
       {col} AS key,
       count(*) AS received,
       count(*) FILTER (WHERE status = 'resolved') AS resolved,
       count(*) FILTER (WHERE status = 'rejected') AS rejected,
       count(*) FILTER (WHERE status = 'resolved' AND closed_at <= due_at) AS resolved_in_sla,
       percentile_cont(0.5) WITHIN GROUP (ORDER BY extract(epoch FROM closed_at - received_at))
           FILTER (WHERE status = 'resolved') AS median_resolve_s,
       percentile_cont(0.9) WITHIN GROUP (ORDER BY extract(epoch FROM closed_at - received_at))
           FILTER (WHERE status = 'resolved') AS p90_resolve_s,
       count(*) FILTER (WHERE status NOT IN ('resolved', 'rejected') AND due_at < %(now)s)
           AS overdue_now,
       count(rating) AS rated,
       sum(rating) AS rating_sum
FROM feedback_state
WHERE received_at >= (%(start)s::timestamp AT TIME ZONE 'Asia/Ho_Chi_Minh')
  AND received_at < (%(end)s::timestamp AT TIME ZONE 'Asia/Ho_Chi_Minh')
  AND (%(code)s::text IS NULL OR {col} = %(code)s)
GROUP BY 1, 2
ORDER BY 1, 2
"""


async def fetch(conn: AsyncConnection[Any], *, group_by: GroupBy, grain: Grain,
                start: date, end: date, now: datetime,
                code: str | None = None) -> list[dict[str, Any]]:
    """KPI rows per (period, key) for reports received in ``[start, end)`` (VN days)."""
    query = sql.SQL(_SQL).format(col=sql.Identifier(COLUMN[group_by]))
    cur = await conn.execute(query, {"grain": grain, "start": start, "end": end,
                                     "now": now, "code": code})
    out: list[dict[str, Any]] = []
    for (period, key, received, resolved, rejected, in_sla, median_s, p90_s, overdue,
         rated, rating_sum) in await cur.fetchall():
        out.append({
            "period": period.isoformat(), group_by: key, "received": received,
            "resolved": resolved, "rejected": rejected, "resolved_in_sla": in_sla,
            "share_resolved_in_sla": (round(in_sla / resolved, 4) if resolved else None),
            "median_hours_to_resolve": (None if median_s is None
                                        else round(float(median_s) / 3600, 3)),
            "p90_hours_to_resolve": None if p90_s is None else round(float(p90_s) / 3600, 3),
            "overdue_now": overdue, "rated": rated,
            "satisfaction": round(float(rating_sum) / rated, 3) if rated else None,
        })
    return out
