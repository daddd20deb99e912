"""Writing incidents: every change in one transaction with its audit event.

Each write locks the incident row (``FOR UPDATE``) first, then its timers, alerts and
steps, so writers (API processes, the intake, the timer runner) never deadlock and
the state machine always sees the latest row. ``scope`` is the caller's department
(``None``: an IOC operator); an incident of another department is "not found".
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from datetime import datetime
from typing import Any

import psycopg
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb

from alerts.incidents.config import IncidentConfig
from alerts.incidents.errors import IncidentConflictError, IncidentNotFoundError
from alerts.incidents.machine import (
    Action,
    Incident,
    Outcome,
    TimerPlan,
    decide,
    open_incident,
)
from alerts.incidents.sops import Sop
from alerts.model import Severity

Conn = psycopg.AsyncConnection[Any]
_COLUMNS = ("state, cycle, severity, department, assignee, opened_at, ack_due_at, "
            "resolve_due_at, acknowledged_at, resolved_at, closed_at, merged_into")


def alert_department(labels: dict[str, Any]) -> str:
    """The department that owns an alert: its ``department`` label (the rule's ``owner``),
    else the ``team`` label older rules carried."""
    return str(labels.get("department") or labels.get("team") or "ioc-ops")


async def event(conn: Conn, incident_id: int, at: datetime, actor: str, action: str, *,
                from_state: str | None = None, to_state: str | None = None,
                note: str | None = None, detail: dict[str, Any] | None = None) -> None:
    await conn.execute(
        "INSERT INTO incident_events (incident_id, at, actor, action, from_state, to_state,"
        " note, detail) VALUES (%s, %s, %s, %s, %s, %s, %s, %s)",
        (incident_id, at, actor, action, from_state, to_state, note, Jsonb(detail or {})))


async def lock(conn: Conn, incident_id: int, scope: str | None) -> Incident:
    """The incident, locked for this transaction; not found outside ``scope``."""
    cur = await conn.execute(f"SELECT {_COLUMNS} FROM incidents WHERE id = %s FOR UPDATE",
                             (incident_id,))
    row = await cur.fetchone()
    if row is None or (scope is not None and row[3] != scope):
        raise IncidentNotFoundError(incident_id)
    return Incident(*row)


async def add_timers(conn: Conn, incident_id: int, plans: Sequence[TimerPlan]) -> None:
    for p in plans:
        await conn.execute(
            "INSERT INTO incident_timers (incident_id, cycle, kind, level, due_at)"
            " VALUES (%s, %s, %s, %s, %s) ON CONFLICT DO NOTHING",
            (incident_id, p.cycle, p.kind, p.level, p.due_at))


async def _apply(conn: Conn, incident_id: int, before: Incident, out: Outcome,
                 action: Action, detail: dict[str, Any] | None = None) -> None:
    inc = out.incident
    await conn.execute(
        "UPDATE incidents SET state = %s, cycle = %s, severity = %s, department = %s,"
        " assignee = %s, opened_at = %s, ack_due_at = %s, resolve_due_at = %s,"
        " acknowledged_at = %s, resolved_at = %s, closed_at = %s, updated_at = %s"
        " WHERE id = %s",
        (inc.state, inc.cycle, inc.severity, inc.department, inc.assignee, inc.opened_at,
         inc.ack_due_at, inc.resolve_due_at, inc.acknowledged_at, inc.resolved_at,
         inc.closed_at, action.at, incident_id))
    if out.cancel:
        await conn.execute(
            "UPDATE incident_timers SET cancelled_at = %s WHERE incident_id = %s"
            " AND cycle = %s AND kind = ANY(%s) AND fired_at IS NULL AND cancelled_at IS NULL",
            (action.at, incident_id, before.cycle, list(out.cancel)))
        await _end_escalations(conn, incident_id, before.cycle, out.cancel, action.at)
    if out.new_cycle:
        await conn.execute(
            "INSERT INTO incident_responses (incident_id, cycle, opened_at, ack_due_at,"
            " resolve_due_at) VALUES (%s, %s, %s, %s, %s)",
            (incident_id, inc.cycle, inc.opened_at, inc.ack_due_at, inc.resolve_due_at))
    else:
        await conn.execute(
            "UPDATE incident_responses SET acknowledged_at = %s, resolved_at = %s"
            " WHERE incident_id = %s AND cycle = %s",
            (inc.acknowledged_at, inc.resolved_at, incident_id, inc.cycle))
    await add_timers(conn, incident_id, out.timers)
    info = dict(detail or {})
    if action.kind == "assign":
        info.update(department=inc.department, assignee=inc.assignee)
    if action.kind == "severity":
        info.update(severity=inc.severity)
    await event(conn, incident_id, action.at, action.actor, action.kind,
                from_state=out.from_state, to_state=out.to_state, note=action.note,
                detail=info)


_LIVE_ESCALATIONS = """
SELECT e.id, o.payload FROM incident_escalations e
JOIN incident_timers t ON t.id = e.timer_id
JOIN alert_outbox o ON o.fingerprint = 'incident-' || e.incident_id AND o.seq = e.id
                   AND o.receiver = 'alertmanager'
WHERE e.incident_id = %s AND t.cycle = %s AND e.kind = ANY(%s)
"""


async def _end_escalations(conn: Conn, incident_id: int, cycle: int,
                           kinds: Sequence[str], at: datetime) -> None:
    """Post the escalations this action answers again, ended now (``endsAt``), so the
    receivers hear the incident was taken (seq = -escalation id: once each)."""
    cur = await conn.execute(_LIVE_ESCALATIONS, (incident_id, cycle, list(kinds)))
    for esc_id, payload in await cur.fetchall():
        alerts = [a for a in payload.get("alerts", [])
                  if datetime.fromisoformat(a["endsAt"]) > at]
        if alerts:
            await conn.execute(
                "INSERT INTO alert_outbox (fingerprint, seq, receiver, payload)"
                " VALUES (%s, %s, 'alertmanager', %s) ON CONFLICT DO NOTHING",
                (f"incident-{incident_id}", -int(esc_id),
                 Jsonb({"alerts": [{**a, "endsAt": at.isoformat()} for a in alerts]})))


async def act(conn: Conn, cfg: IncidentConfig, incident_id: int, action: Action,
              scope: str | None, detail: dict[str, Any] | None = None) -> Incident:
    """Apply an operator action (ack, start, resolve, close, reopen, assign, note,
    severity) in one transaction."""
    async with conn.transaction():
        before = await lock(conn, incident_id, scope)
        sla = cfg.sla_for(action.severity or before.severity)
        out = decide(before, action, sla)
        await _apply(conn, incident_id, before, out, action, detail)
        return out.incident


_CREATE = """
WITH inc AS (
    INSERT INTO incidents (title, rule_id, province_code, department, assignee, severity,
                           state, sop_id, cycle, created_at, created_by, opened_at,
                           ack_due_at, resolve_due_at, updated_at)
    VALUES (%(title)s, %(rule)s, %(province)s, %(department)s, %(assignee)s, %(severity)s,
            'open', %(sop)s, 1, %(at)s, %(actor)s, %(at)s, %(ack_due)s, %(resolve_due)s,
            %(at)s)
    RETURNING id),
resp AS (
    INSERT INTO incident_responses (incident_id, cycle, opened_at, ack_due_at, resolve_due_at)
    SELECT id, 1, %(at)s, %(ack_due)s, %(resolve_due)s FROM inc),
timers AS (
    INSERT INTO incident_timers (incident_id, cycle, kind, level, due_at)
    SELECT inc.id, 1, t.kind, 1, t.due FROM inc,
           unnest(%(timer_kinds)s::text[], %(timer_dues)s::timestamptz[]) AS t(kind, due)),
steps AS (
    INSERT INTO incident_steps (incident_id, step_id, position, title_vi, title_en,
                                department, requires, due_at)
    SELECT inc.id, s.id, s.pos - 1, s.vi, s.en, s.dept, s.req, s.due FROM inc,
           unnest(%(step_ids)s::text[], %(step_vi)s::text[], %(step_en)s::text[],
                  %(step_dept)s::text[], %(step_req)s::text[], %(step_due)s::timestamptz[])
           WITH ORDINALITY AS s(id, vi, en, dept, req, due, pos)),
links AS (
    INSERT INTO incident_alerts (incident_id, fingerprint, episode_start, attached_at,
                                 attached_by)
    SELECT inc.id, l.fp, l.start, %(at)s, %(actor)s FROM inc,
           unnest(%(fps)s::text[], %(starts)s::timestamptz[]) AS l(fp, start)),
events AS (
    INSERT INTO incident_events (incident_id, at, actor, action, to_state, note, detail)
    SELECT inc.id, %(at)s, %(actor)s, 'open', 'open', %(note)s, %(detail)s FROM inc
    UNION ALL
    SELECT inc.id, %(at)s, %(actor)s, 'attach', NULL, NULL,
           jsonb_build_object('fingerprint', l.fp, 'episode_start', l.start)
    FROM inc, unnest(%(fps)s::text[], %(starts)s::timestamptz[]) AS l(fp, start))
SELECT id FROM inc
"""
"""An incident with its response, timers, checklist, alert episodes and audit events
in one statement (one round trip: the intake's latency is mostly round trips)."""


async def create(conn: Conn, cfg: IncidentConfig, *, title: str, rule_id: str | None,
                 province_code: str | None, department: str, severity: Severity,
                 actor: str, at: datetime, episodes: Sequence[tuple[str, datetime]] = (),
                 assignee: str | None = None, sop: Sop | None = None,
                 note: str | None = None) -> int:
    """Open an incident with its SOP checklist, timers and alert episodes; an episode
    another incident holds is a conflict (nothing is written)."""
    inc, timers = open_incident(severity=severity, department=department,
                                assignee=assignee, at=at, sla=cfg.sla_for(severity))
    steps = sop.steps if sop is not None else ()
    params = {
        "title": title[:300], "rule": rule_id, "province": province_code,
        "department": department, "assignee": assignee, "severity": severity,
        "sop": sop.id if sop else None, "at": at, "actor": actor,
        "ack_due": inc.ack_due_at, "resolve_due": inc.resolve_due_at,
        "timer_kinds": [t.kind for t in timers], "timer_dues": [t.due_at for t in timers],
        "step_ids": [s.id for s in steps], "step_vi": [s.title.vi for s in steps],
        "step_en": [s.title.en for s in steps], "step_dept": [s.department for s in steps],
        "step_req": [s.requires for s in steps], "step_due": [at + s.due for s in steps],
        "fps": [f for f, _ in episodes], "starts": [t for _, t in episodes],
        "note": note, "detail": Jsonb({"rule_id": rule_id, "province_code": province_code,
                                       "department": department, "severity": severity,
                                       "sop": sop.id if sop else None})}
    try:
        async with conn.transaction():
            cur = await conn.execute(_CREATE, params)
            row = await cur.fetchone()
    except psycopg.errors.UniqueViolation as exc:
        raise IncidentConflictError("an alert belongs to another incident; detach it there "
                                    "first") from exc
    assert row is not None
    return int(row[0])


async def link(conn: Conn, incident_id: int, fingerprint: str, episode_start: datetime,
               actor: str, at: datetime) -> None:
    """Attach one alert episode (the caller holds the incident's lock)."""
    try:
        async with conn.transaction():
            await conn.execute(
                "INSERT INTO incident_alerts (incident_id, fingerprint, episode_start,"
                " attached_at, attached_by) VALUES (%s, %s, %s, %s, %s)"
                " ON CONFLICT (fingerprint, episode_start, incident_id) DO UPDATE"
                " SET detached_at = NULL, detached_by = NULL, attached_at = excluded.attached_at,"
                " attached_by = excluded.attached_by",
                (incident_id, fingerprint, episode_start, at, actor))
    except psycopg.errors.UniqueViolation as exc:
        raise IncidentConflictError(f"alert {fingerprint} belongs to another incident; "
                               "detach it there first") from exc
    await event(conn, incident_id, at, actor, "attach",
                detail={"fingerprint": fingerprint, "episode_start": episode_start.isoformat()})


async def _episodes(conn: Conn, fingerprints: Sequence[str], scope: str | None
                    ) -> list[dict[str, Any]]:
    """Current episodes of these alerts (only the caller's department's when scoped)."""
    async with conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(
            "SELECT fingerprint, rule_id, province_code, severity, labels, annotations,"
            " coalesce(started_at, firing_at, updated_at) AS start FROM alerts"
            " WHERE fingerprint = ANY(%s)", (list(fingerprints),))
        rows = await cur.fetchall()
    found = {r["fingerprint"] for r in rows if scope is None
             or alert_department(r["labels"]) == scope}
    missing = [f for f in fingerprints if f not in found]
    if missing:
        raise IncidentNotFoundError(f"alerts not found: {', '.join(missing[:5])}")
    return [r for r in rows if r["fingerprint"] in found]


async def open_from_alerts(conn: Conn, cfg: IncidentConfig, fingerprints: Sequence[str], *,
                           actor: str, at: datetime, scope: str | None,
                           title: str | None = None, department: str | None = None,
                           severity: Severity | None = None, note: str | None = None) -> int:
    """An operator opens an incident from the board, for some alerts or none."""
    async with conn.transaction():
        rows = await _episodes(conn, fingerprints, scope) if fingerprints else []
        first = rows[0] if rows else None
        rule_id = first["rule_id"] if first else None
        dept = scope or department or (alert_department(first["labels"]) if first else None)
        if dept is None:
            raise IncidentConflictError("an incident without alerts needs a department")
        sev: Severity = severity or (first["severity"] if first else "warning")
        ann = (first["annotations"] or {}) if first else {}  # stored per language
        name = title or (str(ann.get("summary") or ann.get("summary_vi") or rule_id)
                         if first else None)
        if not name:
            raise IncidentConflictError("an incident without alerts needs a title")
        return await create(conn, cfg, title=name, rule_id=rule_id,
                            province_code=first["province_code"] if first else None,
                            department=dept, severity=sev, actor=actor, at=at,
                            episodes=[(r["fingerprint"], r["start"]) for r in rows],
                            sop=cfg.sops.get(rule_id) if rule_id else None, note=note)


async def attach(conn: Conn, incident_id: int, fingerprints: Sequence[str], *, actor: str,
                 at: datetime, scope: str | None) -> None:
    async with conn.transaction():
        inc = await lock(conn, incident_id, scope)
        if inc.merged_into is not None or inc.state == "closed":
            raise IncidentConflictError("alerts attach to an incident that is not closed")
        for r in await _episodes(conn, fingerprints, scope):
            await link(conn, incident_id, r["fingerprint"], r["start"], actor, at)


async def detach(conn: Conn, incident_id: int, fingerprints: Sequence[str], *, actor: str,
                 at: datetime, scope: str | None, reason: str = "detach") -> int:
    """Detach alerts (every episode of each); returns how many links ended."""
    async with conn.transaction():
        await lock(conn, incident_id, scope)
        cur = await conn.execute(
            "UPDATE incident_alerts SET detached_at = %s, detached_by = %s"
            " WHERE incident_id = %s AND fingerprint = ANY(%s) AND detached_at IS NULL"
            " RETURNING fingerprint", (at, actor, incident_id, list(fingerprints)))
        gone = [str(r[0]) for r in await cur.fetchall()]
        if not gone:
            raise IncidentConflictError("none of these alerts is attached to the incident")
        await event(conn, incident_id, at, actor, reason, detail={"fingerprints": gone})
        return len(gone)


async def merge(conn: Conn, target: int, sources: Sequence[int], *, actor: str, at: datetime,
                scope: str | None, note: str | None = None) -> None:
    """Move the sources' alerts into ``target``; the sources close, merged into it."""
    if target in sources or not sources:
        raise IncidentConflictError("merge needs other incidents than the target")
    async with conn.transaction():
        for iid in sorted({target, *sources}):  # one lock order for every writer
            inc = await lock(conn, iid, scope)
            if inc.merged_into is not None:
                raise IncidentConflictError(f"incident #{iid} was already merged")
            if iid == target and inc.state == "closed":
                raise IncidentConflictError("merge into an incident that is not closed")
        for src in sources:
            cur = await conn.execute(
                "UPDATE incident_alerts SET detached_at = %s, detached_by = %s"
                " WHERE incident_id = %s AND detached_at IS NULL"
                " RETURNING fingerprint, episode_start", (at, actor, src))
            moved = await cur.fetchall()
            for fp, start in moved:
                await link(conn, target, str(fp), start, actor, at)
            before = await lock(conn, src, scope)
            closed = replace(before, state="closed", closed_at=at)
            await conn.execute(
                "UPDATE incidents SET state = 'closed', closed_at = %s, merged_into = %s,"
                " updated_at = %s WHERE id = %s", (at, target, at, src))
            await conn.execute(
                "UPDATE incident_timers SET cancelled_at = %s WHERE incident_id = %s"
                " AND fired_at IS NULL AND cancelled_at IS NULL", (at, src))
            await event(conn, src, at, actor, "merged_into", from_state=before.state,
                        to_state=closed.state, note=note, detail={"into": target})
            await event(conn, target, at, actor, "merge", note=note,
                        detail={"from": src, "alerts": len(moved)})
        await conn.execute("UPDATE incidents SET updated_at = %s WHERE id = %s", (at, target))


async def split(conn: Conn, cfg: IncidentConfig, incident_id: int,
                fingerprints: Sequence[str], *, actor: str, at: datetime, scope: str | None,
                title: str | None = None, note: str | None = None) -> int:
    """Move some alerts into a new incident (same owner, rule, province and severity)."""
    async with conn.transaction():
        cur = await conn.execute(
            "SELECT title, rule_id, province_code, sop_id FROM incidents WHERE id = %s",
            (incident_id,))
        meta = await cur.fetchone()
        inc = await lock(conn, incident_id, scope)
        if meta is None or inc.state == "closed":
            raise IncidentConflictError("split an incident that is not closed")
        cur = await conn.execute(
            "UPDATE incident_alerts SET detached_at = %s, detached_by = %s"
            " WHERE incident_id = %s AND fingerprint = ANY(%s) AND detached_at IS NULL"
            " RETURNING fingerprint, episode_start",
            (at, actor, incident_id, list(fingerprints)))
        moved = [(str(f), s) for f, s in await cur.fetchall()]
        if not moved:
            raise IncidentConflictError("none of these alerts is attached to the incident")
        sop = cfg.sops.get(meta[1]) if meta[1] else None
        new = await create(conn, cfg, title=title or f"{meta[0]} (tách / split)",
                           rule_id=meta[1], province_code=meta[2], department=inc.department,
                           severity=inc.severity, actor=actor, at=at, episodes=moved,
                           assignee=inc.assignee, sop=sop, note=note)
        await event(conn, incident_id, at, actor, "split", note=note,
                    detail={"into": new, "fingerprints": [f for f, _ in moved]})
        await conn.execute("UPDATE incidents SET updated_at = %s WHERE id = %s",
                           (at, incident_id))
        return new


async def step_done(conn: Conn, incident_id: int, step_id: str, *, actor: str, at: datetime,
                    scope: str | None, note: str | None = None,
                    evidence: str | None = None) -> None:
    """Mark an SOP step done; a step that requires a note or evidence refuses without."""
    async with conn.transaction():
        inc = await lock(conn, incident_id, scope)
        if inc.state == "closed":
            raise IncidentConflictError("a closed incident's checklist is final")
        cur = await conn.execute(
            "SELECT requires, done_at FROM incident_steps WHERE incident_id = %s"
            " AND step_id = %s FOR UPDATE", (incident_id, step_id))
        row = await cur.fetchone()
        if row is None:
            raise IncidentNotFoundError(f"step {step_id}")
        requires, done = row
        if done is not None:
            raise IncidentConflictError(f"step {step_id} is already done")
        if requires == "note" and not (note or "").strip():
            raise IncidentConflictError(f"step {step_id} needs a note")
        if requires == "evidence" and not (evidence or "").strip():
            raise IncidentConflictError(f"step {step_id} needs evidence (a link or reference)")
        await conn.execute(
            "UPDATE incident_steps SET done_at = %s, done_by = %s, note = %s, evidence = %s"
            " WHERE incident_id = %s AND step_id = %s",
            (at, actor, note, evidence, incident_id, step_id))
        await event(conn, incident_id, at, actor, "step_done", note=note,
                    detail={"step": step_id, "evidence": evidence})
        await conn.execute("UPDATE incidents SET updated_at = %s WHERE id = %s",
                           (at, incident_id))
