"""Evaluation cost per stage-2 batch at a given event rate (issue 12.7), in-process.

The real rules (``config/rules``, partition rules), the real evaluator, one-minute window
totals as the sink returns them and the sources' sightings, batch after batch as a
worker sees them (``stream.batch_within_s`` apart), plus the idle tick every 10 s. Only
the evaluator is timed (``evaluate`` + ``commit``): the database part of a batch is in the
pipeline benchmarks.

    python -c "from benchmarks.bench_evaluate import run; print(run())"
    python -c "from benchmarks.bench_evaluate import run; print(run(communes=3321))"

``changed_only=False`` times a full evaluation per batch (what stage 2 did before; with
the code before it, run it from a checkout of that commit).
"""

from __future__ import annotations

import random
import statistics
import time
from datetime import UTC, datetime, timedelta
from typing import Any

from alerts.evaluator import Evaluator
from alerts.model import WindowPoint
from alerts.ruleload import load_rules
from alerts.source_clocks import Sighting
from ioccore.settings import get_settings

_METRICS = (("pm25", 5.0, 120.0), ("water_level", 0.5, 4.0), ("noise", 40.0, 90.0))


def run(rate: int = 5000, seconds: int = 600, batch_s: float = 0.25, sources: int = 2000,
        communes: int = 126, seed: int = 5, changed_only: bool = True) -> dict[str, Any]:
    """p50/p99/max of the evaluator's time per batch at ``rate`` events/s (``communes``
    above Hanoi's 126 draws them from the whole country's 3,321)."""
    from benchmarks.workload import places

    settings = get_settings()
    rules = load_rules(sorted(settings.alerts.rules_dir.glob("*.yaml"))).partition_rules()
    codes = [c for c, _, _ in (places() if communes <= 126 else places(None))][:communes]
    rng = random.Random(seed)
    src = [(f"s{i}", codes[i % len(codes)], _METRICS[i % len(_METRICS)]) for i in range(sources)]
    ooo = timedelta(seconds=settings.alerts.out_of_orderness_s)
    ev = Evaluator(rules, {}, out_of_orderness=ooo)
    totals: dict[tuple[str, str, datetime], list[float]] = {}
    start = datetime(2026, 11, 23, tzinfo=UTC)
    per_batch = max(1, int(rate * batch_s))
    timings: list[float] = []
    ticks: list[float] = []
    minutes = 0
    scopes: list[int] = []
    n_batches = int(seconds / batch_s)
    next_tick = 10.0
    for b in range(n_batches):
        now = start + timedelta(seconds=b * batch_s)
        touched: set[tuple[str, str, datetime]] = set()
        newest: dict[str, tuple[str, datetime]] = {}
        for _ in range(per_batch):
            sid, commune, (metric, lo, hi) = src[rng.randrange(sources)]
            at = now - timedelta(seconds=rng.random() * 5)
            value = rng.uniform(lo, hi)
            key = (commune, metric, at.replace(second=0, microsecond=0))
            t = totals.setdefault(key, [0, 0.0, value, value, value])
            t[0] += 1
            t[1] += value
            t[2], t[3], t[4] = min(t[2], value), max(t[3], value), value
            touched.add(key)
            have = newest.get(sid)
            if have is None or at > have[1]:
                newest[sid] = (commune, at)
        windows = [WindowPoint(c, "01", m, minute, int(totals[(c, m, minute)][0]),
                               totals[(c, m, minute)][1], totals[(c, m, minute)][2],
                               totals[(c, m, minute)][3], totals[(c, m, minute)][4])
                   for c, m, minute in touched]
        seen = [Sighting(sid, "sensor", "env", c, "01", at, now) for sid, (c, at) in newest.items()]
        t0 = time.perf_counter()
        plan = (ev.evaluate(windows, seen, wall_now=now, changed_only=True) if changed_only
                else ev.evaluate(windows, seen, wall_now=now))
        ev.commit(plan)
        timings.append(time.perf_counter() - t0)
        minutes += plan.evaluated_minutes
        scopes.append(getattr(plan, "scopes", 0))
        if b * batch_s >= next_tick:
            next_tick += 10.0
            t0 = time.perf_counter()
            ev.commit(ev.evaluate(wall_now=now))
            ticks.append(time.perf_counter() - t0)
        for key in [k for k in totals if k[2] < now - timedelta(minutes=90)]:
            del totals[key]
    warm = timings[int(60 / batch_s):]  # after the first minute of event time
    q = statistics.quantiles(warm, n=100)
    return {"events_per_s": rate, "batch_s": batch_s, "events_per_batch": per_batch,
            "sources": sources, "communes": len(codes), "rules": len(list(rules)),
            "batches": len(warm), "evaluated_minutes": minutes, "changed_only": changed_only,
            "scopes_per_batch_p50": statistics.median(scopes[int(60 / batch_s):]),
            "eval_p50_ms": round(q[49] * 1000, 3), "eval_p99_ms": round(q[98] * 1000, 3),
            "eval_max_ms": round(max(warm) * 1000, 3),
            "tick_p50_ms": round(statistics.median(ticks) * 1000, 3),
            "tick_max_ms": round(max(ticks) * 1000, 3),
            "eval_share_of_batch_window": round(statistics.fmean(warm) / batch_s, 4)}
