"""Where a draining worker's time goes: py-spy on a real ``ioc worker`` during a drain.

    python -m benchmarks.profile [--events 300000] [--one-event] [--out reports/profile]

Runs the drain benchmark with py-spy sampling the worker (``--idle`` included, so time
spent waiting shows as waiting), writes the collapsed stacks (``*.txt``, for any flame
graph tool) and prints, per thread kind, the functions with the most samples, inclusive
and exclusive, and a summary by area (faust/mode/aiokafka, validation, geo, sink,
alerts, waiting), and the worker's measured CPU per 1,000 events split by pipeline
component (:func:`components`). The ``main`` thread runs the event loop with both stages; it is the
one that limits a worker (the others are faust's consumer thread and idle pools).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import Any

from ioccore.settings import ROOT, Settings, get_settings

AREAS = (  # first match wins, on the frame's file path or function
    ("waiting (event loop idle: select/epoll)", ("select (selectors.py", "_run_once (asyncio",
                                                 "poll (selectors.py")),
    ("waiting (idle thread pool)", ("_worker (concurrent/futures/thread.py",)),
    ("stage 1 reader (getmany, batching, commits)", ("streams/raw_reader.py",)),
    ("validation", ("ioccore/events/",)),
    ("geo", ("geo/",)),
    ("sink (psycopg, COPY, rollup SQL)", ("streams/sinks/", "psycopg/")),
    ("alerts", ("alerts/", "streams/alerting.py", "streams/global_rules.py",
                "streams/singleton_rules.py")),
    ("stage 1 / stage 2 code", ("streams/",)),
    ("Kafka client (aiokafka, kafka-python)", ("aiokafka/", "kafka/")),
    ("faust / mode (per-message stream machinery)", ("faust/", "mode/")),
)


COMPONENTS = (  # issue 28's split; innermost frame that names one wins, all threads
    ("idle", ("select (selectors.py", "_worker (concurrent/futures/thread.py")),
    ("stage-1 reader: fetch + unpack", ("streams/raw_reader.py", "aiokafka/consumer/",
                                        "aiokafka/record/", "kafka/record/")),
    ("Kafka sockets: reads and writes of both stages' connections", ("aiokafka/conn.py",)),
    ("validation", ("ioccore/events/validate.py", "ioccore/events/budget",
                    "Prepare._message", "Prepare.run")),
    ("geo join", ("Prepare._enrich", "geo/")),
    ("dedupe", ("Stage1._remember", "ioccore/events/dedupe.py")),
    ("stage-1 produce: encode + send", ("streams/outputs.py", "aiokafka/producer/",
                                        "encode_records")),
    ("stage-2 decode", ("Stage2._decode", "decode_records")),
    ("sink: rows, COPY, SQL round trips", ("streams/sinks/",)),
    ("alerts", ("alerts/", "streams/alerting.py", "streams/global_rules.py",
                "streams/singleton_rules.py", "streams/kpi_target_rules.py")),
    ("stage 2 transaction, commit waits", ("streams/stage2.py", "streams/retry.py")),
    ("web pages (/metrics, scraped every 0.5 s by the drain)", ("aiohttp/",
                                                                 "prometheus_client/")),
    ("imports (lazy, or start-up)", ("<frozen importlib",)),
    # not mode/worker.py: it is the outermost frame of the main thread, and the event
    # loop's own work under it is the next row's
    ("faust/mode (stage-2 consumer, agents, timers)",
     ("faust/", "mode/services", "mode/threads", "mode/utils", "mode/timers")),
)
"""Where worker CPU goes, by pipeline component (``components``); the psycopg and
aiokafka frames inside count for the component that called them, except the Kafka
connections' socket reads and writes (one row for both stages)."""

OTHER = "event loop and other (asyncio scheduling, callbacks)"


FETCH_THREAD = "consumer thread (faust's fetcher for stage 2)"


def component(stack: list[str]) -> str:
    """The component of a sampled stack (faust's consumer thread counted as one)."""
    if any("mode/threads.py" in f for f in stack[:8]) and \
            not any(n in stack[-1] for n in COMPONENTS[0][1]):
        return FETCH_THREAD
    for frame in reversed(stack):
        for name, needles in COMPONENTS:
            if any(n in frame for n in needles):
                return name
    return OTHER


def components(collapsed: Path, cpu_s: float, events: int) -> dict[str, float]:
    """Worker CPU in ms per 1,000 events by component: each component's share of the
    samples that were not idle (all threads), times the worker's measured CPU. py-spy
    samples wall time, so on a loaded machine a busy thread waiting for a core counts as
    busy: read the split as shares of the measured CPU."""
    counts: Counter[str] = Counter()
    for line in collapsed.read_text().splitlines():
        stack_text, _, count_text = line.rpartition(" ")
        if stack_text:
            counts[component(stack_text.split(";"))] += int(count_text)
    busy = sum(n for name, n in counts.items() if name != "idle") or 1
    return {name: round(1e6 * cpu_s * n / busy / events, 2)
            for name, n in counts.most_common() if name != "idle"}


def area(stack: list[str]) -> str:
    """The area of a sampled stack: its innermost frame that names one."""
    for frame in reversed(stack):
        for name, needles in AREAS:
            if any(n in frame for n in needles):
                return name
    return "other"


