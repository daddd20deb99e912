"""The one evaluation step every rule kind goes through: plan, commit or discard, publish.

- :meth:`EvaluationStep.plan` runs inside the caller's open transaction (stage 2 opens
  one per batch, the singleton runner one per kind and tick): the evaluator decides, the
  transitions are stored with their alert and outbox rows (:func:`alerts.store.persist`),
  and alerts whose stored state changed meanwhile (an operator acted) are reloaded.
- :meth:`EvaluationStep.commit`, once that transaction committed and before anything
  else may evaluate: the evaluator's plan becomes final; transitions are counted and the
  active-alerts gauge set. Called once per plan.
- :meth:`EvaluationStep.discard`, if it did not commit: the evaluator is replaced by an
  empty one, which the caller rebuilds from the committed state (active alerts, windows,
  sources) exactly as after a restart, so a retried batch evaluates against the same
  state as the failed attempt and makes the same transitions.
- :meth:`EvaluationStep.publish`, after the commit: the stored transitions go to the
  alerts topic (awaits their delivery).
"""

from __future__ import annotations

import time
import weakref
from collections import Counter
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Generic, Protocol, TypeVar

from psycopg import AsyncConnection

from alerts.model import AlertState, Transition
from alerts.notify import Receiver
from alerts.store import load_states, persist, save_marks
from alerts.undo import Plan
from ioccore import metrics

Publish = Callable[[list[Transition]], Awaitable[None]]
"""Sends stored transitions to the alerts topic (awaits their delivery)."""


class Evaluates(Protocol):
    """What the step needs of an evaluator (windowed rules and KPI targets alike)."""

    def active(self) -> list[AlertState]: ...
    def commit(self, plan: Plan) -> None: ...
    def restore(self, states: Iterable[AlertState]) -> None: ...


E = TypeVar("E", bound=Evaluates)


@dataclass(slots=True)
class Planned:
    """One evaluation, stored in the caller's transaction, not yet committed."""

    plan: Plan
    stored: list[Transition] = field(default_factory=list)
    """Transitions the store accepted (what is counted and published)."""
    newest_event: float | None = None
    """Newest event time of the input (epoch s), for the alert-latency histogram."""


_STEPS: weakref.WeakSet[EvaluationStep[Any]] = weakref.WeakSet()


class EvaluationStep(Generic[E]):
    """Plan (evaluate + persist, in a transaction) -> commit | discard -> publish."""

    def __init__(self, make_evaluator: Callable[[], E], *, receivers: Sequence[Receiver],
                 generator_url: str, publish: Publish | None = None) -> None:
        self._make = make_evaluator
        self.evaluator: E = make_evaluator()
        self._receivers = receivers
        self._generator_url = generator_url
        self._publish = publish
        _STEPS.add(self)

    async def plan(self, conn: AsyncConnection[Any], evaluate: Callable[[E], Plan], *,
                   newest_event: float | None = None) -> Planned:
        """``evaluate(evaluator)`` and store its transitions in the open transaction."""
        started = time.perf_counter()
        plan = evaluate(self.evaluator)
        metrics.EVALUATION_SECONDS.observe(time.perf_counter() - started)
        metrics.EVALUATION_MINUTES.inc(plan.evaluated_minutes)
        planned = Planned(plan, newest_event=newest_event)
        if plan.marks:
            await save_marks(conn, plan.marks)
        if not plan.transitions:
            return planned
        result = await persist(conn, plan.transitions, receivers=self._receivers,
                               generator_url=self._generator_url)
        if result.conflicts:
            self.evaluator.restore(await load_states(conn,
                                                     fingerprints=sorted(result.conflicts)))
        planned.stored = list(result.stored)
        return planned

    def commit(self, planned: Planned) -> None:
        """The transaction committed: the plan is final; count what was stored."""
        self.evaluator.commit(planned.plan)
        now = time.time()
        for t in planned.stored:
            metrics.ALERT_TRANSITIONS.labels(t.to_state, t.severity).inc()
            if planned.newest_event is not None:
                metrics.LATENCY_ALERT.observe(max(0.0, now - planned.newest_event))
        update_active_gauge()

    def discard(self) -> None:
        """The transaction failed: drop the evaluator's state (the database has the truth)."""
        self.evaluator = self._make()

    async def publish(self, planned: Planned) -> None:
        """After :meth:`commit`: send the stored transitions (awaits the delivery)."""
        if self._publish is not None and planned.stored:
            await self._publish(planned.stored)


def update_active_gauge() -> None:
    """``ioc_alerts_active``: alerts pending, firing or acknowledged in this process's
    evaluators, by state and severity (zeros kept so a resolved alert shows 0)."""
    counts: Counter[tuple[str, str]] = Counter()
    for s in list(_STEPS):
        for a in s.evaluator.active():
            counts[(a.state, a.severity)] += 1
    for state in ("pending", "firing", "acknowledged"):
        for severity in ("info", "warning", "critical"):
            metrics.ALERTS_ACTIVE.labels(state, severity).set(counts.get((state, severity), 0))
