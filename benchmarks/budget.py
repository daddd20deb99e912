"""Issue 28's CPU budget: CPU-s per 1,000 events by component, and the cores a rate needs.

A target rate is reachable on this machine only if the CPU that every process of the
pipeline spends per event, times the rate, fits in its cores. This module turns one
profiled drain (``benchmarks.profile.profiled_drain``: the worker's CPU split by
component from py-spy samples, the drain database's own PostgreSQL backends, the Kafka
broker) and the Flink peer's run (its JVM and Python, its own PostgreSQL backends, the
broker) into one table per system, and the cores each would need at 1.5x and 2x the
Flink p=2 rate of the same run: the measurement issue 28 asks for before a target is
called out of reach. ``make bench`` prints and renders it; alone:

    python -m benchmarks.budget [--events 300000] [--rate 27000 ...] [--no-flink]
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
from pathlib import Path
from typing import Any

TARGET_MULTIPLES = (1.5, 2.0)
"""Issue 28's targets against Flink SQL p=2: one-event 1.5x, envelopes 2x."""


def _per_1000(cpu_s: float, events: int) -> float:
    return round(1000 * cpu_s / events, 4) if events else 0.0


def ioc_split(drain: dict[str, Any]) -> dict[str, float]:
    """CPU-s per 1,000 events of a profiled drain, by component: the worker's components
    (their sum is the worker's measured CPU), then PostgreSQL (the drain database's own
    backends, and the rest of the shared server apart), the Kafka broker."""
    events = int(drain["events"])
    cpu = drain["cpu_s"]
    split = {f"worker: {name}": round(ms / 1000, 4)
             for name, ms in drain.get("components_ms_per_1000", {}).items()}
    split["worker (measured)"] = _per_1000(cpu["worker"], events)
    return split | _shared(cpu, events)


def flink_split(flink: dict[str, Any]) -> dict[str, float]:
    """The Flink peer's CPU-s per 1,000 events by process: its JVM (and the PyFlink
    driver), its own PostgreSQL backends, the rest of the server, the broker."""
    events = int(flink["events"])
    cpu = flink["cpu_s"]
    return {"Flink (JVM + PyFlink driver)": _per_1000(cpu["flink"], events)} | \
        _shared(cpu, events)


def _shared(cpu: dict[str, float], events: int) -> dict[str, float]:
    own = cpu.get("postgres_backends")
    out: dict[str, float] = {}
    if own is not None:
        out["PostgreSQL: this database's backends"] = _per_1000(own, events)
        out["PostgreSQL: rest of the server (WAL writer, checkpointer; shared)"] = \
            _per_1000(max(0.0, cpu["postgres"] - own), events)
    else:
        out["PostgreSQL: whole server (shared)"] = _per_1000(cpu["postgres"], events)
    out["Kafka broker (JVM)"] = _per_1000(cpu.get("kafka", 0.0), events)
    return out


def totals(split: dict[str, float]) -> dict[str, float]:
    """``own``: the worker (or Flink), this database's backends and the broker;
    ``all``: with the rest of the PostgreSQL server as well (an upper bound on a
    shared server)."""
    main = split.get("worker (measured)", split.get("Flink (JVM + PyFlink driver)", 0.0))
    kafka = split["Kafka broker (JVM)"]
    own_pg = split.get("PostgreSQL: this database's backends",
                       split.get("PostgreSQL: whole server (shared)", 0.0))
    rest = split.get("PostgreSQL: rest of the server (WAL writer, checkpointer; shared)",
                     0.0)
    return {"own": round(main + own_pg + kafka, 4),
            "all": round(main + own_pg + rest + kafka, 4)}


def cores_at(total_per_1000: float, rate: float) -> float:
    """Cores busy at ``rate`` events/s for a cost of ``total_per_1000`` CPU-s."""
    return round(total_per_1000 * rate / 1000, 2)


