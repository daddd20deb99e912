"""Alerts in PostgreSQL/TimescaleDB (psycopg 3, async): the one place that writes them.

* :func:`persist` stores evaluator transitions, the alert rows and the outbox rows in
  one transaction. It is idempotent (a transition already stored is skipped) and the
  database is the arbiter: a transition made on stale state (an operator acknowledged
  or resolved meanwhile) is re-based onto the stored state or dropped, and its
  fingerprint is reported in :attr:`PersistResult.conflicts` so the caller reloads it.
* :func:`load_states`, :func:`load_sightings`, :func:`load_windows` and
  :func:`load_cursors`: what an evaluator is rebuilt from (a start, a rebalance, a new
  lock holder, a failed transaction).
* Operator actions (:func:`acknowledge`, :func:`resolve`, silences) lock the alert row,
  apply the state machine, enqueue notifications and write the audit log, all in one
  transaction.

Every function takes an open :class:`psycopg.AsyncConnection` in autocommit mode and
opens its own transaction.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, cast

from psycopg import AsyncConnection
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb

from alerts import lifecycle
from alerts.errors import AlertNotFoundError
from alerts.model import AlertState, Severity, State, Transition, WindowPoint
from alerts.notify import Receiver, plan
from alerts.silences import Matcher, Silence
from alerts.source_clocks import Sighting

Conn = AsyncConnection[Any]

_ALLOWED: dict[str, set[str]] = {
    # to_state (kind "state") -> states it may come from
    "pending": {"inactive", "resolved"},
    "firing": {"pending", "inactive", "resolved"},
    "inactive": {"pending"},
    "acknowledged": {"firing"},
    "resolved": {"pending", "firing", "acknowledged"},
}


@dataclass(slots=True)
class PersistResult:
    stored: list[Transition] = field(default_factory=list)
    """Transitions written, as stored (publish these to the alerts topic)."""
    duplicates: int = 0
    dropped: list[Transition] = field(default_factory=list)
    """Transitions made on stale state that no longer apply."""
    conflicts: set[str] = field(default_factory=set)
    """Fingerprints whose stored state differs from the caller's: reload them."""
    notifications: int = 0


def utcnow() -> datetime:
    return datetime.now(UTC)


# -- evaluator output ----------------------------------------------------------------------
async def persist(conn: Conn, transitions: Sequence[Transition], *,
                  receivers: Sequence[Receiver], generator_url: str = "",
                  now: datetime | None = None) -> PersistResult:
    """Store transitions + alert rows + outbox rows in one transaction (idempotent)."""
    result = PersistResult()
    if not transitions:
        return result
    by_fp: dict[str, list[Transition]] = {}
    for t in transitions:
        by_fp.setdefault(t.fingerprint, []).append(t)
    # pipelined: the writes below wait for no answer (one round trip for all of them
    # instead of one each: stage 2 persists inside the batch transaction an alert waits
    # for); a query that needs its rows (silences, the lock, a replay's _exists) syncs
    notified: list[Any] = []
    async with conn.pipeline(), conn.transaction():
        silences = await active_silences(conn, now or utcnow())
        states = await _lock(conn, sorted(by_fp))
        for fp in sorted(by_fp):
            state = states.get(fp)
            changed = False
            for t in by_fp[fp]:
                if state is not None and t.seq <= state.seq and await _exists(conn, t):
                    result.duplicates += 1
                    continue
                current = state.state if state is not None else "inactive"
                if not _applies(t, current):
                    result.dropped.append(t)
                    result.conflicts.add(fp)
                    continue
                if state is None:
                    state = AlertState(fingerprint=fp, rule_id=t.rule_id, state="inactive",
                                       severity=t.severity, labels=dict(t.labels))
                stored = _apply(state, t)
                if stored.seq != t.seq or stored.from_state != t.from_state:
                    result.conflicts.add(fp)
                await _insert_transition(conn, stored)
                notified += await _enqueue(conn, stored, receivers, silences,
                                           generator_url, now)
                result.stored.append(stored)
                changed = True
            if changed and state is not None:
                await _upsert_alert(conn, state)
    result.notifications = sum(max(0, cur.rowcount) for cur in notified)
    return result


def _applies(t: Transition, current: str) -> bool:
    if t.kind != "state":
        return current == "firing"
    return current in _ALLOWED.get(t.to_state, set())


