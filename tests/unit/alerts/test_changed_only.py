"""A batch evaluates only the scopes it changed; the idle tick evaluates everything.

Stage 2 passes ``changed_only`` for a batch (the communes in its windows and sightings,
and those whose clocks idleness moved); the timer's tick is a full evaluation. The two
must make the same transitions as evaluating every scope every time, evaluation by
evaluation: same state, same event time, same value, same backfill flag. The scenarios
here make idleness matter (a short idle grace, sources that stop, deliveries minutes
apart, the wall clock occasionally going back), which is where a changed-only evaluation
could miss a clock that moved without new data.
"""

from __future__ import annotations

import random
from datetime import timedelta
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from tests.unit.alerts.test_arrival_invariance import COMMON, Ev, Worker, scenarios


def _deliver(events: list[Ev], tmp: Path, seed: int, changed_only: bool) -> Worker:
    rng = random.Random(seed)
    w = Worker(tmp, changed_only=changed_only, idle_grace=timedelta(minutes=2))
    stopped = {f"aq-{rng.randrange(3)}": rng.randrange(len(events) + 1)}  # a source dies
    i = 0
    while i < len(events):
        n = rng.choice([1, 1, 2, 5, 20])
        batch = [e for k, e in enumerate(events[i:i + n], start=i)
                 if stopped.get(e.source_id, len(events)) > k]
        i += n
        newest = max(e.occurred_at for e in events[i - n:i])
        delay = timedelta(seconds=rng.choice([1, 5, 30, 90, 200, 700]))
        wall = newest + delay
        if rng.random() < 0.05 and w.wall is not None:
            wall = w.wall - timedelta(seconds=30)  # a wall clock stepped back
        if not batch:
            w.advance_to(wall)
            continue
        windows, stored = w.sink.write(batch)
        w.advance_to(wall)
        from alerts.source_clocks import sightings

        w._run(windows, sightings(stored, wall), wall)
    w.finish(w.wall or events[-1].occurred_at)
    return w


@settings(COMMON, max_examples=150)
@given(events=scenarios(), seed=st.integers(0, 10_000))
def test_changed_only_evaluation_makes_the_transitions_of_a_full_one(
        tmp_path: Path, events: list[Ev], seed: int) -> None:
    if not events:
        return
    full = _deliver(events, tmp_path, seed, changed_only=False)
    changed = _deliver(events, tmp_path, seed, changed_only=True)
    assert changed.plans == full.plans
    assert changed.sink.rollups() == full.sink.rollups()
