"""Killing a worker in the middle of a stream, for the tests that prove nothing is lost."""

from __future__ import annotations

import signal
import threading
import time
from collections.abc import Sequence

from iocdev.sandbox import Pipeline
from iocdev.supervise import Process


def trickle(pipe: Pipeline, feed: str, messages: Sequence[tuple[bytes | None, bytes]],
            *, parts: int = 20, gap_s: float = 0.05) -> threading.Thread:
    """Produce ``messages`` in ``parts`` sends from a started thread, so the stream is still
    arriving when the kill lands (produced at once, a worker once stored all 20,000 events
    between two polls of the count on a loaded CI machine). Join it after."""
    size = max(1, -(-len(messages) // parts))

    def run() -> None:
        for start in range(0, len(messages), size):
            pipe.produce(feed, messages[start:start + size])
            time.sleep(gap_s)

    thread = threading.Thread(target=run)
    thread.start()
    return thread


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
    assert 0 < stored < total, f"kill must land mid-stream: {stored} of {total} stored"
    return stored