def _apply(state: AlertState, t: Transition) -> Transition:
    """Replay ``t`` onto the stored state (renumbered after it) and return what is stored."""
    state.labels = dict(t.labels)
    state.severity = t.severity
    state.annotations = dict(t.annotations)
    state.last_value = t.value
    stored = lifecycle.transition(state, t.to_state, t.at, kind=t.kind, actor=t.actor,
                                  note=t.note, receiver=t.receiver,
                                  replaces=dict(t.replaces) if t.replaces else None,
                                  backfilled=t.backfilled)
    if t.kind == "escalate":
        state.escalated = True
    return stored


async def _lock(conn: Conn, fingerprints: list[str]) -> dict[str, AlertState]:
    async with conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(
            "SELECT * FROM alerts WHERE fingerprint = ANY(%s) ORDER BY fingerprint FOR UPDATE",
            (fingerprints,))
        return {row["fingerprint"]: _state(row) for row in await cur.fetchall()}


async def _exists(conn: Conn, t: Transition) -> bool:
    cur = await conn.execute(
        "SELECT 1 FROM alert_transitions WHERE fingerprint = %s AND seq = %s AND at = %s"
        " AND to_state = %s AND kind = %s",
        (t.fingerprint, t.seq, t.at, t.to_state, t.kind))
    return await cur.fetchone() is not None


async def _insert_transition(conn: Conn, t: Transition) -> None:
    await conn.execute(
        "INSERT INTO alert_transitions (at, fingerprint, seq, rule_id, kind, from_state,"
        " to_state, severity, labels, annotations, value, actor, note, receiver, backfilled)"
        " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)"
        " ON CONFLICT DO NOTHING",
        (t.at, t.fingerprint, t.seq, t.rule_id, t.kind, t.from_state, t.to_state, t.severity,
         Jsonb(dict(t.labels)), Jsonb(dict(t.annotations)), t.value, t.actor, t.note,
         t.receiver, t.backfilled))


async def _enqueue(conn: Conn, t: Transition, receivers: Sequence[Receiver],
                   silences: Iterable[Silence], generator_url: str,
                   now: datetime | None) -> list[Any]:
    """The outbox inserts' cursors (their row counts are known once the pipeline syncs)."""
    return [await conn.execute(
        "INSERT INTO alert_outbox (fingerprint, seq, receiver, payload)"
        " VALUES (%s, %s, %s, %s) ON CONFLICT (fingerprint, seq, receiver) DO NOTHING",
        (n.fingerprint, n.seq, n.receiver, Jsonb(n.payload)))
        for n in plan(t, receivers, silences, generator_url=generator_url, now=now)]


async def _upsert_alert(conn: Conn, a: AlertState) -> None:
    await conn.execute(
        "INSERT INTO alerts (fingerprint, rule_id, state, severity, labels, annotations,"
        " commune_code, province_code, seq, started_at, firing_at, clear_since,"
        " last_notified_at, escalated, acknowledged_by, acknowledged_at, resolved_at,"
        " last_value, updated_at)"
        " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)"
        " ON CONFLICT (fingerprint) DO UPDATE SET rule_id = EXCLUDED.rule_id,"
        " state = EXCLUDED.state, severity = EXCLUDED.severity, labels = EXCLUDED.labels,"
        " annotations = EXCLUDED.annotations, commune_code = EXCLUDED.commune_code,"
        " province_code = EXCLUDED.province_code, seq = EXCLUDED.seq,"
        " started_at = EXCLUDED.started_at, firing_at = EXCLUDED.firing_at,"
        " clear_since = EXCLUDED.clear_since, last_notified_at = EXCLUDED.last_notified_at,"
        " escalated = EXCLUDED.escalated, acknowledged_by = EXCLUDED.acknowledged_by,"
        " acknowledged_at = EXCLUDED.acknowledged_at, resolved_at = EXCLUDED.resolved_at,"
        " last_value = EXCLUDED.last_value, updated_at = EXCLUDED.updated_at",
        (a.fingerprint, a.rule_id, a.state, a.severity, Jsonb(a.labels), Jsonb(a.annotations),
         a.labels.get("commune_code"), a.labels.get("province_code"), a.seq, a.started_at,
         a.firing_at, a.clear_since, a.last_notified_at, a.escalated, a.acknowledged_by,
         a.acknowledged_at, a.resolved_at, a.last_value, a.updated_at or utcnow()))


async def save_marks(conn: Conn, marks: Mapping[str, tuple[int, datetime | None]]) -> None:
    """Store ``clear_since`` of alerts that moved it without a transition; a row whose seq
    moved on since (an operator's resolve) is left as it is."""
    for fp in sorted(marks):
        seq, clear_since = marks[fp]
        await conn.execute("UPDATE alerts SET clear_since = %s WHERE fingerprint = %s"
                           " AND seq = %s", (clear_since, fp, seq))


