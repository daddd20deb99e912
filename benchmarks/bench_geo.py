"""Geo join throughput over all 3,321 communes (bundled reference), on one core.

    python benchmarks/bench_geo.py [--points 500000] [--batch 5000]

Points are drawn around commune centroids (a commune chosen uniformly, then a
Gaussian offset of 0.02° ≈ 2 km), so dense urban wards weigh as much as rural
communes and a realistic share of points lands near boundaries. Prints points/s for:

* ``batched_uncached``  — ``lookup`` on batches, no source ids (raster + STRtree path)
* ``batched_tree_only`` — the same with the raster accelerator off (plain STRtree)
* ``batched_cached``    — fixed sensors: every source id seen before with the same point
* ``one_at_a_time``     — ``lookup`` with a batch of one (what per-event code would cost)
"""

from __future__ import annotations

import argparse
import json
import os
import time
from collections.abc import Callable

import numpy as np

from geo.index import CommuneIndex, index_from_reference
from geo.reference import read_reference


def _rate(n: int, fn: Callable[[], object], repeat: int = 3) -> float:
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return n / best


def _batched(index: CommuneIndex, lat: np.ndarray, lon: np.ndarray, batch: int,
             ids: list[str] | None = None) -> None:
    for s in range(0, len(lat), batch):
        index.lookup(lat[s:s + batch], lon[s:s + batch],
                     None if ids is None else ids[s:s + batch])


def run(points: int = 500_000, batch: int = 5000, seed: int = 1) -> dict[str, float]:
    """Measure and return the figures (points/s, build seconds, hit shares)."""
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})  # one core
    start = time.perf_counter()
    index = index_from_reference()
    build_s = time.perf_counter() - start
    tree_only = index_from_reference(legacy=False)
    tree_only._grid = None
    communes = read_reference().communes
    rng = np.random.default_rng(seed)
    pick = rng.integers(0, len(communes), points)
    lat = communes["lat"].to_numpy()[pick] + rng.normal(0, 0.02, points)
    lon = communes["lon"].to_numpy()[pick] + rng.normal(0, 0.02, points)

    uncached = _rate(points, lambda: _batched(index, lat, lon, batch))
    tree = _rate(points, lambda: _batched(tree_only, lat, lon, batch))
    # Fixed sensors: 20,000 sources, each always at its own point.
    sensors = 20_000
    s_lat, s_lon = lat[:sensors], lon[:sensors]
    which = rng.integers(0, sensors, points)
    ids = [f"sensor-{i}" for i in which.tolist()]
    c_lat, c_lon = s_lat[which], s_lon[which]
    index.invalidate()
    _batched(index, s_lat, s_lon, batch, [f"sensor-{i}" for i in range(sensors)])
    index.take_counts()
    cached = _rate(points, lambda: _batched(index, c_lat, c_lon, batch, ids))
    counts = index.take_counts()
    single_n = min(points, 20_000)
    one = _rate(single_n, lambda: [index.lookup(lat[i:i + 1], lon[i:i + 1])
                                   for i in range(single_n)], repeat=1)
    index.take_counts()
    _, outcomes = index.lookup(lat, lon)
    grid_share = float(np.mean(index._grid.lookup(lat, lon) >= 0)) if index._grid else 0.0
    return {
        "communes": float(len(index)),
        "points": float(points),
        "batch": float(batch),
        "build_s": round(build_s, 3),
        "batched_uncached_pps": round(uncached),
        "batched_tree_only_pps": round(tree),
        "batched_cached_pps": round(cached),
        "one_at_a_time_pps": round(one),
        "cache_hit_share": round(counts["cache"] / max(1, sum(counts.values())), 4),
        "raster_hit_share": round(grid_share, 4),
        "contains_share": round(float(np.mean(outcomes == "contains")), 4),
        "nearest_share": round(float(np.mean(outcomes == "nearest")), 4),
        "unassigned_share": round(float(np.mean(outcomes == "unassigned")), 4),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--points", type=int, default=500_000)
    parser.add_argument("--batch", type=int, default=5000)
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args()
    result = run(args.points, args.batch)
    if args.json:
        print(json.dumps(result))
        return
    for key, value in result.items():
        label = f"{value:,.0f} points/s" if key.endswith("_pps") else f"{value:g}"
        print(f"{key:24s} {label}")


if __name__ == "__main__":
    main()
