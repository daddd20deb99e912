"""Drive a generator into a target, paced in wall time.

``rate`` is events per wall second and ``speedup`` simulated seconds per wall second,
so the generator runs at ``rate / speedup`` events per simulated second. The file
target (and ``pace=False``) writes as fast as it can; the content is the same.
"""

from __future__ import annotations

import re
import time
from datetime import datetime
from typing import Any

from ioccore.metrics import SIM_EVENTS_SENT
from iocdev.simulate.dossiers import OnlineRise
from iocdev.simulate.generator import events
from iocdev.simulate.targets import Target, encode

_SPAN = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)?\s*$")
_UNIT_S = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}


def parse_span(text: str) -> float:
    """``"90s"``, ``"15m"``, ``"2h"``, ``"1.5d"`` or bare seconds -> seconds."""
    m = _SPAN.match(text)
    if not m:
        raise ValueError(f"not a duration: {text!r} (use e.g. 90s, 15m, 2h, 1d)")
    return float(m.group(1)) * _UNIT_S[m.group(2) or "s"]


def run(target: Target, *, province: str, start: datetime, span_s: float, rate: float,
        speedup: float, seed: int, bad_share: float, pace: bool,
        online_rise: OnlineRise | None = None) -> dict[str, Any]:
    """Send every event of the simulation to ``target``; returns counts."""
    sim_rate = rate / speedup
    t_start = start.timestamp()
    wall0 = time.monotonic()
    counts: dict[str, Any] = {"sensor": 0, "traffic": 0, "service": 0, "bad": 0}
    for n, ev in enumerate(events(province, start, span_s, sim_rate, seed, bad_share,
                                      online_rise=online_rise), 1):
        if pace:
            due = wall0 + (ev.t - t_start) / speedup
            delay = due - time.monotonic()
            if delay > 0.002:
                target.poll()
                time.sleep(delay)
        target.send(ev.feed, ev.key, encode(ev.payload))
        counts[ev.feed] += 1
        counts["bad"] += not ev.truth.valid
        SIM_EVENTS_SENT.labels(ev.feed, "valid" if ev.truth.valid else "malformed").inc()
        if n % 1000 == 0:
            target.poll()
    counts["target"] = target.close()
    counts["wall_s"] = round(time.monotonic() - wall0, 3)
    return counts