def _state(row: Mapping[str, Any]) -> AlertState:
    return AlertState(
        fingerprint=row["fingerprint"], rule_id=row["rule_id"],
        state=cast(State, row["state"]), severity=cast(Severity, row["severity"]),
        labels=dict(row["labels"]), annotations=dict(row["annotations"]), seq=row["seq"],
        started_at=row["started_at"], firing_at=row["firing_at"],
        clear_since=row["clear_since"], last_notified_at=row["last_notified_at"],
        escalated=row["escalated"], acknowledged_by=row["acknowledged_by"],
        acknowledged_at=row["acknowledged_at"], resolved_at=row["resolved_at"],
        last_value=row["last_value"], updated_at=row["updated_at"])


def _transition(row: Mapping[str, Any]) -> Transition:
    return Transition(
        fingerprint=row["fingerprint"], seq=row["seq"], rule_id=row["rule_id"],
        kind=row["kind"], from_state=row["from_state"], to_state=row["to_state"],
        at=row["at"], severity=row["severity"], labels=dict(row["labels"]),
        annotations=dict(row["annotations"]), value=row["value"], actor=row["actor"],
        note=row["note"], receiver=row["receiver"],
        backfilled=bool(row.get("backfilled", False)))


# -- reading -------------------------------------------------------------------------------
async def load_states(conn: Conn, *, fingerprints: Iterable[str] | None = None,
                      communes: Iterable[str] | None = None,
                      provinces: Iterable[str] | None = None,
                      rule_ids: Iterable[str] | None = None,
                      active_only: bool = False) -> list[AlertState]:
    """Alert states to :meth:`alerts.evaluator.Evaluator.restore` (filters are ANDed)."""
    where, params = _filters(fingerprints=fingerprints, communes=communes,
                             provinces=provinces, rule_ids=rule_ids)
    if active_only:
        where.append("state IN ('pending', 'firing', 'acknowledged')")
    sql = "SELECT * FROM alerts" + (" WHERE " + " AND ".join(where) if where else "")
    async with conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(sql, params)
        return [_state(row) for row in await cur.fetchall()]


async def load_sightings(conn: Conn, *, communes: Iterable[str] | None = None,
                         received_since: datetime | None = None
                         ) -> list[tuple[Sighting, bool]]:
    """Sources' stored progress as sightings (province left for the evaluator to fill),
    each with whether this very transaction touched the source (``last_received_at =
    now()``: its progress is this batch's, not what was evaluated before it)."""
    where, params = _filters(communes=communes)
    if received_since is not None:
        where.append("last_received_at >= %s")
        params.append(received_since)
    cur = await conn.execute(
        "SELECT source_id, feed, department, coalesce(commune_code, ''), last_seen,"
        " last_received_at, last_received_at = now() FROM sources"
        + (" WHERE " + " AND ".join(where) if where else ""), params)
    return [(Sighting(source_id, feed, department, commune, "", newest or received,
                      received), bool(touched))
            for source_id, feed, department, commune, newest, received, touched
            in await cur.fetchall()]


async def load_windows(conn: Conn, metrics: Iterable[str],
                       since: Mapping[str, datetime]) -> list[WindowPoint]:
    """One-minute window totals (``rollup_1m``) of ``metrics``, per commune from its
    ``since`` on: what the evaluator saw, or will see, of those communes."""
    if not since:
        return []
    cur = await conn.execute(
        "SELECT r.commune_code, r.province_code, r.metric, r.bucket, r.count, r.sum,"
        " r.min, r.max, r.last FROM unnest(%s::text[], %s::timestamptz[]) AS w(commune,"
        " since) JOIN rollup_1m r ON r.commune_code = w.commune AND r.bucket >= w.since"
        " WHERE r.metric = ANY(%s) ORDER BY r.bucket",
        (list(since), list(since.values()), sorted(metrics)))
    return [WindowPoint(*row) for row in await cur.fetchall()]


async def load_cursors(conn: Conn, rule_ids: Iterable[str]) -> dict[str, datetime]:
    """Where the singleton runner's scopes had evaluated to (migration 0042)."""
    cur = await conn.execute("SELECT fingerprint, evaluated_until FROM alert_cursors"
                             " WHERE rule_id = ANY(%s)", (list(rule_ids),))
    return {fp: at for fp, at in await cur.fetchall()}


