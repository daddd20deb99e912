"""Property tests of the incident state machine: any order of operator actions, alert
transitions, clock steps and (repeated) timer rounds gives a legal history, and every
escalation timer fires at most once, only while its deadline is really missed."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from alerts.incidents.machine import (
    ACTIVE,
    CHAIN,
    Action,
    IllegalActionError,
    Incident,
    Sla,
    TimerKind,
    TimerPlan,
    decide,
    escalation_for,
    legal_history,
    open_incident,
)

T0 = datetime(2026, 12, 1, 8, 0, tzinfo=UTC)
SLA = Sla(ack=timedelta(minutes=15), resolve=timedelta(hours=4),
          escalate_every=timedelta(minutes=30))
WINDOW = timedelta(hours=1)
OPS = ("ack", "start", "resolve", "close", "reopen", "assign", "note", "severity",
       "alert_fire", "alert_resolve", "tick", "timers", "timers_twice")


@dataclass
class TimerRow:
    due: datetime
    fired: datetime | None = None
    cancelled: datetime | None = None


@dataclass
class Sim:
    """A pure model of what the store does with the machine's outcomes."""

    inc: Incident
    now: datetime
    timers: dict[tuple[int, TimerKind, int], TimerRow] = field(default_factory=dict)
    history: list[tuple[str, str]] = field(default_factory=list)
    events: list[tuple[int, int, str]] = field(default_factory=list)
    """(order, cycle, action) of applied actions."""
    escalations: list[tuple[int, int, str, int]] = field(default_factory=list)
    """(order, cycle, kind, level) of fired timers."""
    order: int = 0

    def next(self) -> int:
        self.order += 1
        return self.order

    def plan(self, plans: tuple[TimerPlan, ...]) -> None:
        for p in plans:
            self.timers.setdefault((p.cycle, p.kind, p.level), TimerRow(p.due_at))

    def act(self, action: Action) -> None:
        try:
            out = decide(self.inc, action, SLA)
        except IllegalActionError:
            return
        before = self.inc
        for key, t in self.timers.items():
            if key[0] == before.cycle and key[1] in out.cancel and t.fired is None \
                    and t.cancelled is None:
                t.cancelled = action.at
        self.inc = out.incident
        self.history.append((out.from_state, out.to_state))
        self.events.append((self.next(), out.incident.cycle, action.kind))
        self.plan(out.timers)

    def fire(self) -> None:
        for key in sorted(self.timers, key=lambda k: (self.timers[k].due, k)):
            t = self.timers[key]
            if t.fired is not None or t.cancelled is not None or t.due > self.now:
                continue
            cycle, kind, level = key
            esc = escalation_for(self.inc, kind, level, cycle, self.now, SLA)
            if esc is None:
                t.cancelled = self.now
                continue
            t.fired = self.now
            self.escalations.append((self.next(), cycle, kind, level))
            if esc.next_timer is not None:
                self.plan((esc.next_timer,))


def run(ops: list[tuple[str, int]]) -> Sim:
    inc, timers = open_incident(severity="warning", department="snnmt", assignee=None,
                                at=T0, sla=SLA)
    sim = Sim(inc, T0)
    sim.history.append(("open", "open"))
    sim.plan(timers)
    for op, n in ops:
        if op == "tick":
            sim.now += timedelta(minutes=n)
        elif op in ("timers", "timers_twice"):
            sim.fire()
            if op == "timers_twice":
                sim.fire()
        elif op == "alert_fire":
            ended = sim.inc.resolved_at or sim.inc.closed_at
            if sim.inc.state not in ACTIVE and ended is not None and sim.now - ended <= WINDOW:
                sim.act(Action("reopen", "system:intake", sim.now, note="fired again"))
        elif op == "alert_resolve":
            pass  # an alert resolving changes no incident state (the responder resolves)
        else:
            sim.act(Action(op, "op", sim.now, note="done" if n % 3 else None,  # type: ignore[arg-type]
                           department="so-y-te" if n % 2 else None, assignee=f"p{n}",
                           severity="critical" if n % 2 else "info"))
    return sim


