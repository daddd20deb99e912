"""Escalation timers: durable rows, fired exactly once by any number of runners.

A round lists incidents with a due timer, then per incident, in ONE transaction:
lock the incident row (``FOR UPDATE SKIP LOCKED``: a runner or an API request holding
it is left alone, the next round retries), lock its due timers, and for each either
cancel it (it no longer applies) or fire it: mark it fired, record the escalation
(``incident_escalations.timer_id`` is UNIQUE), add the audit event, put an
``IncidentEscalation`` alert in the outbox (the worker's outbox delivery posts it to
Alertmanager, whose routing sends it to the department by its ``department`` label)
and plan the next level. A crash before COMMIT leaves the timer due; after it, fired.
"""

from __future__ import annotations

from datetime import datetime

from psycopg.types.json import Jsonb

from alerts.incidents import store
from alerts.incidents.config import IncidentConfig
from alerts.incidents.machine import Incident, escalation_for
from alerts.incidents.notices import Fired, escalation_alert

_DUE = """
SELECT incident_id FROM incident_timers
WHERE fired_at IS NULL AND cancelled_at IS NULL AND due_at <= %s
GROUP BY incident_id ORDER BY min(due_at) LIMIT %s
"""

_TIMERS = """
SELECT id, kind, level, cycle FROM incident_timers
WHERE incident_id = %s AND fired_at IS NULL AND cancelled_at IS NULL AND due_at <= %s
ORDER BY due_at, level FOR UPDATE
"""

_INCIDENT = """
SELECT title, province_code, rule_id, state, cycle, severity, department, assignee,
       opened_at, ack_due_at, resolve_due_at, acknowledged_at, resolved_at, closed_at,
       merged_into
FROM incidents WHERE id = %s FOR UPDATE SKIP LOCKED
"""


async def fire_due(conn: store.Conn, cfg: IncidentConfig, at: datetime, *, fired_by: str,
                   limit: int = 100) -> list[Fired]:
    """Fire every timer due at ``at`` (up to ``limit`` incidents); returns what fired."""
    cur = await conn.execute(_DUE, (at, limit))
    ids = [int(r[0]) for r in await cur.fetchall()]
    fired: list[Fired] = []
    for iid in ids:
        fired += await _fire_incident(conn, cfg, iid, at, fired_by)
    return fired


async def _fire_incident(conn: store.Conn, cfg: IncidentConfig, iid: int, at: datetime,
                         fired_by: str) -> list[Fired]:
    out: list[Fired] = []
    async with conn.transaction():
        cur = await conn.execute(_INCIDENT, (iid,))
        row = await cur.fetchone()
        if row is None:
            return out
        title, province, _rule, *state = row
        inc = Incident(*state)
        cur = await conn.execute(_TIMERS, (iid, at))
        for tid, kind, level, cycle in await cur.fetchall():
            esc = escalation_for(inc, kind, level, cycle, at, cfg.sla_for(inc.severity))
            if esc is None:
                await conn.execute("UPDATE incident_timers SET cancelled_at = %s"
                                   " WHERE id = %s", (at, tid))
                continue
            name = cfg.rota.who(inc.department, esc.target_role, at)
            f = Fired(iid, int(tid), kind, level, esc.target_role, name, inc.department)
            await conn.execute("UPDATE incident_timers SET fired_at = %s WHERE id = %s",
                               (at, tid))
            cur2 = await conn.execute(
                "INSERT INTO incident_escalations (incident_id, timer_id, at, kind, level,"
                " target_role, target_name, department, fired_by)"
                " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s) RETURNING id",
                (iid, tid, at, kind, level, esc.target_role, name, inc.department, fired_by))
            esc_row = await cur2.fetchone()
            assert esc_row is not None
            await store.event(conn, iid, at, "system:escalation", "escalate",
                              detail={"kind": kind, "level": level, "to": esc.target_role,
                                      "name": name, "department": inc.department})
            sla = cfg.sla_for(inc.severity)
            alert = escalation_alert(cfg, incident_id=iid, title=str(title), f=f,
                                     severity=inc.severity, province_code=province, at=at,
                                     lasts=sla.escalate_every)
            await conn.execute(
                "INSERT INTO alert_outbox (fingerprint, seq, receiver, payload)"
                " VALUES (%s, %s, 'alertmanager', %s) ON CONFLICT DO NOTHING",
                (f"incident-{iid}", int(esc_row[0]), Jsonb({"alerts": [alert]})))
            if esc.next_timer is not None:
                await store.add_timers(conn, iid, [esc.next_timer])
            out.append(f)
    return out