async def save_cursors(conn: Conn, cursors: Mapping[str, tuple[str, datetime]]) -> None:
    """``{fingerprint: (rule_id, evaluated_until)}``, in the transaction that stored the
    plan's transitions (so a new holder resumes exactly there)."""
    if not cursors:
        return
    fps = list(cursors)
    await conn.execute(
        "INSERT INTO alert_cursors (fingerprint, rule_id, evaluated_until)"
        " SELECT * FROM unnest(%s::text[], %s::text[], %s::timestamptz[])"
        " ON CONFLICT (fingerprint) DO UPDATE SET evaluated_until = excluded.evaluated_until",
        (fps, [cursors[f][0] for f in fps], [cursors[f][1] for f in fps]))


def _filters(**lists: Iterable[str] | None) -> tuple[list[str], list[Any]]:
    columns = {"fingerprints": "fingerprint", "communes": "commune_code",
               "provinces": "province_code", "rule_ids": "rule_id", "states": "state",
               "severities": "severity"}
    where: list[str] = []
    params: list[Any] = []
    for name, values in lists.items():
        if values is not None:
            where.append(f"{columns[name]} = ANY(%s)")
            params.append(list(values))
    return where, params


async def list_alerts(conn: Conn, *, states: Iterable[str] | None = None,
                      severities: Iterable[str] | None = None,
                      communes: Iterable[str] | None = None,
                      provinces: Iterable[str] | None = None,
                      rule_ids: Iterable[str] | None = None,
                      limit: int = 100, offset: int = 0) -> list[AlertState]:
    """Alerts, most recently changed first (filters are ANDed; ``None`` = any)."""
    where, params = _filters(states=states, severities=severities, communes=communes,
                             provinces=provinces, rule_ids=rule_ids)
    sql = ("SELECT * FROM alerts" + (" WHERE " + " AND ".join(where) if where else "")
           + " ORDER BY updated_at DESC, fingerprint LIMIT %s OFFSET %s")
    async with conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(sql, [*params, limit, offset])
        return [_state(row) for row in await cur.fetchall()]


async def get_alert(conn: Conn, fingerprint: str) -> tuple[AlertState, list[Transition]]:
    """One alert and its whole history (oldest first); ``AlertNotFoundError`` if unknown."""
    async with conn.cursor(row_factory=dict_row) as cur:
        await cur.execute("SELECT * FROM alerts WHERE fingerprint = %s", (fingerprint,))
        row = await cur.fetchone()
        if row is None:
            raise AlertNotFoundError(f"no alert {fingerprint}")
        await cur.execute("SELECT * FROM alert_transitions WHERE fingerprint = %s"
                          " ORDER BY seq, at", (fingerprint,))
        return _state(row), [_transition(r) for r in await cur.fetchall()]


# -- operator actions ----------------------------------------------------------------------
async def acknowledge(conn: Conn, fingerprint: str, actor: str, note: str | None, *,
                      receivers: Sequence[Receiver], generator_url: str = "",
                      now: datetime | None = None) -> Transition:
    """firing → acknowledged by ``actor`` (stops reminders and escalation); audited."""
    return await _operator(conn, fingerprint, actor, note, "acknowledge", receivers,
                           generator_url, now)


async def resolve(conn: Conn, fingerprint: str, actor: str, note: str | None, *,
                  receivers: Sequence[Receiver], generator_url: str = "",
                  now: datetime | None = None) -> Transition:
    """pending/firing/acknowledged → resolved by hand; audited."""
    return await _operator(conn, fingerprint, actor, note, "resolve", receivers,
                           generator_url, now)


async def _operator(conn: Conn, fingerprint: str, actor: str, note: str | None, action: str,
                    receivers: Sequence[Receiver], generator_url: str,
                    now: datetime | None) -> Transition:
    at = now or utcnow()
    async with conn.transaction():
        states = await _lock(conn, [fingerprint])
        if fingerprint not in states:
            raise AlertNotFoundError(f"no alert {fingerprint}")
        state = states[fingerprint]
        if action == "acknowledge":
            t = lifecycle.acknowledge(state, actor, note, at)
        else:
            t = lifecycle.resolve_by_hand(state, actor, note, at)
        await _insert_transition(conn, t)
        await _enqueue(conn, t, receivers, await active_silences(conn, at), generator_url, at)
        await _upsert_alert(conn, state)
        await audit(conn, actor, action, fingerprint,
                    {"note": note, "from": t.from_state, "to": t.to_state, "seq": t.seq})
    return t