steps = st.lists(st.tuples(st.sampled_from(OPS), st.integers(0, 90)), max_size=60)


@settings(max_examples=400, deadline=None)
@given(steps)
def test_any_order_gives_a_legal_history_and_timers_fire_once(ops: list[tuple[str, int]]) -> None:
    sim = run(ops)
    changes = [(a, b) for a, b in sim.history[1:] if a != b]
    assert legal_history(sim.history[1:])
    assert all(pair in {(a, b) for a, b in changes} for pair in changes)
    inc = sim.inc
    if inc.acknowledged_at and inc.resolved_at:
        assert inc.acknowledged_at <= inc.resolved_at
    if inc.state in ("resolved", "closed"):
        assert inc.resolved_at is not None and inc.acknowledged_at is not None
    if inc.state == "closed":
        assert inc.closed_at is not None
    keys = [(c, k, lvl) for _, c, k, lvl in sim.escalations]
    assert len(keys) == len(set(keys)), "a timer fired twice"
    for at, cycle, kind, level in sim.escalations:
        assert 1 <= level <= len(CHAIN)
        if level > 1:  # a level fires only after the level before it
            assert any(c == cycle and k == kind and lv == level - 1 and t <= at
                       for t, c, k, lv in sim.escalations)
        acted = [a for t, c, a in sim.events if c == cycle and t <= at]
        if kind == "ack":  # never after someone acknowledged, started or resolved
            assert not {"ack", "start", "resolve"} & set(acted), (at, acted)
        else:
            assert "resolve" not in acted


@settings(max_examples=200, deadline=None)
@given(steps)
def test_deadlines_follow_the_cycle(ops: list[tuple[str, int]]) -> None:
    sim = run(ops)
    inc = sim.inc
    assert inc.ack_due_at == inc.opened_at + SLA.ack
    assert inc.resolve_due_at == inc.opened_at + SLA.resolve
    assert inc.cycle == 1 + sum(1 for a, b in sim.history[1:] if b == "open" and a != "open")


def test_unacknowledged_incident_escalates_up_the_chain_once_each() -> None:
    sim = run([("tick", 16), ("timers_twice", 0), ("tick", 31), ("timers", 0),
               ("tick", 31), ("timers_twice", 0), ("tick", 90), ("timers", 0)])
    assert [(k, lvl) for _, _, k, lvl in sim.escalations] == [("ack", 1), ("ack", 2), ("ack", 3)]


def test_acknowledging_stops_the_ack_chain_but_not_the_resolve_deadline() -> None:
    sim = run([("tick", 16), ("timers", 0), ("ack", 0), ("tick", 60), ("timers", 0),
               ("tick", 200), ("timers", 0)])
    assert [(k, lvl) for _, _, k, lvl in sim.escalations] == [("ack", 1), ("resolve", 1)]


def test_reopen_starts_a_new_cycle_with_new_deadlines() -> None:
    sim = run([("resolve", 1), ("tick", 30), ("alert_fire", 0)])
    assert sim.inc.state == "open" and sim.inc.cycle == 2
    assert sim.inc.opened_at == T0 + timedelta(minutes=30)
    late = run([("resolve", 1), ("tick", 61), ("alert_fire", 0)])
    assert late.inc.state == "resolved"  # outside the window: the intake opens a new one


@pytest.mark.parametrize(("state", "kind"), [("closed", "ack"), ("resolved", "start"),
                                             ("open", "close"), ("in_progress", "ack")])
def test_illegal_actions_are_refused(state: str, kind: str) -> None:
    inc, _ = open_incident(severity="info", department="d", assignee=None, at=T0, sla=SLA)
    from dataclasses import replace

    with pytest.raises(IllegalActionError):
        decide(replace(inc, state=state), Action(kind, "op", T0, note="x"), SLA)  # type: ignore[arg-type]


def test_resolving_needs_a_note() -> None:
    inc, _ = open_incident(severity="info", department="d", assignee=None, at=T0, sla=SLA)
    with pytest.raises(IllegalActionError, match="note"):
        decide(inc, Action("resolve", "op", T0), SLA)