def thread_of(stack: list[str]) -> str:
    """``main`` for the worker's event-loop thread (started from the CLI module), else
    ``other`` (faust's consumer thread, thread pools)."""
    return "main" if stack and "_run_module_as_main" in stack[0] else "other"


def summarise(collapsed: Path, top: int = 25) -> dict[str, Any]:
    """Per thread kind: samples, areas, inclusive and exclusive shares."""
    per: dict[str, dict[str, Counter[str]]] = {}
    totals: Counter[str] = Counter()
    for line in collapsed.read_text().splitlines():
        stack_text, _, count_text = line.rpartition(" ")
        if not stack_text:
            continue
        n = int(count_text)
        frames = stack_text.split(";")
        kind = thread_of(frames)
        c = per.setdefault(kind, {"inclusive": Counter(), "exclusive": Counter(),
                                  "areas": Counter()})
        totals[kind] += n
        c["exclusive"][frames[-1]] += n
        for f in set(frames):
            c["inclusive"][f] += n
        c["areas"][area(frames)] += n

    def share(c: Counter[str], total: int) -> list[tuple[str, float]]:
        return [(k, round(v / total, 3)) for k, v in c.most_common(top)]

    return {kind: {"samples": totals[kind],
                   **{name: share(counter, totals[kind]) for name, counter in c.items()}}
            for kind, c in sorted(per.items())}


def profiled_drain(settings: Settings, out: Path, n_events: int, *, one_event: bool,
                   workers: int = 1, idle: bool = False) -> dict[str, Any]:
    """``benchmarks.pipeline.drain`` with py-spy sampling each worker (100 Hz, collapsed
    stacks in ``out``); the result gains the worker's CPU split by component
    (``components_ms_per_1000``, of the first worker) and ``profiles``.

    ``idle``: sample waiting threads too, from the worker's start (py-spy ``--idle``:
    shows where the event loop waits and what start-up costs). Off for the CPU split:
    sampling starts with the measured interval (the first message read), and only
    running threads count; with ``--idle`` a thread blocked on the GIL after a socket
    call (faust's consumer thread while the main thread works) counted as busy."""
    from benchmarks import pipeline as p

    spy_bin = Path(sys.executable).with_name("py-spy")
    if not spy_bin.exists():
        raise RuntimeError(f"{spy_bin} is missing: `make setup` installs py-spy")
    out.mkdir(parents=True, exist_ok=True)
    kind = "one-event" if one_event else "envelopes"
    spies: list[tuple[subprocess.Popen[bytes], Path]] = []

    def attach(pid: int) -> None:
        path = out / f"{kind}-{pid}.txt"
        spies.append((subprocess.Popen(
            [str(spy_bin), "record", "--pid", str(pid), "--rate", "100",
             *(["--idle"] if idle else []), "--format", "raw", "--output", str(path),
             "--nonblocking"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL), path))

    def attach_all(pids: list[int]) -> None:
        for pid in pids:
            attach(pid)

    # the CPU split covers what the CPU figure covers: from the first message read on
    result = p.drain(settings, out / "tmp", n_events, workers=workers,
                     one_event=one_event, on_worker=attach if idle else None,
                     on_first_read=None if idle else attach_all)
    for spy, _ in spies:
        spy.wait(timeout=60)
    found = [path for _, path in spies if path.exists()]
    result["profiles"] = [str(path) for path in found]
    if found:
        result["components_ms_per_1000"] = components(
            found[0], result["cpu_s"]["worker"] / len(spies), n_events // len(spies))
    return result


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=300_000)
    parser.add_argument("--one-event", action="store_true")
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--out", type=Path, default=ROOT / "reports" / "profile")
    parser.add_argument("--cpu-only", action="store_true",
                        help="sample running threads only (the CPU split; no waiting)")
    args = parser.parse_args()
    settings = get_settings()
    result = profiled_drain(settings, args.out, args.events, one_event=args.one_event,
                            workers=args.workers, idle=not args.cpu_only)
    print(json.dumps(result))
    for profile in result["profiles"]:
        out = Path(profile)
        split = components(out, result["cpu_s"]["worker"] / max(1, args.workers),
                           result["events"] // max(1, args.workers))
        print(f"== {out.name}: worker CPU, ms per 1,000 events, by component")
        for name, ms in split.items():
            print(f"   {ms:7.2f}  {name}")
        summary = summarise(out)
        (out.with_suffix(".json")).write_text(json.dumps(
            {**summary, "components_ms_per_1000": split}, indent=1))
        for kind, part in summary.items():
            print(f"== {out.name}, {kind} thread(s): {part['samples']} samples")
            for name, share in part["areas"]:
                print(f"   {share:6.1%}  {name}")
            print("   -- exclusive")
            for name, share in part["exclusive"][:15]:
                print(f"   {share:6.1%}  {name}")
    if (budget_split := result.get("components_ms_per_1000")) is not None:
        from benchmarks.budget import ioc_split, totals

        split_all = ioc_split(result)
        print("== CPU-s per 1,000 events by component (worker, PostgreSQL, Kafka)")
        for name, value in split_all.items():
            print(f"   {value:8.4f}  {name}")
        print(f"   totals {totals(split_all)}; worker components {len(budget_split)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
