"""Reading incidents: the board, one incident with its timeline, and response KPIs.

Every read takes ``scope`` (the caller's department, ``None`` for IOC operators) and
returns nothing outside it. The board is one indexed query (no per-row lookups) so a
thousand open incidents with ten thousand alerts answer in well under a second.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Final, Literal

from psycopg import sql
from psycopg.rows import dict_row

from alerts.incidents.errors import IncidentNotFoundError
from alerts.incidents.store import Conn

Period = Literal["day", "week", "month"]
MAX_PAGE: Final = 1000

_BOARD = """
SELECT i.id, i.title, i.rule_id, i.province_code, i.department, i.assignee, i.severity,
       i.state, i.sop_id, i.cycle, i.created_at, i.opened_at, i.acknowledged_at,
       i.resolved_at, i.closed_at, i.ack_due_at, i.resolve_due_at, i.merged_into,
       i.updated_at,
       (SELECT count(*) FROM incident_alerts l
        WHERE l.incident_id = i.id AND l.detached_at IS NULL) AS alerts,
       (SELECT count(*) FILTER (WHERE s.done_at IS NOT NULL) || '/' || count(*)
        FROM incident_steps s WHERE s.incident_id = i.id) AS steps,
       (i.state IN ('open', 'acknowledged', 'in_progress')
        AND ((i.acknowledged_at IS NULL AND now() > i.ack_due_at)
             OR now() > i.resolve_due_at)) AS overdue{location}
FROM incidents i
WHERE {where}
ORDER BY i.updated_at DESC, i.id DESC
LIMIT %(limit)s
"""

_LOCATION = """,
       (SELECT array[u.latitude, u.longitude]::float8[]
        FROM (SELECT l.fingerprint FROM incident_alerts l
              WHERE l.incident_id = i.id AND l.detached_at IS NULL
              ORDER BY l.attached_at, l.fingerprint LIMIT 1) f
        JOIN alerts a ON a.fingerprint = f.fingerprint
        JOIN current_communes u ON u.commune_code = a.commune_code) AS location"""
"""Where the incident is on the map: the centroid of its first alert's commune."""


async def board(conn: Conn, *, scope: str | None, view: str = "all", me: str | None = None,
                department: str | None = None, states: list[str] | None = None,
                province: str | None = None, before: tuple[datetime, int] | None = None,
                limit: int = 200, with_location: bool = False) -> list[dict[str, Any]]:
    """The incident board. ``view``: ``mine`` (assigned to ``me``), ``department``
    (``department``, or the caller's), ``all`` (within ``scope``)."""
    where = [sql.SQL("i.merged_into IS NULL")]
    params: dict[str, Any] = {"limit": max(1, min(limit, MAX_PAGE))}
    if scope is not None:
        where.append(sql.SQL("i.department = %(scope)s"))
        params["scope"] = scope
    if view == "mine":
        where.append(sql.SQL("i.assignee = %(me)s"))
        params["me"] = me or ""
    if department is not None:
        where.append(sql.SQL("i.department = %(department)s"))
        params["department"] = department
    if states:
        where.append(sql.SQL("i.state = ANY(%(states)s)"))
        params["states"] = states
    if province is not None:
        where.append(sql.SQL("i.province_code = %(province)s"))
        params["province"] = province
    if before is not None:
        where.append(sql.SQL("(i.updated_at, i.id) < (%(b_at)s, %(b_id)s)"))
        params.update(b_at=before[0], b_id=before[1])
    query = sql.SQL(_BOARD).format(where=sql.SQL(" AND ").join(where),
                                   location=sql.SQL(_LOCATION if with_location else ""))
    async with conn.transaction(), conn.cursor(row_factory=dict_row) as cur:
        # a thousand rows of index lookups: JIT compilation would cost more than it saves
        await cur.execute("SET LOCAL jit = off")
        await cur.execute(query, params)
        return list(await cur.fetchall())


async def incident(conn: Conn, incident_id: int, *, scope: str | None) -> dict[str, Any]:
    """One incident with its alerts, checklist, timeline, escalations and notifications."""
    rows = await _rows(conn, "SELECT * FROM incidents WHERE id = %s", (incident_id,))
    if not rows or (scope is not None and rows[0]["department"] != scope):
        raise IncidentNotFoundError(incident_id)
    inc = rows[0]
    inc["alerts"] = await _rows(
        conn, "SELECT l.fingerprint, l.episode_start, l.attached_at, l.attached_by,"
        " l.detached_at, l.detached_by, a.rule_id, a.state, a.severity, a.commune_code,"
        " a.province_code, a.last_value, a.firing_at, a.resolved_at, a.annotations"
        " FROM incident_alerts l LEFT JOIN alerts a ON a.fingerprint = l.fingerprint"
        " WHERE l.incident_id = %s ORDER BY l.attached_at, l.fingerprint", (incident_id,))
    inc["steps"] = await _rows(
        conn, "SELECT step_id, position, title_vi, title_en, department, requires, due_at,"
        " done_at, done_by, note, evidence, (done_at IS NULL AND now() > due_at) AS overdue"
        " FROM incident_steps WHERE incident_id = %s ORDER BY position", (incident_id,))
    inc["timeline"] = await _rows(
        conn, "SELECT id, at, actor, action, from_state, to_state, note, detail"
        " FROM incident_events WHERE incident_id = %s ORDER BY id", (incident_id,))
    inc["escalations"] = await _rows(
        conn, "SELECT at, kind, level, target_role, target_name, department, fired_by"
        " FROM incident_escalations WHERE incident_id = %s ORDER BY id", (incident_id,))
    inc["timers"] = await _rows(
        conn, "SELECT kind, level, cycle, due_at, fired_at, cancelled_at"
        " FROM incident_timers WHERE incident_id = %s ORDER BY due_at, id", (incident_id,))
    inc["notifications"] = await _rows(
        conn, "SELECT o.fingerprint, o.seq, o.receiver, o.created_at, o.delivered_at,"
        " o.attempts, o.last_error FROM alert_outbox o"
        " WHERE o.fingerprint = %s OR o.fingerprint IN (SELECT fingerprint FROM"
        " incident_alerts WHERE incident_id = %s)"
        " ORDER BY o.created_at, o.id LIMIT 500", (f"incident-{incident_id}", incident_id))
    return inc


async def _rows(conn: Conn, query: str, params: tuple[Any, ...]) -> list[dict[str, Any]]:
    async with conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(query.encode(), params)
        return list(await cur.fetchall())


async def kpis(conn: Conn, *, period: Period, since: datetime, until: datetime,
               scope: str | None, province: str | None = None) -> dict[str, Any]:
    """Response KPIs per period, department and province, and what is overdue now."""
    where = " WHERE true"
    params: list[Any] = [period, since, until]
    if scope is not None:
        where += " AND department = %s"
        params.append(scope)
    if province is not None:
        where += " AND province_code = %s"
        params.append(province)
    rows = await _rows(conn, "SELECT * FROM incident_kpis(%s, %s, %s)" + where,
                       tuple(params))
    overdue = await _rows(
        conn, "SELECT department, province_code, count(*) AS overdue_now"
        " FROM incidents_overdue" + where +
        " GROUP BY 1, 2 ORDER BY 1, 2", tuple(params[3:]))
    return {"period": period, "since": since, "until": until, "rows": rows,
            "overdue_now": overdue}
