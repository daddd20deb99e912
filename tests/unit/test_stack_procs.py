"""Pid-file process control: only our own recorded pids are ever signalled."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

from iocdev.stack import procs


def test_start_recognise_stop(tmp_path: Path) -> None:
    files = procs.PidFiles(tmp_path / "run", "sleeper")
    record = procs.start(files, ["sleep", "300"], log=tmp_path / "sleeper.log", cwd=tmp_path)
    assert files.pid_path.read_text().strip() == str(record.pid)
    assert files.running() == record
    assert procs.stop(files, timeout=5) == record.pid
    assert not procs.is_alive(record.pid)
    assert files.read() is None
    assert procs.stop(files) is None
    assert "start: sleep 300" in (tmp_path / "sleeper.log").read_text()


def test_foreign_pid_is_never_signalled(tmp_path: Path) -> None:
    files = procs.PidFiles(tmp_path / "run", "sleeper")
    record = procs.start(files, ["sleep", "300"], log=tmp_path / "sleeper.log", cwd=tmp_path)
    try:
        # The pid file now claims a different command line: treat the pid as not ours.
        files.write(procs.Record(pid=record.pid, argv=["sleep", "301"],
                                 start_ticks=record.start_ticks))
        assert files.running() is None
        assert procs.stop(files) is None
        assert procs.is_alive(record.pid)
    finally:
        os.kill(record.pid, signal.SIGKILL)
    for _ in range(100):
        if not procs.is_alive(record.pid):
            break
        time.sleep(0.05)
    assert not procs.is_alive(record.pid)
