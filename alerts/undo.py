"""The evaluator's undo log: an evaluation changes memory before its transaction commits.

:meth:`alerts.evaluator.Evaluator.evaluate` returns a :class:`Plan`; every change it makes
to the evaluator's tables is first written here (the table, the key, the old value). If
the transaction that stores the plan's transitions commits, the plan is committed and the
log dropped; if not, the log is played backwards and memory is as before the evaluation,
so a retried batch evaluates against the same state as the failed attempt.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from alerts.model import AlertState, Transition

MISSING: Any = object()
"""The old value of a key that was absent (undo deletes it)."""


@dataclass(slots=True)
class Plan:
    """What one evaluation decided: store ``transitions``, then commit the plan."""

    transitions: list[Transition] = field(default_factory=list)
    wall_now: datetime | None = None
    evaluated_minutes: int = 0
    """Minute boundaries evaluated (rule x scope), for the evaluation-cost metrics."""
    scopes: int = 0
    """Scopes (rule x scope) looked at: all of them in a full evaluation."""
    cursors: dict[str, tuple[str, datetime]] = field(default_factory=dict)
    """Per fingerprint whose scope it moved: (rule id, minute boundary evaluated up to)."""
    undo: list[tuple[Any, Any, Any]] = field(default_factory=list)
    idle_taken: list[tuple[datetime, str]] = field(default_factory=list)
    restored: set[str] = field(default_factory=set)
    marks: dict[str, tuple[int, datetime | None]] = field(default_factory=dict)
    """Per active alert whose ``clear_since`` moved without a transition: (its seq, the
    new value). Stored with the transitions, since a kind that does not replay its
    input after a restart (KPI targets) would otherwise restart ``keep_firing_for``."""
    open: bool = True


class UndoLog:
    """Records changes into the open plan, and plays a plan's changes backwards."""

    def __init__(self) -> None:
        self.plan: Plan | None = None

    def record(self, table: Any, key: Any, old: Any) -> None:
        if self.plan is not None:
            self.plan.undo.append((table, key, old))

    def set(self, table: Any, key: Any, value: Any) -> None:
        """``table[key] = value`` (or delete, for :data:`MISSING`), undoably."""
        self.record(table, key, table.get(key, MISSING))
        if value is MISSING:
            table.pop(key, None)
        else:
            table[key] = value

    def touch(self, alerts: dict[str, AlertState], fp: str) -> AlertState:
        """The alert ``fp``, saved (a copy) before the caller mutates it."""
        a = alerts[fp]
        self.record(alerts, fp, replace(a, labels=dict(a.labels),
                                        annotations=dict(a.annotations)))
        return a

    def undo(self, special: Callable[[Any, Any, Any], bool]) -> Plan | None:
        """Undo the open plan (if any) and close it; ``special(table, key, old)`` restores
        an entry itself and returns True (tables with an index beside them)."""
        plan, self.plan = self.plan, None
        if plan is None:
            return None
        for table, key, old in reversed(plan.undo):
            if special(table, key, old):
                continue
            if old is MISSING:
                table.pop(key, None)
            else:
                table[key] = old
        plan.undo.clear()
        plan.open = False
        return plan

    def close(self, plan: Plan) -> None:
        """The plan's transitions are stored: its changes are final."""
        if plan is not self.plan or not plan.open:
            raise ValueError("commit of a plan that is not the evaluator's open plan")
        plan.undo.clear()
        plan.idle_taken.clear()
        plan.open = False
        self.plan = None


class AlertBook:
    """Alert states by fingerprint and the undo log of the plan that changes them: what
    every evaluator kind (partition, surge, KPI target) keeps, written once.

    A subclass whose tables carry an index beside them overrides :meth:`discard` (passing
    ``special`` to :meth:`UndoLog.undo`) or :meth:`commit` (pruning after the commit).
    """

    def __init__(self) -> None:
        self.alerts: dict[str, AlertState] = {}
        self._log = UndoLog()

    def restore(self, states: Iterable[AlertState]) -> None:
        """Replace the state of these alerts with persisted state (restart, conflict)."""
        for a in states:
            self.alerts[a.fingerprint] = a

    def active(self) -> list[AlertState]:
        """Alerts pending, firing or acknowledged."""
        return [a for a in self.alerts.values() if a.active]

    def discard(self) -> None:
        """Undo the uncommitted plan, if any (its transaction failed)."""
        self._log.undo(lambda table, key, old: False)

    def commit(self, plan: Plan) -> None:
        """The plan's transitions are stored: its state is final."""
        self._log.close(plan)
