"""The pure half of one evaluation step: observations in, transitions out. No I/O.

Every caller evaluates the same way: stage 2 for partition rules (window totals the
rollup upsert returned, sources of the rows it stored), the global-rules timer (totals
and sources read from the database) and ``ioc rules test`` (series from a test file).
The other half, persisting and publishing what this returns, is ``streams.evaluation``;
``ioc rules test`` needs no store and calls this directly.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from alerts.evaluator import Evaluator
from alerts.model import Transition, WindowPoint


@dataclass(frozen=True, slots=True)
class Sighting:
    """A source was heard from at ``seen_at`` (wall clock, for absence rules)."""

    source_id: str
    feed: str
    department: str
    commune_code: str
    seen_at: datetime
    province_code: str | None = None


def evaluate(evaluator: Evaluator, windows: Iterable[WindowPoint],
             sightings: Iterable[Sighting], now: datetime,
             wall_now: datetime | None = None) -> list[Transition]:
    """Feed ``windows`` and ``sightings``, then evaluate at event time ``now``."""
    evaluator.observe(windows)
    for s in sightings:
        evaluator.observe_source(s.source_id, s.feed, s.department, s.commune_code,
                                 s.seen_at, province_code=s.province_code)
    return evaluator.evaluate(now, wall_now=wall_now)
