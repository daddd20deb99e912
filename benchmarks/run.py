"""`make bench`: every benchmark in one go on this machine; figures printed, saved to
reports/bench.json and rendered into BENCHMARKS.md between its markers.

    python -m benchmarks.run [--quick] [--only STEP,...]

``--only`` re-runs the named steps (e.g. ``gateway``) and keeps the other figures of the
last reports/bench.json, so one changed part can be measured again without the rest.
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

from ioccore.settings import ROOT, get_settings

TARGETS = {
    "peak_rss_mb_1m_backlog": 300, "p99_alert_s_at_5000": 0.5, "p99_alert_s_at_10000": 0.3,
    "two_workers_vs_one": 1.0, "two_workers_vs_one_one_event": 1.3,
    "one_event_vs_flink_p2": 1.5, "envelopes_vs_flink_p2": 2.0,
    "gateway_stored_vs_accepted": 1.0, "gateway_p99_s": 1.0,
}
"""The targets `make bench` prints beside its ratios: issue 28's (one-event 1.5x and
envelopes 2x Flink p=2, two workers 1.3x one on one-event messages, alert p99 0.3 s at
10,000 events/s, RSS 300 MB), and issue 18's that still stand. The ceiling ratios are
printed as figures: issue 28 retired their targets."""


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
    parser.add_argument("--quick", action="store_true",
                        help="smaller sizes, fewer steps, no Flink peer")
    parser.add_argument("--only", default="",
                        help="comma-separated steps to re-run; the rest are kept from "
                             "reports/bench.json")
    parser.add_argument("--skip", default="", help="comma-separated steps not to run")
    args = parser.parse_args()
    only = {x for x in args.only.split(",") if x}
    skip = {x for x in args.skip.split(",") if x}
    out = ROOT / "reports" / "bench.json"
    from benchmarks import pipeline as p

    settings = get_settings()
    n_env = 100_000 if args.quick else 1_000_000  # the memory target is on a 1M backlog
    n_one = 30_000 if args.quick else 300_000
    steps = [1000, 5000, 10000] if args.quick else [5000, 10000, 20000, 30000]
    results: dict[str, Any] = json.loads(out.read_text()) if only else {}
    results |= {"when": datetime.now(UTC).isoformat(timespec="seconds"),
                "machine": machine(), "targets": TARGETS, "quick": args.quick}
    if only:
        results.setdefault("rerun", []).append(
            {"steps": sorted(only), "when": results["when"]})
    tmp = Path(tempfile.mkdtemp(prefix="ioc-bench-"))
    started = time.monotonic()

    def step(name: str, fn: Any) -> None:
        if (only and name not in only) or name in skip:
            return
        print(f"== {name}", flush=True)
        results[name] = fn()
        print(f"   {json.dumps(results[name])}", flush=True)
        out.parent.mkdir(exist_ok=True)  # kept after every step: a later failure loses none
        out.write_text(json.dumps(results, indent=2))

    step("geo_join", lambda: micro("bench_geo", "run(points=300_000)"))
    step("validator", lambda: micro("bench_validate", "run(n_events=50_000)"))
    step("sink", lambda: p.sink_rate(settings, tmp / "sink"))
    step("raw_ceiling", lambda: p.ceiling(settings, tmp / "ceiling", n_env))
    # the same bare client on one-event messages: what any consumer of them can reach here
    step("raw_ceiling_one_event", lambda: p.ceiling(settings, tmp / "ceiling1", n_one,
                                                    one_event=True))
    step("envelopes_1_worker", lambda: p.drain(settings, tmp / "env1", n_env, workers=1))
    step("envelopes_2_workers", lambda: p.drain(settings, tmp / "env2", n_env, workers=2))
    step("one_event_1_worker", lambda: p.drain(settings, tmp / "one1", n_one, workers=1,
                                               one_event=True))
    step("one_event_2_workers", lambda: p.drain(settings, tmp / "one2", n_one, workers=2,
                                                one_event=True))
    # one worker as a process per stage (``ioc worker --stages``): each stage its own
    # interpreter, beside the one-process worker above
    per_stage = ("stage1", "stage2")
    step("envelopes_stage_processes", lambda: p.drain(settings, tmp / "envs", n_env,
                                                      stages=per_stage))
    step("one_event_stage_processes", lambda: p.drain(settings, tmp / "ones", n_one,
                                                      one_event=True, stages=per_stage))
    # the same drain with py-spy on the worker: its CPU by component (issue 28's budget);
    # a step of its own so the profiler's cost stays out of the rates above
    from benchmarks.profile import profiled_drain

    step("cpu_budget_one_event", lambda: profiled_drain(
        settings, tmp / "budget", n_one, one_event=True))
    step("rates", lambda: p.rates(settings, tmp / "rates", steps,
                                  seconds=30.0 if args.quick else 60.0))
    from benchmarks.bench_api import gateway

    step("gateway", lambda: gateway(settings, tmp / "gateway",
                                    seconds=30.0 if args.quick else 60.0, clients=20,
                                    batch_events=500))
    if not args.quick:  # the peer: PyFlink set up on demand (benchmarks/flink/install.py)
        from benchmarks.flink import peer

        for name, par, raw in (("flink_p1", 1, True), ("flink_p2", 2, True),
                               ("flink_p2_rollups_only", 2, False)):
            step(name, lambda par=par, raw=raw, name=name: peer.run(
                settings, tmp / name, n_one, parallelism=par, raw=raw))
    if not only:
        results["duration_s"] = round(time.monotonic() - started)
    results["ratios"] = ratios(results)
    from benchmarks.budget import budget
    from benchmarks.budget import render as budget_lines

    results["cpu_budget"] = budget(results, cores=results["machine"]["cores"])
    for line in budget_lines(results["cpu_budget"]):
        print(f"   {line}", flush=True)
    from benchmarks.scaleout import model

    results["scale_out"] = model(results)
    print("== ratios (targets in parentheses)")
    for key, value in results["ratios"].items():
        print(f"   {key}: {value} ({TARGETS.get(key, '-')})", flush=True)
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(results, indent=2))
    render(results, ROOT / "BENCHMARKS.md")
    print(f"wrote {out} and BENCHMARKS.md", flush=True)
    return 0


def ratios(r: dict[str, Any]) -> dict[str, float | None]:
    """Every target as a ratio measured in this run (None where a step did not run)."""
    def rate(name: str) -> float | None:
        step = r.get(name)
        return float(step["events_per_s"]) if step and step.get("events_per_s") else None

    def ratio(a: float | None, b: float | None) -> float | None:
        return round(a / b, 2) if a is not None and b else None

    ceiling = rate("raw_ceiling")
    flink = rate("flink_p2")
    at = {s["target_rate"]: s for s in r.get("rates", [])}
    return {
        "envelope_drain_vs_ceiling": ratio(rate("envelopes_1_worker"), ceiling),
        "one_event_vs_ceiling": ratio(rate("one_event_1_worker"), ceiling),
        "two_workers_vs_one": ratio(rate("envelopes_2_workers"), rate("envelopes_1_worker")),
        "two_workers_vs_one_one_event": ratio(rate("one_event_2_workers"),
                                              rate("one_event_1_worker")),
        "one_event_vs_flink_p2": ratio(rate("one_event_1_worker"), flink),
        "one_event_vs_flink_p1": ratio(rate("one_event_1_worker"), rate("flink_p1")),
        "one_event_2_workers_vs_flink_p2": ratio(rate("one_event_2_workers"), flink),
        "envelopes_vs_flink_p2": ratio(rate("envelopes_1_worker"), flink),
        "one_event_stage_processes_vs_flink_p2": ratio(rate("one_event_stage_processes"),
                                                       flink),
        "envelopes_stage_processes_vs_flink_p2": ratio(rate("envelopes_stage_processes"),
                                                       flink),
        "flink_p2_vs_ceiling": ratio(flink, ceiling),
        "one_event_ceiling_vs_ceiling": ratio(rate("raw_ceiling_one_event"), ceiling),
        "one_event_vs_one_event_ceiling": ratio(rate("one_event_1_worker"),
                                                rate("raw_ceiling_one_event")),
        "peak_rss_mb_1m_backlog": r["envelopes_1_worker"]["worker_peak_rss_mb"]
        if "envelopes_1_worker" in r else None,
        "p99_alert_s_at_5000": at[5000]["p99_alert_s"] if 5000 in at else None,
        "p99_alert_s_at_10000": at[10000]["p99_alert_s"] if 10000 in at else None,
        "gateway_stored_vs_accepted": ratio(
            (r.get("gateway") or {}).get("stored_per_s_during_load"),
            (r.get("gateway") or {}).get("accepted_per_s")),
        "gateway_p99_s": (r.get("gateway") or {}).get("p99_s"),
    }


START, END = "<!-- bench:start -->", "<!-- bench:end -->"


def _drain_row(label: str, d: dict[str, Any] | None, ceiling: float | None,
               target: str) -> str:
    if not d:
        return f"| {label} | not run | | {target} |"
    share = d.get("cpu_share") or {}
    vs = f"{d['events_per_s'] / ceiling:.2f}" if ceiling else "-"
    stages = d.get("stages") or []
    worker = f"{share.get('worker')}" + (" (" + ", ".join(
        f"{s} {share.get(f'worker_{s}')}" for s in stages) + ")" if stages else "")
    rss = (" + ".join(str(x) for x in d.get("peak_rss_mb_by_process", []))
           if stages else str(d["worker_peak_rss_mb"]))
    return (f"| {label} | **{d['events_per_s']:,} events/s** ({d['events']:,} events, "
            f"{d['seconds']} s; CPU worker {worker}, PostgreSQL "
            f"{share.get('postgres')}, Kafka {share.get('kafka')} cores; peak RSS "
            f"{rss} MB; start-up {d['startup_s']} s; rollups "
            f"{'exact' if d['exact'] else 'NOT EXACT'}) | {vs} | {target} |")


def _ceiling_one_event_row(c: dict[str, Any] | None, ceiling: float | None) -> str:
    if not c:
        return "| raw ceiling, one event per message | not run | | — |"
    vs = f"{c['events_per_s'] / ceiling:.2f}" if ceiling else "-"
    return (f"| raw ceiling, one event per message (the same bare client: the most any "
            f"consumer of one-event messages reaches here) | {c['events_per_s']:,} events/s "
            f"({c['events']:,} events) | {vs} | — |")


def _flink_row(label: str, f: dict[str, Any] | None, ceiling: float | None) -> str:
    if not f:
        return f"| {label} | not run (`--quick`) | | — |"
    cpu = f["cpu_s"]
    vs = f"{f['events_per_s'] / ceiling:.2f}" if ceiling else "-"
    secs = f.get("seconds") or f["ready_to_done_s"]
    return (f"| {label} | {f['events_per_s']:,} events/s ({f['events']:,} events, {secs} s; "
            f"ready → done {f['ready_to_done_s']} s; "
            f"CPU Flink {round(cpu['flink'] / f['ready_to_done_s'], 2)}, PostgreSQL "
            f"{round(cpu['postgres'] / f['ready_to_done_s'], 2)} cores; peak RSS "
            f"{f['peak_rss_mb']} MB; "
            f"start-up {f['startup_s']} s; rollups {'exact' if f['exact'] else 'NOT EXACT'})"
            f" | {vs} | — |")


def render(r: dict[str, Any], path: Path) -> None:
    m = r["machine"]
    ceiling = r["raw_ceiling"]["events_per_s"]
    q = r["ratios"]
    at5k = next((s for s in r["rates"] if s["target_rate"] == 5000), None)
    at10k = next((s for s in r["rates"] if s["target_rate"] == 10000), None)
    kept = [s for s in r["rates"] if s["kept_up"]]
    rerun = "".join(f"; {', '.join(x['steps'])} re-run {x['when']}" for x in r.get("rerun", []))
    lines = [
        START,
        f"Measured {r['when']} by `make bench{' --quick' if r.get('quick') else ''}` "
        f"({r.get('duration_s')} s{rerun}) on: {m['cpu']}, {m['cores']} cores, "
        f"{m['memory_gb']} GB, "
        f"Linux {m['kernel']}, Python {m['python']}; {m['note']}.",
        "",
        "Rates: events / (last durable row − first message read). CPU: cores busy over "
        "that interval.",
        "",
        "| measure | figure | vs ceiling | target |",
        "|---|---|---|---|",
        f"| raw ceiling (bare aiokafka + orjson + COPY, 100-event envelopes) | "
        f"{ceiling:,} events/s | 1.00 | — |",
        _ceiling_one_event_row(r.get("raw_ceiling_one_event"), ceiling),
        _drain_row("ioc, 1 worker, 100-event envelopes", r.get("envelopes_1_worker"),
                   ceiling, "≥ 2× Flink p=2; RSS ≤ 300 MB"),
        _drain_row("ioc, 2 workers, 100-event envelopes", r.get("envelopes_2_workers"),
                   ceiling, "≥ 1 worker"),
        _drain_row("ioc, 1 worker, one event per message", r.get("one_event_1_worker"),
                   ceiling, "≥ 1.5× Flink p=2"),
        _drain_row("ioc, 2 workers, one event per message", r.get("one_event_2_workers"),
                   ceiling, "≥ 1.3× 1 worker"),
        _drain_row("ioc, 1 worker as a process per stage (`--stages`), 100-event envelopes",
                   r.get("envelopes_stage_processes"), ceiling, "—"),
        _drain_row("ioc, 1 worker as a process per stage (`--stages`), one event per "
                   "message", r.get("one_event_stage_processes"), ceiling, "—"),
        _flink_row("Flink SQL p=1, raw + rollups, one event per message", r.get("flink_p1"),
                   ceiling),
        _flink_row("Flink SQL p=2, raw + rollups, one event per message", r.get("flink_p2"),
                   ceiling),
        _flink_row("Flink SQL p=2, rollups only, one event per message",
                   r.get("flink_p2_rollups_only"), ceiling),
        "",
        "| ratio | measured | target |",
        "|---|---|---|",
        f"| ioc one-event / Flink p=2 raw + rollups | {q.get('one_event_vs_flink_p2')} | ≥ 1.5 |",
        f"| ioc one-event, 2 workers / Flink p=2 (the same parallelism) | "
        f"{q.get('one_event_2_workers_vs_flink_p2')} | — |",
        f"| ioc envelopes / Flink p=2 raw + rollups | {q.get('envelopes_vs_flink_p2')} | ≥ 2 |",
        f"| ioc, a process per stage / Flink p=2 (one-event; envelopes) | "
        f"{q.get('one_event_stage_processes_vs_flink_p2')}; "
        f"{q.get('envelopes_stage_processes_vs_flink_p2')} | — |",
        f"| ioc one-event / bare client on one-event messages | "
        f"{q.get('one_event_vs_one_event_ceiling')} | — |",
        f"| bare client on one-event messages / raw ceiling | "
        f"{q.get('one_event_ceiling_vs_ceiling')} | (0.35 would be the one-event target) |",
        f"| ioc 2 workers / 1 worker (envelopes; one-event) | {q.get('two_workers_vs_one')}; "
        f"{q.get('two_workers_vs_one_one_event')} | ≥ 1; ≥ 1.3 |",
        "",
        "| measure | figure | target |",
        "|---|---|---|",
        f"| highest fixed rate kept up (rising steps, 1 worker) | "
        f"{max((s['target_rate'] for s in kept), default=0):,} events/s | — |",
    ]
    for label, st, target in (("5,000", at5k, "≤ 0.5 s"), ("10,000", at10k, "≤ 0.3 s")):
        if st:
            lines.append(f"| at {label} events/s: occurred_at → stored p50 / p99; deciding "
                         f"reading → alert p50 / p99 (breach → alert p50 / p99) | "
                         f"{st['p50_stored_s']} / {st['p99_stored_s']} s; "
                         f"**{st['p50_alert_s']} / {st['p99_alert_s']} s** "
                         f"({st.get('p50_alert_from_breach_s')} / "
                         f"{st.get('p99_alert_from_breach_s')} s; {st['alerts']} probe "
                         f"decisions) | alert p99 {target} |")
    gw = r.get("gateway")
    if gw:
        lines.append(
            f"| gateway + 1 worker, 20 clients × 500-event requests, {gw.get('seconds')} s | "
            f"accepted {gw.get('accepted_per_s'):,} ev/s, stored during the load "
            f"{gw.get('stored_per_s_during_load'):,} ev/s, backlog at the end "
            f"{gw.get('backlog_at_end_s')} s, caught up {gw.get('catch_up_s')} s later; "
            f"request p99 {gw.get('p99_s')} s, 5xx {gw.get('5xx')} | stored keeps up; "
            f"p99 < 1 s |")
    g, v, s = r["geo_join"], r["validator"], r["sink"]
    lines += [
        f"| geo join, 3,321 communes, batched (one core) | "
        f"{round(g.get('batched_uncached_pps', 0)):,} points/s; cached "
        f"{round(g.get('batched_cached_pps', 0)):,}/s; one at a time "
        f"{round(g.get('one_at_a_time_pps', 0)):,}/s | — |",
        "| validator (one core) | " + ", ".join(
            f"{k} {round(v[k + '_events_per_s']):,}/s" for k in ("sensor", "traffic", "service")
            if k + "_events_per_s" in v)
        + " | — |",
        f"| TimescaleSink alone (COPY + idempotent insert + rollup, 10k-row batches) | "
        f"{s['rows_per_s']:,} rows/s | — |",
        "",
        "CPU-seconds per 1,000 events (the scale-out model below starts from these):",
        "",
        "| run | worker(s) | PostgreSQL | Kafka |",
        "|---|---|---|---|",
    ]
    for key, label in (("envelopes_1_worker", "ioc, envelopes, 1 worker"),
                       ("envelopes_2_workers", "ioc, envelopes, 2 workers"),
                       ("one_event_1_worker", "ioc, one event per message, 1 worker"),
                       ("one_event_2_workers", "ioc, one event per message, 2 workers"),
                       ("envelopes_stage_processes", "ioc, envelopes, a process per stage"),
                       ("one_event_stage_processes",
                        "ioc, one event per message, a process per stage")):
        d = r.get(key)
        if d:
            c = d["cpu_s_per_1000_events"]
            lines.append(f"| {label} | {c['worker']} | {c['postgres']} | {c['kafka']} |")
    for key, label in (("flink_p1", "Flink p=1"), ("flink_p2", "Flink p=2")):
        f = r.get(key)
        if f:
            c = {k: round(1000 * v / f["events"], 3) for k, v in f["cpu_s"].items()}
            lines.append(f"| {label} | {c['flink']} (Flink) | {c['postgres']} | {c['kafka']} |")
    from benchmarks.scaleout import render as scale_out

    lines += scale_out(r)
    from benchmarks.budget import render as budget_lines

    lines += budget_lines(r.get("cpu_budget"))
    lines += [
        "",
        "Rising rates (one worker, 100-event envelopes):",
        "",
        "Alert latency is from the deciding reading (the first probe reading past the "
        "boundary + out-of-orderness) to the alert, and from the breaching reading "
        "(rest of its minute + 10 s + pipeline, by design).",
        "",
        "| target/s | achieved/s | stored p50 | stored p99 | alert p50 | alert p99 | "
        "breach → alert p99 | kept up |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for st in r["rates"]:
        lines.append(f"| {st['target_rate']:,} | {st['achieved_rate']:,} | {st['p50_stored_s']} s"
                     f" | {st['p99_stored_s']} s | {st['p50_alert_s']} s | {st['p99_alert_s']} s"
                     f" | {st.get('p99_alert_from_breach_s')} s"
                     f" | {'yes' if st['kept_up'] else 'no'} |")
    lines.append(END)
    block = "\n".join(lines)
    text = path.read_text() if path.exists() else f"# Benchmarks\n\n{START}\n{END}\n"
    head, _, rest = text.partition(START)
    _, _, tail = rest.partition(END)
    path.write_text(head + block + tail)


if __name__ == "__main__":
    raise SystemExit(main())