# -- silences ------------------------------------------------------------------------------
def _silence(row: Mapping[str, Any]) -> Silence:
    return Silence(id=row["id"], matchers=tuple(Matcher.stored(m) for m in row["matchers"]),
                   starts_at=row["starts_at"], ends_at=row["ends_at"],
                   created_by=row["created_by"], comment=row["comment"],
                   expired_by=row["expired_by"])


async def active_silences(conn: Conn, at: datetime) -> list[Silence]:
    """Silences in effect at ``at``."""
    async with conn.cursor(row_factory=dict_row) as cur:
        await cur.execute("SELECT * FROM silences WHERE starts_at <= %s AND ends_at > %s"
                          " ORDER BY id", (at, at))
        return [_silence(r) for r in await cur.fetchall()]


async def list_silences(conn: Conn, *, include_expired: bool = False,
                        now: datetime | None = None) -> list[Silence]:
    sql = "SELECT * FROM silences"
    params: list[Any] = []
    if not include_expired:
        sql += " WHERE ends_at > %s"
        params.append(now or utcnow())
    async with conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(sql + " ORDER BY id", params)
        return [_silence(r) for r in await cur.fetchall()]


async def create_silence(conn: Conn, matchers: Sequence[Matcher], *, starts_at: datetime,
                         ends_at: datetime, created_by: str, comment: str = "") -> Silence:
    """A new silence (at least one matcher, ``ends_at`` after ``starts_at``); audited."""
    if not matchers:
        raise ValueError("a silence needs at least one matcher")
    if ends_at <= starts_at:
        raise ValueError("a silence must end after it starts")
    async with conn.transaction(), conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(
            "INSERT INTO silences (matchers, starts_at, ends_at, created_by, comment)"
            " VALUES (%s, %s, %s, %s, %s) RETURNING *",
            (Jsonb([m.to_json() for m in matchers]), starts_at, ends_at, created_by, comment))
        row = await cur.fetchone()
        if row is None:  # pragma: no cover - INSERT ... RETURNING always returns
            raise AlertNotFoundError("silence not created")
        silence = _silence(row)
        await audit(conn, created_by, "silence.create", f"silence/{silence.id}",
                    {"matchers": [str(m) for m in matchers], "starts_at": starts_at.isoformat(),
                     "ends_at": ends_at.isoformat(), "comment": comment})
    return silence


async def expire_silence(conn: Conn, silence_id: int, actor: str, *,
                         now: datetime | None = None) -> Silence:
    """End a silence now (it stays listed with ``expired_by``); audited."""
    at = now or utcnow()
    async with conn.transaction(), conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(
            "UPDATE silences SET ends_at = LEAST(ends_at, GREATEST(starts_at + interval '1 ms',"
            " %s)), expired_by = %s, expired_at = %s WHERE id = %s RETURNING *",
            (at, actor, at, silence_id))
        row = await cur.fetchone()
        if row is None:
            raise AlertNotFoundError(f"no silence {silence_id}")
        await audit(conn, actor, "silence.expire", f"silence/{silence_id}", {})
    return _silence(row)


# -- audit ---------------------------------------------------------------------------------
async def audit(conn: Conn, actor: str, action: str, target: str,
                detail: Mapping[str, Any] | None = None) -> None:
    """Record who did what (call inside the action's transaction)."""
    await conn.execute("INSERT INTO audit_log (actor, action, target, detail)"
                       " VALUES (%s, %s, %s, %s)",
                       (actor, action, target, Jsonb(dict(detail or {}))))


async def list_audit(conn: Conn, *, target: str | None = None,
                     limit: int = 100) -> list[dict[str, Any]]:
    sql = "SELECT at, actor, action, target, detail FROM audit_log"
    params: list[Any] = []
    if target is not None:
        sql += " WHERE target = %s"
        params.append(target)
    async with conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(sql + " ORDER BY id DESC LIMIT %s", [*params, limit])
        return list(await cur.fetchall())


async def active_for_resend(conn: Conn) -> list[AlertState]:
    """Firing or acknowledged alerts with nothing left to deliver to Alertmanager."""
    async with conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(
            "SELECT a.* FROM alerts a WHERE a.state IN ('firing', 'acknowledged')"
            " AND NOT EXISTS (SELECT 1 FROM alert_outbox o WHERE o.fingerprint = a.fingerprint"
            " AND o.receiver = 'alertmanager' AND o.delivered_at IS NULL)")
        return [_state(r) for r in await cur.fetchall()]
