"""The alert state machine: pure functions over :class:`alerts.model.AlertState`.

    inactive ──cond──▶ pending ──cond for `for`──▶ firing ──ack──▶ acknowledged
        ▲                 │                       │  ▲                  │
        └──── !cond ──────┘      !cond for keep_firing_for / by hand    │
                                                  ▼                     ▼
                                               resolved ◀───────────────┘
    resolved ──cond──▶ pending (a new episode; `for` 0 goes straight to firing)

While firing (not acknowledged) two reminders are transitions firing→firing too:
``renotify`` every ``renotify_every`` and, once per episode, ``escalate``.
Each function mutates the state, bumps ``seq`` and returns the transition.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from alerts.errors import InvalidTransitionError
from alerts.model import SYSTEM, AlertState, Kind, Severity, State, Transition


@dataclass(frozen=True, slots=True)
class Timing:
    """The durations that drive one alert's lifecycle."""

    for_: timedelta
    keep_firing_for: timedelta
    renotify_every: timedelta | None
    escalate_after: timedelta | None
    escalate_severity: Severity | None = None
    escalate_receiver: str | None = None


def transition(a: AlertState, to: State, at: datetime, *, kind: Kind = "state",
               actor: str = SYSTEM, note: str | None = None,
               receiver: str | None = None,
               replaces: dict[str, str] | None = None, backfilled: bool = False) -> Transition:
    """Move ``a`` to ``to`` and return the numbered transition."""
    since = a.firing_at
    if to == "firing" and kind == "state":
        since = at
    t = Transition(
        fingerprint=a.fingerprint, seq=a.seq + 1, rule_id=a.rule_id, kind=kind,
        from_state=a.state, to_state=to, at=at, severity=a.severity, labels=dict(a.labels),
        annotations=dict(a.annotations), value=a.last_value, actor=actor, note=note,
        receiver=receiver, since=since, replaces=replaces, backfilled=backfilled,
    )
    a.seq += 1
    a.state = to
    a.updated_at = at
    if to == "pending":
        a.started_at = at
        a.firing_at = None
        a.clear_since = None
        a.escalated = False
        a.acknowledged_by = a.acknowledged_at = None
        a.resolved_at = None
    elif to == "firing" and kind == "state":
        a.firing_at = at
        a.last_notified_at = at
        if a.started_at is None or t.from_state in ("inactive", "resolved"):
            a.started_at = at
            a.escalated = False
            a.acknowledged_by = a.acknowledged_at = None
            a.resolved_at = None
        a.clear_since = None
    elif kind in ("renotify", "escalate"):
        a.last_notified_at = at
    elif to == "acknowledged":
        a.acknowledged_by = actor
        a.acknowledged_at = at
    elif to == "resolved":
        a.resolved_at = at
        a.clear_since = None
    return t


def step(a: AlertState, cond: bool, now: datetime, timing: Timing,
         base_severity: Severity) -> list[Transition]:
    """Advance one alert given whether its (hysteresis-adjusted) condition holds now."""
    out: list[Transition] = []
    if a.state in ("inactive", "resolved"):
        if cond:
            a.severity = base_severity
            a.labels["severity"] = base_severity
            a.labels.pop("escalated", None)
            a.labels.pop("receiver", None)
            if timing.for_ <= timedelta(0):
                out.append(transition(a, "firing", now))
            else:
                out.append(transition(a, "pending", now))
        return out
    if a.state == "pending":
        if not cond:
            out.append(transition(a, "inactive", now))
        elif a.started_at is not None and now - a.started_at >= timing.for_:
            out.append(transition(a, "firing", now))
        return out
    # firing or acknowledged
    if cond:
        a.clear_since = None
    else:
        if a.clear_since is None:
            a.clear_since = now
        if now - a.clear_since >= timing.keep_firing_for:
            out.append(transition(a, "resolved", now))
            return out
    if a.state == "firing":
        out.extend(_reminders(a, now, timing))
    return out


def _reminders(a: AlertState, now: datetime, timing: Timing) -> list[Transition]:
    out: list[Transition] = []
    if (not a.escalated and timing.escalate_after is not None and a.firing_at is not None
            and now - a.firing_at >= timing.escalate_after
            and (timing.escalate_severity or timing.escalate_receiver)):
        a.escalated = True
        before = dict(a.labels)
        if timing.escalate_severity:
            a.severity = timing.escalate_severity
            a.labels["severity"] = timing.escalate_severity
        a.labels["escalated"] = "true"
        if timing.escalate_receiver:
            a.labels["receiver"] = timing.escalate_receiver
        out.append(transition(a, "firing", now, kind="escalate",
                              receiver=timing.escalate_receiver, replaces=before,
                              note=f"unacknowledged for {timing.escalate_after}"))
        return out
    if (timing.renotify_every is not None and a.last_notified_at is not None
            and now - a.last_notified_at >= timing.renotify_every):
        out.append(transition(a, "firing", now, kind="renotify"))
    return out


def acknowledge(a: AlertState, actor: str, note: str | None, at: datetime) -> Transition:
    """An operator takes a firing alert in hand (stops reminders and escalation)."""
    if a.state != "firing":
        raise InvalidTransitionError(a.fingerprint, a.state, "acknowledge")
    return transition(a, "acknowledged", at, actor=actor, note=note)


def resolve_by_hand(a: AlertState, actor: str, note: str | None, at: datetime) -> Transition:
    """An operator closes a pending, firing or acknowledged alert.

    If the condition still holds at the next evaluation a new episode starts (pending,
    then firing after ``for``); a silence is the tool for a known, ongoing condition.
    """
    if a.state not in ("pending", "firing", "acknowledged"):
        raise InvalidTransitionError(a.fingerprint, a.state, "resolve")
    return transition(a, "resolved", at, actor=actor, note=note)
