"""The pure half of one evaluation step: observations in, a plan out. No I/O.

Every caller evaluates the same way: stage 2 for partition rules (window totals the
rollup upsert returned, sources of the rows it stored), the global-rules timer (totals
and sources read from the database) and ``ioc rules test`` (series from a test file).
The other half, persisting what the plan holds and then committing it
(:meth:`alerts.evaluator.Evaluator.commit`), is ``streams.evaluation``.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from alerts.evaluator import Evaluator, Plan
from alerts.model import WindowPoint
from alerts.progress import Sighting, sightings

__all__ = ["Sighting", "evaluate", "sightings"]


def evaluate(evaluator: Evaluator, windows: Iterable[WindowPoint],
             seen: Iterable[Sighting], wall_now: datetime, *, changed_only: bool = False
             ) -> Plan:
    """Feed ``windows`` and ``seen`` and evaluate every minute their progress covers
    (``changed_only``: in the scopes they, or idleness, changed; same transitions).

    Store ``plan.transitions`` in the caller's transaction, then ``evaluator.commit(plan)``
    once it committed; if it did not, the next evaluation undoes the plan."""
    return evaluator.evaluate(windows, seen, wall_now=wall_now, changed_only=changed_only)
