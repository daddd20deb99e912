"""Same-session A/B of the one-event drain: another tree's code against this tree's.

    python -m benchmarks.ab_drain --old /path/to/old/tree [--pairs 3] [--events 300000]
                                  [--profile] [--envelopes] [--out reports/ab_drain.json]
    python -m benchmarks.ab_drain --show reports/ab_drain.json   # its table again

``--new-stages``: the new side's worker as a process per stage (``ioc worker --stages``;
its CPU is both processes').

``--profile``: one py-spy profiled drain per side (``benchmarks.profile``), the worker's
CPU split by component and the event-loop thread's areas in the report.

The host's speed varies from day to day by up to 1.7x, so a figure taken on another day
cannot show a CPU saving; only runs of both codes in one session, alternating (old, new,
old, new, ...), on the same shared stack can. Both sides are measured by ONE harness, this
tree's ``benchmarks`` package (``pipeline.drain`` with its CPU meters, including the drain
database's own PostgreSQL backends, and ``profile.profiled_drain``): each run is a child
process of the side's own virtualenv, so its ``ioccore``/``streams``/``iocdev`` (the
worker, the migrations of its fresh database, its config) are that tree's, and only the
``benchmarks`` package comes from here, through a directory on ``PYTHONPATH`` holding
nothing but a link to it. The child reports which ``ioccore`` it imported, so a run
that picked up the wrong code shows it.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
FIGURES = ("events_per_s", "worker", "postgres_backends", "postgres", "kafka")
"""Per run: events/s, then CPU-s per 1,000 events of the worker, the drain database's
backends, every PostgreSQL process (shared with others' tests) and the Kafka broker."""


def run_one(events: int, tmp: Path, profile: bool, one_event: bool = True,
            stages: tuple[str, ...] = ()) -> dict[str, Any]:
    """One drain of ``events`` one-event messages (or 100-event envelopes) through one
    worker (in the child); ``stages``: a process per entry (``pipeline.drain``)."""
    import ioccore
    from ioccore.settings import get_settings

    settings = get_settings()
    load_before = os.getloadavg()
    if profile:
        from benchmarks.profile import profiled_drain, summarise

        result = profiled_drain(settings, tmp / "profile", events, one_event=one_event)
        if result["profiles"]:  # where the event-loop thread's samples went, by area
            main_thread = summarise(Path(result["profiles"][0]), top=15).get("main", {})
            result["areas_main_thread"] = main_thread.get("areas", [])
            result["exclusive_main_thread"] = main_thread.get("exclusive", [])
    else:
        from benchmarks.pipeline import drain

        result = drain(settings, tmp, events, workers=1, one_event=one_event, stages=stages)
    result["load_average"] = [round(x, 2) for x in (*load_before, *os.getloadavg())]
    result["ioccore"] = str(Path(ioccore.__file__).parent)
    return result


def spawn(tree: Path, shim: Path, events: int, profile: bool, one_event: bool,
          stages: tuple[str, ...] = ()) -> dict[str, Any]:
    """A child of ``tree``'s virtualenv running :func:`run_one`; its JSON result."""
    tmp = Path(tempfile.mkdtemp(prefix="ioc-ab-"))
    env = {**os.environ, "PYTHONPATH": str(shim)}
    argv = [str(tree / ".venv" / "bin" / "python"), "-m", "benchmarks.ab_drain", "--child",
            "--events", str(events), "--tmp", str(tmp), *(["--profile"] if profile else []),
            *([] if one_event else ["--envelopes"]),
            *(["--stages", ",".join(stages)] if stages else [])]
    done = subprocess.run(argv, cwd=shim, env=env, capture_output=True, text=True,
                          check=False)
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    if done.returncode != 0 or not lines:
        raise RuntimeError(f"{tree}: exit {done.returncode}\n{done.stderr[-3000:]}")
    result: dict[str, Any] = json.loads(lines[-1])
    if not result["ioccore"].startswith(str(tree)):
        raise RuntimeError(f"{tree}: the child imported {result['ioccore']}")
    return result


def figures(result: dict[str, Any]) -> dict[str, float]:
    """A run's figures; CPU per 1,000 events from its CPU seconds (4 decimals: the
    drain's own ``cpu_s_per_1000_events`` keeps 3, too coarse for a ratio)."""
    cpu, events = result["cpu_s"], result["events"]
    return {"events_per_s": float(result["events_per_s"]),
            **{k: round(1000 * float(cpu[k]) / events, 4) for k in FIGURES[1:]}}


def summary(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """Medians per side and the ratio new/old of each figure."""
    med = {side: {k: round(statistics.median(figures(r)[k] for r in runs
                                             if r["side"] == side), 4)
                  for k in FIGURES} for side in ("old", "new")}
    return {"median": med, "new_over_old": {
        k: round(med["new"][k] / med["old"][k], 3) if med["old"][k] else None
        for k in FIGURES}}


def table(runs: list[dict[str, Any]]) -> str:
    """The per-run table in Markdown (BENCHMARKS.md's layout)."""
    rows = ["| # | code | events/s | worker | PG drain backends | PG all | Kafka | "
            "load (before; after) | exact |", "|---|---|---|---|---|---|---|---|---|"]
    for i, r in enumerate(runs, 1):
        f, la = figures(r), r["load_average"]
        rows.append(f"| {i} | {r['side']} | {f['events_per_s']:,.0f} | {f['worker']:.4f} | "
                    f"{f['postgres_backends']:.4f} | {f['postgres']:.4f} | {f['kafka']:.4f} | "
                    f"{la[0]:.2f}; {la[3]:.2f} | {r['exact']} |")
    return "\n".join(rows)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--old", type=Path, help="the old tree (with its own .venv)")
    parser.add_argument("--new", type=Path, default=HERE.parent)
    parser.add_argument("--pairs", type=int, default=3)
    parser.add_argument("--events", type=int, default=300_000)
    parser.add_argument("--profile", action="store_true",
                        help="one py-spy profiled drain per side instead of the pairs")
    parser.add_argument("--out", type=Path, default=HERE.parent / "reports" / "ab_drain.json")
    parser.add_argument("--envelopes", action="store_true",
                        help="100-event envelopes instead of one event per message")
    parser.add_argument("--show", type=Path, help="print the table and summary of an "
                        "earlier report instead of running")
    parser.add_argument("--new-stages", action="store_true",
                        help="the new side's worker as a process per stage")
    parser.add_argument("--stages", default="", help=argparse.SUPPRESS)
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--tmp", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(run_one(args.events, args.tmp, args.profile,
                                 one_event=not args.envelopes,
                                 stages=tuple(x for x in args.stages.split(",") if x)),
                         default=str))
        return 0
    if args.show is not None:
        done = json.loads(args.show.read_text())
        print(table(done["runs"]))
        print(json.dumps(summary(done["runs"]), indent=2))
        return 0
    if args.old is None:
        parser.error("--old is required")
    shim = Path(tempfile.mkdtemp(prefix="ioc-ab-shim-"))
    (shim / "benchmarks").symlink_to(HERE)
    trees = {"old": args.old.resolve(), "new": args.new.resolve()}
    order = ["old", "new"] * (1 if args.profile else args.pairs)
    runs: list[dict[str, Any]] = []
    report: dict[str, Any] = {"when": datetime.now(UTC).isoformat(timespec="seconds"),
                              "trees": {k: str(v) for k, v in trees.items()},
                              "events": args.events, "profile": args.profile,
                              "one_event": not args.envelopes,
                              "new_stages": args.new_stages, "runs": runs}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    for side in order:
        stages = ("stage1", "stage2") if side == "new" and args.new_stages else ()
        result = spawn(trees[side], shim, args.events, args.profile,
                       one_event=not args.envelopes, stages=stages) | {"side": side}
        runs.append(result)
        print(f"{side}: {json.dumps(figures(result))} load {result['load_average']} "
              f"exact {result['exact']}", flush=True)
        args.out.write_text(json.dumps(report, indent=2, default=str))  # kept per run
    report["summary"] = summary(runs)
    args.out.write_text(json.dumps(report, indent=2, default=str))
    print(table(runs))
    print(json.dumps(report["summary"], indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
