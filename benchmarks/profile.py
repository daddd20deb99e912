"""Where a draining worker's time goes: py-spy on a real ``ioc worker`` during a drain.

    python -m benchmarks.profile [--events 300000] [--one-event] [--out reports/profile]

Runs the drain benchmark with py-spy sampling the worker (``--idle`` included, so time
spent waiting shows as waiting), writes the collapsed stacks (``*.txt``, for any flame
graph tool) and prints the functions with the most samples, inclusive and exclusive,
and a summary by area (faust/mode/aiokafka, validation, geo, sink, alerts, waiting).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import Any

from ioc.core.settings import ROOT, get_settings

AREAS = (  # first match wins, on the frame's file path or function
    ("waiting (event loop idle: select/epoll)", ("select (selectors.py", "_run_once (asyncio",
                                                 "poll (selectors.py")),
    ("validation", ("ioc/core/events/",)),
    ("geo", ("geo/",)),
    ("sink (psycopg, COPY, rollup SQL)", ("streams/sinks/", "psycopg/")),
    ("alerts", ("alerts/", "streams/alerting.py", "streams/global_alerts.py")),
    ("stage 1 / stage 2 code", ("streams/",)),
    ("Kafka client (aiokafka, kafka-python)", ("aiokafka/", "kafka/")),
    ("faust / mode (per-message stream machinery)", ("faust/", "mode/")),
)


def area(stack: list[str]) -> str:
    """The area of a sampled stack: its innermost frame that names one."""
    for frame in reversed(stack):
        for name, needles in AREAS:
            if any(n in frame for n in needles):
                return name
    return "other"


def summarise(collapsed: Path, top: int = 25) -> dict[str, Any]:
    inclusive: Counter[str] = Counter()
    exclusive: Counter[str] = Counter()
    areas: Counter[str] = Counter()
    total = 0
    for line in collapsed.read_text().splitlines():
        stack_text, _, count_text = line.rpartition(" ")
        if not stack_text:
            continue
        n = int(count_text)
        frames = stack_text.split(";")
        total += n
        exclusive[frames[-1]] += n
        for f in set(frames):
            inclusive[f] += n
        areas[area(frames)] += n

    def share(c: Counter[str]) -> list[tuple[str, float]]:
        return [(k, round(v / total, 3)) for k, v in c.most_common(top)]

    return {"samples": total, "areas": share(areas), "inclusive": share(inclusive),
            "exclusive": share(exclusive)}


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=300_000)
    parser.add_argument("--one-event", action="store_true")
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--out", type=Path, default=ROOT / "reports" / "profile")
    args = parser.parse_args()
    from benchmarks import pipeline as p

    args.out.mkdir(parents=True, exist_ok=True)
    kind = "one-event" if args.one_event else "envelopes"
    spies: list[tuple[subprocess.Popen[bytes], Path]] = []

    def attach(pid: int) -> None:
        out = args.out / f"{kind}-{pid}.txt"
        spies.append((subprocess.Popen(
            [str(Path(sys.executable).with_name("py-spy")), "record",
             "--pid", str(pid), "--rate", "100", "--idle", "--format", "raw",
             "--output", str(out), "--nonblocking"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL), out))

    result = p.drain(get_settings(), args.out / "tmp", args.events, workers=args.workers,
                     one_event=args.one_event, on_worker=attach)
    for spy, _ in spies:
        spy.wait(timeout=60)
    print(json.dumps(result))
    for _, out in spies:
        if out.exists():
            summary = summarise(out)
            (out.with_suffix(".json")).write_text(json.dumps(summary, indent=1))
            print(f"== {out.name}: {summary['samples']} samples")
            for name, share in summary["areas"]:
                print(f"   {share:6.1%}  {name}")
            print("   -- exclusive")
            for name, share in summary["exclusive"][:15]:
                print(f"   {share:6.1%}  {name}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
