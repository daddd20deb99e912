"""The intake: firing alert episodes join incidents, or open one, exactly once.

An episode (an alert's fingerprint and the start of its current episode) that no
incident holds yet, in this order:

1. its alert was in an incident before: that incident takes it (reopening it when it
   was resolved or closed less than ``reopen_window`` ago; a merged incident passes it
   to the one it was merged into);
2. an active incident of the same rule and province takes it (one response);
3. the rule says ``incident: auto``: a new incident opens, owned by the alert's
   department, with the rule's SOP.

Otherwise the alert waits for an operator. A round holds a session advisory lock, so
several runners never open two incidents for the same response, and places each alert
in its own transaction (its incident is visible as soon as it is placed). The state is
the database's: a round after a crash redoes exactly what the crashed one did not
commit.
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any, Final

from psycopg.rows import dict_row

from alerts.incidents import store
from alerts.incidents.config import IncidentConfig
from alerts.incidents.errors import IllegalActionError
from alerts.incidents.machine import Action

log = logging.getLogger(__name__)

INTAKE_LOCK: Final = 0x10C1_4C1D
"""Session advisory lock held by the runner doing an intake round."""
ACTOR: Final = "system:intake"

_PENDING = """
WITH unlinked AS MATERIALIZED (
    SELECT a.fingerprint, a.rule_id, a.province_code, a.severity, a.labels, a.annotations,
           coalesce(a.started_at, a.firing_at, a.updated_at) AS start,
           coalesce(a.firing_at, a.updated_at) AS since
    FROM alerts a
    WHERE a.state IN ('firing', 'acknowledged')
      AND NOT EXISTS (SELECT 1 FROM incident_alerts l WHERE l.fingerprint = a.fingerprint
                      AND l.episode_start = coalesce(a.started_at, a.firing_at, a.updated_at))
)
SELECT u.fingerprint, u.rule_id, u.province_code, u.severity, u.labels, u.annotations, u.start,
       EXISTS (SELECT 1 FROM incident_alerts l WHERE l.fingerprint = u.fingerprint
               AND l.detached_at IS NULL) AS was_linked,
       EXISTS (SELECT 1 FROM incidents i WHERE i.rule_id = u.rule_id
               AND i.province_code IS NOT DISTINCT FROM u.province_code
               AND i.state IN ('open', 'acknowledged', 'in_progress')
               AND i.merged_into IS NULL) AS has_active
FROM unlinked u
WHERE u.rule_id = ANY(%(auto)s)
   OR EXISTS (SELECT 1 FROM incidents i WHERE i.rule_id = u.rule_id
              AND i.province_code IS NOT DISTINCT FROM u.province_code
              AND i.state IN ('open', 'acknowledged', 'in_progress')
              AND i.merged_into IS NULL)
   OR EXISTS (SELECT 1 FROM incident_alerts l JOIN incidents i ON i.id = l.incident_id
              WHERE l.fingerprint = u.fingerprint AND l.detached_at IS NULL
                AND (i.state IN ('open', 'acknowledged', 'in_progress')
                     OR coalesce(i.resolved_at, i.closed_at) >= %(since)s))
ORDER BY was_linked DESC, u.since, u.fingerprint
LIMIT %(limit)s
"""
"""Alert episodes no incident holds (first, with the cheap anti-join: usually few),
that an incident should take: an auto rule, an active incident of the same rule and
province, or an incident the alert was in that is active or ended within the window.
Alerts that were in an incident come first, so a reopening happens before newcomers of
the same round look for an active incident (the answer does not depend on order)."""

_PREVIOUS = """
SELECT i.id, i.state, i.resolved_at, i.closed_at, i.merged_into
FROM incident_alerts l JOIN incidents i ON i.id = l.incident_id
WHERE l.fingerprint = %s AND l.detached_at IS NULL
ORDER BY l.attached_at DESC LIMIT 1
"""

_ACTIVE = """
SELECT id FROM incidents WHERE rule_id = %s AND province_code IS NOT DISTINCT FROM %s
  AND state IN ('open', 'acknowledged', 'in_progress') AND merged_into IS NULL
