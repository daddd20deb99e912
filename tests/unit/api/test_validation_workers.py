"""Validation worker processes die with the API process, however it dies (a SIGKILLed
API used to leave its spawned workers running with parent 1)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

SCRIPT = """
import asyncio, os, sys
from ioc.api import validation
pool = validation.new_pool(2, max_message_bytes=1 << 20, max_future_skew_s=300,
                           max_events=10)
asyncio.run(validation.warm_up(pool, 2))
print(" ".join(str(p) for p in pool._processes), flush=True)
sys.stdin.read()
"""


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as f:
            return f.read().split(") ")[-1][0] != "Z"
    except FileNotFoundError:
        return False


def test_workers_exit_when_the_api_process_is_killed() -> None:
    parent = subprocess.Popen([sys.executable, "-c", SCRIPT], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, text=True)
    assert parent.stdout is not None
    workers = [int(p) for p in parent.stdout.readline().split()]
    assert len(workers) == 2 and all(_alive(p) for p in workers)
    os.kill(parent.pid, signal.SIGKILL)
    parent.wait()
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and any(_alive(p) for p in workers):
        time.sleep(0.05)
    left = [p for p in workers if _alive(p)]
    for pid in left:  # do not leak them if the assertion fails
        os.kill(pid, signal.SIGKILL)
    assert left == []
