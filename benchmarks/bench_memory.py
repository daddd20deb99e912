"""Worker memory: idle RSS after start-up, and RSS over a backlog drain (issue 18, target 3).

    python -m benchmarks.bench_memory idle
    python -m benchmarks.bench_memory drain --events 1000000 [--one-event]
    python -m benchmarks.bench_memory dedupe --keys 1000000

``idle`` starts a real ``ioc worker`` on an empty pipeline and reports its RSS once it
has joined its group (nothing to consume). ``drain`` runs the pipeline benchmark's drain
(:func:`benchmarks.pipeline.drain`) and samples the worker's VmRSS every 0.1 s beside it:
the peak (VmHWM), the RSS when the first message was read and the RSS at the end.
``dedupe`` is the duplicate store's own footprint for ``--keys`` keys (tracemalloc).
Each prints one JSON line with the load average; run it under the bench lock.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import threading
import time
import tracemalloc
from pathlib import Path
from typing import Any

from benchmarks.cpu import peak_rss_mb
from ioccore.settings import get_settings


def _status_mb(pid: int, field: str) -> float:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


class Sampler:
    """VmRSS of one process every ``every_s`` seconds, in a thread."""

    def __init__(self, every_s: float = 0.1) -> None:
        self.every_s = every_s
        self.samples: list[tuple[float, float]] = []
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.hwm = 0.0

    def start(self, pid: int) -> None:
        def run() -> None:
            t0 = time.monotonic()
            while not self._stop.is_set():
                rss = _status_mb(pid, "VmRSS")
                if rss:
                    self.samples.append((time.monotonic() - t0, rss))
                    self.hwm = max(self.hwm, peak_rss_mb(pid))
                time.sleep(self.every_s)

        self._thread = threading.Thread(target=run, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()


def _load() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


def idle(wait_s: float = 20.0) -> dict[str, Any]:
    from iocdev.sandbox import pipeline

    settings = get_settings()
    tmp = Path(tempfile.mkdtemp(prefix="ioc-mem-"))
    with pipeline(settings, tmp, partitions=6) as pipe:
        proc = pipe.start_worker()
        sampler = Sampler(0.2)
        sampler.start(proc.pid)
        time.sleep(wait_s)
        sampler.stop()
        rss = sampler.samples[-1][1] if sampler.samples else 0.0
        maps = Path(f"/proc/{proc.pid}/maps").read_text()
        libs = sorted({name for name in ("pandas", "geopandas", "pyarrow", "pyproj", "scipy")
                       if f"/{name}/" in maps})
        smaps = _smaps_rollup(proc.pid)
        pipe.stop_workers()
    return {"idle_rss_mb": round(rss), "hwm_mb": round(sampler.hwm), "after_s": wait_s,
            "heavy_libraries_mapped": libs, "smaps_mb": smaps, "load": _load()}


def _smaps_rollup(pid: int) -> dict[str, int]:
    """Anonymous (heap) versus file-backed (code) resident memory."""
    out: dict[str, int] = {}
    for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines()[1:]:
        name, _, rest = line.partition(":")
        if name in ("Rss", "Anonymous", "Private_Clean", "Shared_Clean"):
            out[name.lower()] = round(int(rest.split()[0]) / 1024)
    return out


def drain(n_events: int, one_event: bool) -> dict[str, Any]:
    from benchmarks import pipeline as p

    settings = get_settings()
    tmp = Path(tempfile.mkdtemp(prefix="ioc-mem-"))
    sampler = Sampler(0.1)
    load_before = _load()
    out = p.drain(settings, tmp, n_events, workers=1, one_event=one_event,
                  on_worker=sampler.start)
    sampler.stop()
    series = [r for _, r in sampler.samples]
    return {"events": n_events, "one_event": one_event,
            "events_per_s": out["events_per_s"], "seconds": out["seconds"],
            "startup_s": out["startup_s"], "exact": out["exact"],
            "peak_rss_mb": round(max(sampler.hwm, out["worker_peak_rss_mb"])),
            "rss_end_mb": round(series[-1]) if series else None,
            "cpu_share": out["cpu_share"],
            "bounds": {k: v for k, v in os.environ.items()
                       if k.startswith(("IOC__STREAM", "IOC_EXP"))},
            "load_before": load_before, "load_after": _load()}


class DictRing:
    """The former duplicate memory (a dict plus a ring of Python ints), for comparison."""

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self.seen: dict[int, None] = {}
        self.ring: list[int] = []
        self.pos = 0

    def add(self, source_id: str, event_id: str) -> bool:
        key = hash((source_id, event_id))
        if key in self.seen:
            return False
        self.seen[key] = None
        if len(self.ring) < self.capacity:
            self.ring.append(key)
        else:
            del self.seen[self.ring[self.pos]]
            self.ring[self.pos] = key
            self.pos = (self.pos + 1) % self.capacity
        return True


def dedupe(keys: int) -> dict[str, Any]:
    """Footprint (tracemalloc: Python and NumPy allocations) and ns per recorded key of
    the store at ``keys`` = capacity, beside the former dict and ring."""
    from ioccore.events.dedupe import SeenKeys

    ids = [(f"source-{i % 5000}", f"event-{i}") for i in range(keys)]
    out: dict[str, Any] = {"keys": keys, "load_before": _load()}
    for name, make in (("dict_ring", DictRing), ("seen_keys", SeenKeys)):
        tracemalloc.start()
        store = make(keys)
        add = store.add
        t0 = time.perf_counter()
        for source_id, event_id in ids:
            add(source_id, event_id)
        elapsed = time.perf_counter() - t0
        current, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        del store
        out[name] = {"mb": round(current / 1e6, 1), "peak_mb": round(peak / 1e6, 1),
                     "bytes_per_key": round(current / keys, 1),
                     "ns_per_key_traced": round(elapsed / keys * 1e9)}
        store2 = make(keys)  # speed without tracemalloc's overhead
        add = store2.add
        t0 = time.perf_counter()
        for source_id, event_id in ids:
            add(source_id, event_id)
        out[name]["ns_per_key"] = round((time.perf_counter() - t0) / keys * 1e9)
        del store2
    out["load_after"] = _load()
    return out


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.bench_memory")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("idle")
    d = sub.add_parser("drain")
    d.add_argument("--events", type=int, default=1_000_000)
    d.add_argument("--one-event", action="store_true")
    k = sub.add_parser("dedupe")
    k.add_argument("--keys", type=int, default=1_000_000)
    args = parser.parse_args()
    if args.command == "idle":
        result = idle()
    elif args.command == "drain":
        result = drain(args.events, args.one_event)
    else:
        result = dedupe(args.keys)
    print(json.dumps(result), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
