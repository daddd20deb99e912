"""Killing a worker in the middle of a stream, for the tests that prove nothing is lost."""

from __future__ import annotations

import signal
import time

from iocdev.sandbox import Pipeline
from iocdev.supervise import Process


def kill_mid_stream(pipe: Pipeline, worker: Process, *, after_rows: int,
                    total: int, table: str = "sensor_readings", timeout_s: float = 60.0
                    ) -> int:
    """SIGKILL ``worker`` once ``after_rows`` rows of ``table`` are stored; assert the kill
    landed mid-stream (some rows stored, not all ``total``) and return how many were."""
    count = f"SELECT count(*) FROM {table}"
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if pipe.query(count)[0][0] > after_rows:
            break
        time.sleep(0.05)
    worker.send_signal(signal.SIGKILL)
    worker.wait()
    stored: int = pipe.query(count)[0][0]
    assert 0 < stored < total, "kill must land mid-stream"
    return stored
