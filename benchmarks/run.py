"""`make bench`: every benchmark in one go on this machine; figures printed, saved to
reports/bench.json and rendered into BENCHMARKS.md between its markers.

    python -m benchmarks.run [--quick]
"""

from __future__ import annotations

import argparse
import json
import platform
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from ioc.core.settings import ROOT, get_settings

TARGETS = {"end_to_end_events_per_s": 25_000, "p99_alert_s_at_5000": 1.0}


def machine() -> dict[str, Any]:
    cpu = next((ln.split(":", 1)[1].strip() for ln in
                Path("/proc/cpuinfo").read_text().splitlines() if ln.startswith("model name")),
               platform.processor())
    mem_kb = int(next(ln.split()[1] for ln in Path("/proc/meminfo").read_text().splitlines()
                      if ln.startswith("MemTotal")))
    return {"cpu": cpu, "cores": len(__import__("os").sched_getaffinity(0)),
            "memory_gb": round(mem_kb / 1024 / 1024, 1), "kernel": platform.release(),
            "python": platform.python_version(),
            "note": "Kafka, TimescaleDB and the workers on the same machine"}


def micro(module: str, call: str) -> dict[str, Any]:
    """Run a micro-benchmark in its own process (it may pin itself to one core)."""
    code = f"import json; from benchmarks.{module} import run; print(json.dumps({call}))"
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True,
                         text=True, check=True)
    return dict(json.loads(out.stdout.strip().splitlines()[-1]))


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true", help="smaller sizes, fewer steps")
    args = parser.parse_args()
    from benchmarks import pipeline as p

    settings = get_settings()
    n = 60_000 if args.quick else 600_000
    steps = [1000, 5000, 10000] if args.quick else [1000, 5000, 10000, 20000, 30000, 40000]
    results: dict[str, Any] = {"when": datetime.now(UTC).isoformat(timespec="seconds"),
                               "machine": machine(), "targets": TARGETS}
    tmp = Path(tempfile.mkdtemp(prefix="ioc-bench-"))
    started = time.monotonic()

    def step(name: str, fn: Any) -> None:
        print(f"== {name}", flush=True)
        results[name] = fn()
        print(f"   {json.dumps(results[name])}", flush=True)

    step("geo_join", lambda: micro("bench_geo", "run(points=300_000)"))
    step("validator", lambda: micro("bench_validate", "run(n_events=50_000)"))
    step("sink", lambda: p.sink_rate(settings, tmp / "sink"))
    step("raw_ceiling", lambda: p.ceiling(settings, tmp / "ceiling", n))
    step("pipeline_1_worker", lambda: p.drain(settings, tmp / "drain1", n, workers=1))
    step("pipeline_2_workers", lambda: p.drain(settings, tmp / "drain2", n, workers=2))
    step("rates", lambda: p.rates(settings, tmp / "rates", steps))
    if not args.quick:  # the peer: PyFlink set up on demand (benchmarks/flink/install.py)
        from benchmarks.flink import peer

        for par in (1, 2):
            step(f"flink_p{par}", lambda par=par: peer.run(settings, tmp / f"flink{par}",
                                                            n, parallelism=par))
    results["duration_s"] = round(time.monotonic() - started)
    out = ROOT / "reports" / "bench.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(results, indent=2))
    render(results, ROOT / "BENCHMARKS.md")
    print(f"wrote {out} and BENCHMARKS.md", flush=True)
    return 0


START, END = "<!-- bench:start -->", "<!-- bench:end -->"


def render(r: dict[str, Any], path: Path) -> None:
    m = r["machine"]
    one, two = r["pipeline_1_worker"], r["pipeline_2_workers"]
    at5k = next((s for s in r["rates"] if s["target_rate"] == 5000), None)
    kept = [s for s in r["rates"] if s["kept_up"]]
    lines = [
        START,
        f"Measured {r['when']} by `make bench` ({r['duration_s']} s) on: {m['cpu']}, "
        f"{m['cores']} cores, {m['memory_gb']} GB, Linux {m['kernel']}, Python {m['python']}; "
        f"{m['note']}.",
        "",
        "| measure | figure | target |",
        "|---|---|---|",
        f"| end to end, 1 worker, drain of {one['events']:,} preloaded events | "
        f"**{one['events_per_s']:,} events/s** (worker CPU {one['worker_cpu_share']} cores, "
        f"PostgreSQL {one.get('postgres_cpu_share')} cores, peak RSS "
        f"{one['worker_peak_rss_mb']} MB) | ≥ 25,000 |",
        f"| end to end, 2 workers (group settled, then {two['events']:,} events produced) | "
        f"{two['events_per_s']:,} events/s (workers {two['worker_cpu_share']} cores, "
        f"PostgreSQL {two.get('postgres_cpu_share')} cores, peak RSS "
        f"{two['worker_peak_rss_mb']} MB) | scales with cores |",
        f"| raw ceiling (bare aiokafka + orjson + COPY, same run) | "
        f"{r['raw_ceiling']['events_per_s']:,} events/s | — |",
        f"| highest fixed rate kept up (rising steps) | "
        f"{max((s['target_rate'] for s in kept), default=0):,} events/s | — |",
    ]
    if at5k:
        lines.append(f"| at 5,000 events/s: occurred_at → stored p50 / p99 | "
                     f"{at5k['p50_stored_s']} s / {at5k['p99_stored_s']} s | — |")
        lines.append(f"| at 5,000 events/s: occurred_at → alert p50 / p99 | "
                     f"{at5k['p50_alert_s']} s / {at5k['p99_alert_s']} s "
                     f"({at5k['alerts']} probe alerts) | p99 < 1 s |")
    g, v, s = r["geo_join"], r["validator"], r["sink"]
    lines += [
        f"| geo join, 3,321 communes, batched (one core) | "
        f"{round(g.get('batched_uncached_pps', 0)):,} points/s; cached "
        f"{round(g.get('batched_cached_pps', 0)):,}/s; one at a time "
        f"{round(g.get('one_at_a_time_pps', 0)):,}/s | ≥ 500,000 |",
        "| validator (one core) | " + ", ".join(
            f"{k} {round(v[k + '_events_per_s']):,}/s" for k in ("sensor", "traffic", "service")
            if k + "_events_per_s" in v)
        + " | — |",
        f"| TimescaleSink alone (COPY + idempotent insert + rollup, 10k-row batches) | "
        f"{s['rows_per_s']:,} rows/s | — |",
        "",
        "Rising rates (one worker):",
        "",
        "| target/s | achieved/s | stored p50 | stored p99 | alert p50 | alert p99 | kept up |",
        "|---|---|---|---|---|---|---|",
    ]
    for st in r["rates"]:
        lines.append(f"| {st['target_rate']:,} | {st['achieved_rate']:,} | {st['p50_stored_s']} s"
                     f" | {st['p99_stored_s']} s | {st['p50_alert_s']} s | {st['p99_alert_s']} s"
                     f" | {'yes' if st['kept_up'] else 'no'} |")
    lines.append(END)
    block = "\n".join(lines)
    text = path.read_text() if path.exists() else f"# Benchmarks\n\n{START}\n{END}\n"
    head, _, rest = text.partition(START)
    _, _, tail = rest.partition(END)
    path.write_text(head + block + tail)


if __name__ == "__main__":
    raise SystemExit(main())