def budget(results: dict[str, Any], *, cores: int,
           rates: list[float] | None = None) -> dict[str, Any] | None:
    """The budget of a ``make bench`` run (None without a profiled drain): both splits,
    their totals, and the cores each total needs at the target rates (1.5x and 2x
    Flink p=2 of the same run, or ``rates``) beside the machine's ``cores``."""
    drain = results.get("cpu_budget_one_event")
    if not drain:
        return None
    flink = results.get("flink_p2")
    flink_rate = float(flink["events_per_s"]) if flink else None
    targets = {f"{m}x Flink p=2 ({round(m * flink_rate):,} events/s)": m * flink_rate
               for m in TARGET_MULTIPLES} if flink_rate else {}
    targets |= {f"{round(r):,} events/s": float(r) for r in rates or []}
    ioc = ioc_split(drain)
    out: dict[str, Any] = {
        "machine_cores": cores, "events": drain["events"],
        "drain_events_per_s": drain["events_per_s"],
        "stage2_transactions": drain.get("sink_transactions"),
        # what bounds the rate when the cores are not full: stage 2's serial transaction
        "sink_busy_share": drain.get("sink_busy_share"),
        "cores_busy": drain.get("cpu_share"),
        "ioc": ioc, "ioc_total": totals(ioc),
    }
    if flink:
        f = flink_split(flink)
        out |= {"flink_p2": f, "flink_p2_total": totals(f), "flink_p2_events_per_s":
                flink_rate}
    out["cores_needed"] = {
        label: {"ioc_own": cores_at(out["ioc_total"]["own"], rate),
                "ioc_all": cores_at(out["ioc_total"]["all"], rate)}
        for label, rate in targets.items()}
    return out


def _cores(share: dict[str, float | None]) -> str:
    names = {"worker": "worker", "postgres_backends": "its PostgreSQL backends",
             "postgres": "the whole PostgreSQL server", "kafka": "Kafka"}
    return ", ".join(f"{label} {share[key]}" for key, label in names.items() if key in share)


def render(b: dict[str, Any] | None) -> list[str]:
    """BENCHMARKS.md lines: the split side by side and the cores table."""
    if not b:
        return ["", "CPU budget by component: not run (step `cpu_budget_one_event`)."]
    ioc, flink = b["ioc"], b.get("flink_p2", {})
    peer = "Flink p=2 from its run above" if flink else "no Flink run"
    lines = ["", f"CPU budget, one event per message (issue 28): CPU-s per 1,000 events by "
             f"component, ioc from a py-spy-profiled drain of {b['events']:,} events "
             f"(1 worker, {b['drain_events_per_s']:,} events/s with the profiler attached, "
             f"{b.get('stage2_transactions')} stage-2 transactions, the sink busy "
             f"{b.get('sink_busy_share')} of the drain; cores busy: "
             f"{_cores(b.get('cores_busy') or {})}), {peer}:", "",
             "| component | ioc, 1 worker | Flink p=2 |", "|---|---|---|"]
    for name, value in ioc.items():
        lines.append(f"| {name} | {value} | {flink.get(name, '')} |")
    for name, value in flink.items():
        if name not in ioc:
            lines.append(f"| {name} | | {value} |")
    it, ft = b["ioc_total"], b.get("flink_p2_total", {})
    lines += [f"| **total: worker/Flink + own backends + broker** | **{it['own']}** | "
              f"{'**' + str(ft['own']) + '**' if ft else '—'} |",
              f"| total with the rest of the PostgreSQL server | {it['all']} | "
              f"{ft.get('all', '—')} |", "",
              f"Cores that total needs (the machine has {b['machine_cores']}):", "",
              "| rate | ioc, own processes | ioc, with the whole server |", "|---|---|---|"]
    for label, need in b["cores_needed"].items():
        lines.append(f"| {label} | {need['ioc_own']} | {need['ioc_all']} |")
    return lines


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=300_000)
    parser.add_argument("--rate", type=float, action="append", default=[],
                        help="a rate to size the cores for (events/s), besides Flink's")
    parser.add_argument("--no-flink", action="store_true", help="skip the Flink p=2 run")
    args = parser.parse_args()
    from benchmarks.profile import profiled_drain
    from ioccore.settings import get_settings

    settings = get_settings()
    tmp = Path(tempfile.mkdtemp(prefix="ioc-budget-"))
    results: dict[str, Any] = {"cpu_budget_one_event": profiled_drain(
        settings, tmp / "drain", args.events, one_event=True)}
    if not args.no_flink:
        from benchmarks.flink import peer

        results["flink_p2"] = peer.run(settings, tmp / "flink", args.events, parallelism=2)
    b = budget(results, cores=len(os.sched_getaffinity(0)), rates=args.rate)
    print(json.dumps(b))
    print("\n".join(render(b)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
