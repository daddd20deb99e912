"""One evaluation step for every kind of rule: evaluate, persist, restore conflicts, then
(after the commit) metrics and publish.

:meth:`EvaluationStep.run` works inside the caller's transaction: stage 2 opens one per
batch (rows, rollups, transitions, alert and outbox rows commit together), the
global-rules timer one per tick. :meth:`EvaluationStep.committed` runs after that commit.

The evaluator's memory is a cache of the database. Evaluating advances it before the
commit, so when the transaction fails the caller calls :meth:`discard`: the evaluator is
replaced by an empty one, which is rebuilt from the committed state (active alerts,
rollup windows, sources) exactly as after a restart. A retried batch therefore evaluates
against the same state as the failed attempt and makes the same transitions.
"""

from __future__ import annotations

import time
import weakref
from collections import Counter
from collections.abc import Awaitable, Callable, Iterable, Sequence
from datetime import datetime
from typing import Any

from psycopg import AsyncConnection

from alerts import step
from alerts.evaluator import Evaluator, Plan
from alerts.model import Transition, WindowPoint
from alerts.notify import Receiver
from alerts.store import load_states, persist
from ioccore import metrics

Publish = Callable[[list[Transition]], Awaitable[None]]
"""Sends stored transitions to the alerts topic (awaits their delivery)."""

_STEPS: weakref.WeakSet[EvaluationStep] = weakref.WeakSet()


class EvaluationStep:
    """Evaluate -> persist -> restore conflicts (in a transaction) -> metrics -> publish."""

    def __init__(self, make_evaluator: Callable[[], Evaluator], *,
                 receivers: Sequence[Receiver], generator_url: str,
                 publish: Publish | None = None) -> None:
        self._make = make_evaluator
        self.evaluator = make_evaluator()
        self._receivers = receivers
        self._generator_url = generator_url
        self._publish = publish
        self._plan: Plan | None = None
        _STEPS.add(self)

    async def run(self, conn: AsyncConnection[Any], windows: Iterable[WindowPoint],
                  sightings: Iterable[step.Sighting], wall_now: datetime, *,
                  changed_only: bool = False) -> list[Transition]:
        """Evaluate and persist, inside the caller's open transaction; returns what was
        stored (pass it to :meth:`committed` once the transaction committed, which also
        commits the evaluator's plan). ``changed_only``: a batch's evaluation, of the
        scopes its input (or idleness) changed; a timer's is full."""
        started = time.perf_counter()
        plan = self._plan = step.evaluate(self.evaluator, windows, sightings, wall_now,
                                          changed_only=changed_only)
        metrics.EVALUATION_SECONDS.observe(time.perf_counter() - started)
        metrics.EVALUATION_MINUTES.inc(plan.evaluated_minutes)
        if not plan.transitions:
            return []
        result = await persist(conn, plan.transitions, receivers=self._receivers,
                               generator_url=self._generator_url)
        if result.conflicts:
            self.evaluator.restore(await load_states(conn,
                                                     fingerprints=sorted(result.conflicts)))
        return list(result.stored)

    def settle(self) -> None:
        """The transaction committed: make the evaluator's plan final. Call it before
        anything else may evaluate (the next evaluation would undo an open plan)."""
        plan, self._plan = self._plan, None
        if plan is not None:
            self.evaluator.commit(plan)

    def discard(self) -> None:
        """The transaction failed: drop the evaluator's state (the database has the truth)."""
        self._plan = None
        self.evaluator = self._make()

    async def committed(self, stored: list[Transition], newest_event: float | None) -> None:
        """After the commit: the evaluator's plan becomes final (if :meth:`settle` has not
        made it so already); count, observe latency, publish (awaits the delivery)."""
        self.settle()
        now = time.time()
        for t in stored:
            metrics.ALERT_TRANSITIONS.labels(t.to_state, t.severity).inc()
            if newest_event is not None:
                metrics.LATENCY_ALERT.observe(max(0.0, now - newest_event))
        update_active_gauge()
        if self._publish is not None and stored:
            await self._publish(stored)


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
