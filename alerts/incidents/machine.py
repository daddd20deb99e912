"""The incident state machine: pure, so any order of actions can be checked.

``decide(incident, action)`` returns the next incident, the audit event and the timer
changes, or raises :class:`IllegalActionError`. States::

    open -> acknowledged -> in_progress -> resolved -> closed
      \\_______________/______________/^       |         |
       resolve from any active state           +-reopen--+--> open (next cycle)

Starting or resolving an incident nobody acknowledged acknowledges it at that moment
(the responder has seen it). Each opening is a *cycle* with its own SLA deadlines and
escalation timers; ``escalation_for`` says what a due timer does, given the incident
as it is when the timer fires.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Final, Literal

from alerts.model import Severity

State = Literal["open", "acknowledged", "in_progress", "resolved", "closed"]
STATES: Final[tuple[State, ...]] = ("open", "acknowledged", "in_progress", "resolved", "closed")
ACTIVE: Final[frozenset[str]] = frozenset({"open", "acknowledged", "in_progress"})
ActionKind = Literal["ack", "start", "resolve", "close", "reopen", "assign", "note",
                     "severity"]
TimerKind = Literal["ack", "resolve"]
TargetRole = Literal["duty_officer", "head", "ioc_leader"]
CHAIN: Final[tuple[TargetRole, ...]] = ("duty_officer", "head", "ioc_leader")
"""Escalation level n (1-based) goes to CHAIN[n - 1]."""

LEGAL: Final[frozenset[tuple[str, str]]] = frozenset({
    ("open", "acknowledged"), ("open", "in_progress"), ("acknowledged", "in_progress"),
    ("open", "resolved"), ("acknowledged", "resolved"), ("in_progress", "resolved"),
    ("resolved", "closed"), ("resolved", "open"), ("closed", "open"),
})
"""Every state change a history may contain."""


class IllegalActionError(ValueError):
    """The action does not apply to the incident in its current state (HTTP 409)."""


@dataclass(frozen=True, slots=True)
class Sla:
    """Deadlines of one severity: acknowledge within ``ack``, resolve within ``resolve``;
    each further escalation level ``escalate_every`` after the previous one."""

    ack: timedelta
    resolve: timedelta
    escalate_every: timedelta


@dataclass(frozen=True, slots=True)
class Incident:
    """The part of an incident the state machine reads and writes."""

    state: State
    cycle: int
    severity: Severity
    department: str
    assignee: str | None
    opened_at: datetime
    ack_due_at: datetime
    resolve_due_at: datetime
    acknowledged_at: datetime | None = None
    resolved_at: datetime | None = None
    closed_at: datetime | None = None
    merged_into: int | None = None


@dataclass(frozen=True, slots=True)
class Action:
    kind: ActionKind
    actor: str
    at: datetime
    note: str | None = None
    department: str | None = None
    assignee: str | None = None
    severity: Severity | None = None


@dataclass(frozen=True, slots=True)
class TimerPlan:
    kind: TimerKind
    level: int
    cycle: int
    due_at: datetime


@dataclass(frozen=True, slots=True)
class Outcome:
    incident: Incident
    from_state: State
    to_state: State
    timers: tuple[TimerPlan, ...] = ()
    cancel: tuple[TimerKind, ...] = ()
    """Kinds of the current cycle's pending timers to cancel."""
    new_cycle: bool = False


def open_incident(*, severity: Severity, department: str, assignee: str | None,
                  at: datetime, sla: Sla) -> tuple[Incident, tuple[TimerPlan, ...]]:
    """A new incident (cycle 1) and its first timers."""
    inc = Incident(state="open", cycle=1, severity=severity, department=department,
                   assignee=assignee, opened_at=at, ack_due_at=at + sla.ack,
                   resolve_due_at=at + sla.resolve)
    return inc, first_timers(inc)


def first_timers(inc: Incident) -> tuple[TimerPlan, ...]:
    return (TimerPlan("ack", 1, inc.cycle, inc.ack_due_at),
            TimerPlan("resolve", 1, inc.cycle, inc.resolve_due_at))