ORDER BY opened_at LIMIT 1
"""


async def _follow_merges(conn: store.Conn, iid: int) -> tuple[int, str, Any, Any]:
    for _ in range(20):
        cur = await conn.execute("SELECT id, state, resolved_at, closed_at, merged_into"
                                 " FROM incidents WHERE id = %s", (iid,))
        row = await cur.fetchone()
        assert row is not None
        if row[4] is None:
            return int(row[0]), str(row[1]), row[2], row[3]
        iid = int(row[4])
    raise RuntimeError("merge chain too long")


async def intake_once(conn: store.Conn, cfg: IncidentConfig, at: datetime,
                      limit: int = 500) -> list[int]:
    """One round; returns the incidents opened or reopened (ids). ``conn`` must be in
    autocommit mode: each alert is placed in its own transaction (visible at once)."""
    changed: list[int] = []
    cur = await conn.execute("SELECT pg_try_advisory_lock(%s)", (INTAKE_LOCK,))
    got = await cur.fetchone()
    if not got or not got[0]:
        return []
    try:
        async with conn.cursor(row_factory=dict_row) as c:
            await c.execute(_PENDING, {"auto": list(cfg.auto_rules), "limit": limit,
                                       "since": at - cfg.reopen_window})
            pending = await c.fetchall()
        opened: dict[tuple[str, str | None], int] = {}
        for a in pending:
            try:
                async with conn.transaction():
                    await _one(conn, cfg, a, at, changed, opened)
            except IllegalActionError as exc:  # an operator acted in between: next round
                log.info("intake: alert %s left for the next round: %s", a["fingerprint"], exc)
    finally:
        await conn.execute("SELECT pg_advisory_unlock(%s)", (INTAKE_LOCK,))
    return changed


async def _one(conn: store.Conn, cfg: IncidentConfig, a: dict[str, Any], at: datetime,
               changed: list[int], opened: dict[tuple[str, str | None], int]) -> None:
    key = (a["rule_id"], a["province_code"])
    if not a["was_linked"] and key in opened:  # opened earlier in this round
        await _attach(conn, opened[key], a["fingerprint"], a["start"], at)
        return
    iid = await _place(conn, cfg, a, at, changed)
    if iid is not None:  # attached (to an active or a reopened incident)
        opened.setdefault(key, iid)
        return
    if a["rule_id"] in cfg.auto_rules:
        ann = a["annotations"] or {}  # rules' annotations are stored per language
        title = str(ann.get("summary") or ann.get("summary_vi") or a["rule_id"])
        iid = await store.create(
            conn, cfg, title=title, rule_id=a["rule_id"], province_code=a["province_code"],
            department=store.alert_department(a["labels"]), severity=a["severity"],
            actor=ACTOR, at=at, episodes=[(a["fingerprint"], a["start"])],
            sop=cfg.sops.get(a["rule_id"]))
        changed.append(iid)
        opened[key] = iid


async def _place(conn: store.Conn, cfg: IncidentConfig, a: dict[str, Any], at: datetime,
                 changed: list[int]) -> int | None:
    """Attach to a previous or active incident; ``None`` when none takes the alert."""
    fp, start = a["fingerprint"], a["start"]
    prev = None
    if a["was_linked"]:
        cur = await conn.execute(_PREVIOUS, (fp,))
        prev = await cur.fetchone()
    if prev is not None:
        iid, state, resolved_at, closed_at = await _follow_merges(conn, int(prev[0]))
        if state in ("open", "acknowledged", "in_progress"):
            await _attach(conn, iid, fp, start, at)
            return iid
        ended = resolved_at or closed_at
        if ended is not None and at - ended <= cfg.reopen_window:
            await store.act(conn, cfg, iid, Action("reopen", ACTOR, at,
                                                   note="alert fired again"), None,
                            detail={"fingerprint": fp})
            await _attach(conn, iid, fp, start, at)
            changed.append(iid)
            return iid
    if not a["has_active"]:  # none when the round started (this round's are in `opened`)
        return None
    cur = await conn.execute(_ACTIVE, (a["rule_id"], a["province_code"]))
    row = await cur.fetchone()
    if row is not None:
        await _attach(conn, int(row[0]), fp, start, at)
        return int(row[0])
    return None


async def _attach(conn: store.Conn, iid: int, fp: str, start: datetime, at: datetime) -> None:
    await store.lock(conn, iid, None)
    await store.link(conn, iid, fp, start, ACTOR, at)
    await conn.execute("UPDATE incidents SET updated_at = %s WHERE id = %s", (at, iid))
