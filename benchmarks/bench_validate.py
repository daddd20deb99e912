"""Validator throughput on valid batch messages (events per second, one core).

    .venv/bin/python benchmarks/bench_validate.py
"""

from __future__ import annotations

import json
import time
from datetime import datetime
from typing import Any

import msgspec
from iocdev.simulate.communes import all_commune_codes
from iocdev.simulate.generator import events

from ioccore.events.validate import Validator

START = datetime.fromisoformat("2025-12-01T00:00:00+07:00")


def _batches(feed: str, n_events: int, batch: int) -> list[bytes]:
    per_source: dict[str, list[bytes]] = {}
    out: list[bytes] = []
    count = 0
    for ev in events("01", START, 86400, 50, seed=1):
        if ev.feed != feed or not isinstance(ev.payload, dict):
            continue
        items = per_source.setdefault(ev.key, [])
        items.append(msgspec.json.encode(ev.payload))
        if len(items) == batch:
            out.append(b"[" + b",".join(items) + b"]")
            per_source[ev.key] = []
        count += 1
        if count >= n_events:
            break
    out.extend(b"[" + b",".join(v) + b"]" for v in per_source.values() if v)
    return out


def run(n_events: int = 100_000, batch: int = 500, repeat: int = 3) -> dict[str, Any]:
    """events/s per feed and for a mixed stream (best of ``repeat``)."""
    known = all_commune_codes()
    result: dict[str, Any] = {"batch": batch}
    for feed in ("sensor", "traffic", "service"):
        msgs = _batches(feed, n_events if feed != "service" else n_events // 2, batch)
        total = sum(m.count(b'"schema_version"') for m in msgs)
        best = 0.0
        for _ in range(repeat):
            v = Validator(max_message_bytes=1 << 24, max_future_skew_s=300,
                          known_commune=known)
            now = time.time()
            t0 = time.perf_counter()
            accepted = 0
            for m in msgs:
                accepted += len(v.validate(m, now=now, expected_feed=feed)[0])
            dt = time.perf_counter() - t0
            if accepted != total:
                raise RuntimeError(f"{feed}: {accepted} of {total} accepted")
            best = max(best, total / dt)
        result[f"{feed}_events_per_s"] = round(best)
    return result


if __name__ == "__main__":
    print(json.dumps(run(), indent=2))
