"""The benchmark's CPU meter on real processes: a child that exits still counts once."""

from __future__ import annotations

import os
import subprocess
import sys
import time

from benchmarks.cpu import CpuMeter, cpu_s, descendants

BURN = "import time\nt = time.process_time()\nwhile time.process_time() - t < {s}: pass\n"


def test_exited_child_counts_once_through_its_parent() -> None:
    parent = subprocess.Popen([sys.executable, "-c", (
        "import subprocess, sys, time\n"
        f"subprocess.run([sys.executable, '-c', {BURN.format(s=0.6)!r}])\n"
        "time.sleep(0.5)\n")])
    meter = CpuMeter(lambda: descendants([parent.pid]))
    meter.start()
    while parent.poll() is None:
        meter.sample()
        time.sleep(0.05)
    # the parent is gone too: its last sample holds the child's reaped time
    assert 0.5 <= meter.used <= 1.5, meter.used


def test_cpu_of_this_process_grows() -> None:
    before = cpu_s(os.getpid())
    t = time.process_time()
    while time.process_time() - t < 0.2:
        pass
    after = cpu_s(os.getpid())
    assert before is not None and after is not None and after - before >= 0.1


def test_sink_split_writes_the_drains_feed_mix() -> None:
    from benchmarks.bench_sink_cpu import mixed_records

    records = mixed_records(20_000)
    share = {f: sum(r.feed == f for r in records) / len(records)
             for f in ("sensor", "traffic", "service")}
    assert len(records) == 20_000
    assert len({(r.source_id, r.event_id) for r in records}) == 20_000  # all new identities
    assert 0.6 < share["sensor"] < 0.8 and 0.1 < share["traffic"] < 0.3, share
    assert 0.05 < share["service"] < 0.15, share
    assert all(r.status in ("received", "resolved") for r in records if r.feed == "service")