def decide(inc: Incident, action: Action, sla: Sla) -> Outcome:
    """Apply ``action``; ``sla`` is the SLA of the incident's severity after the action."""
    if inc.merged_into is not None:
        raise IllegalActionError(f"the incident was merged into #{inc.merged_into}")
    k, at, state = action.kind, action.at, inc.state
    if k == "ack":
        if state != "open":
            raise IllegalActionError(f"only an open incident can be acknowledged (it is {state})")
        return Outcome(replace(inc, state="acknowledged", acknowledged_at=at), state,
                       "acknowledged", cancel=("ack",))
    if k == "start":
        if state not in ("open", "acknowledged"):
            raise IllegalActionError(
                f"work starts on an open or acknowledged incident (it is {state})")
        return Outcome(replace(inc, state="in_progress",
                               acknowledged_at=inc.acknowledged_at or at), state,
                       "in_progress", cancel=("ack",))
    if k == "resolve":
        if state not in ACTIVE:
            raise IllegalActionError(f"the incident is already {state}")
        if not (action.note or "").strip():
            raise IllegalActionError("resolving needs a note saying what was done")
        return Outcome(replace(inc, state="resolved", resolved_at=at,
                               acknowledged_at=inc.acknowledged_at or at), state, "resolved",
                       cancel=("ack", "resolve"))
    if k == "close":
        if state != "resolved":
            raise IllegalActionError(f"only a resolved incident can be closed (it is {state})")
        return Outcome(replace(inc, state="closed", closed_at=at), state, "closed")
    if k == "reopen":
        if state not in ("resolved", "closed"):
            raise IllegalActionError(f"only a resolved or closed incident reopens (it is {state})")
        nxt = replace(inc, state="open", cycle=inc.cycle + 1, opened_at=at,
                      acknowledged_at=None, resolved_at=None, closed_at=None,
                      ack_due_at=at + sla.ack, resolve_due_at=at + sla.resolve)
        return Outcome(nxt, state, "open", timers=first_timers(nxt), new_cycle=True)
    if state == "closed":
        raise IllegalActionError("a closed incident changes only by reopening")
    if k == "assign":
        if action.department is None and action.assignee is None:
            raise IllegalActionError("assign needs a department or an assignee")
        return Outcome(replace(inc, department=action.department or inc.department,
                               assignee=action.assignee if action.assignee is not None
                               else inc.assignee), state, state)
    if k == "severity":
        if action.severity is None:
            raise IllegalActionError("severity needs a value")
        return Outcome(replace(inc, severity=action.severity), state, state)
    if k == "note":
        if not (action.note or "").strip():
            raise IllegalActionError("a note needs text")
        return Outcome(inc, state, state)
    raise IllegalActionError(f"unknown action {k!r}")


@dataclass(frozen=True, slots=True)
class Escalation:
    kind: TimerKind
    level: int
    target_role: TargetRole
    next_timer: TimerPlan | None


def escalation_for(inc: Incident, kind: TimerKind, level: int, cycle: int, at: datetime,
                   sla: Sla) -> Escalation | None:
    """What a due timer does now: an escalation, or ``None`` when it no longer applies
    (another cycle, acknowledged in time for an ``ack`` timer, no longer active)."""
    if cycle != inc.cycle or inc.merged_into is not None:
        return None
    if kind == "ack" and inc.state != "open":
        return None
    if kind == "resolve" and inc.state not in ACTIVE:
        return None
    nxt = (TimerPlan(kind, level + 1, cycle, at + sla.escalate_every)
           if level < len(CHAIN) else None)
    return Escalation(kind, level, CHAIN[level - 1], nxt)


def legal_history(states: list[tuple[str, str]]) -> bool:
    """True when every (from, to) change is legal and each starts where the last ended."""
    for i, (a, b) in enumerate(states):
        if a != b and (a, b) not in LEGAL:
            return False
        if i and states[i - 1][1] != a:
            return False
    return True
