"""The one supervisor: only our own recorded pids are ever signalled; stops escalate."""

from __future__ import annotations

import dataclasses
import signal
import sys
import time
from pathlib import Path

from iocdev import supervise
from iocdev.supervise import PidFile, Record

SLEEP = [sys.executable, "-c", "import time; time.sleep(300)"]


def _gone(record: Record, timeout: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not record.ours():
            return True
        time.sleep(0.05)
    return False


def test_spawn_records_pid_and_start_time_and_stop_clears_them(tmp_path: Path) -> None:
    pidfile = PidFile(tmp_path / "run", "sleeper")
    proc = supervise.spawn("sleeper", SLEEP, log=tmp_path / "sleeper.log", cwd=tmp_path,
                           pidfile=pidfile)
    stat = supervise.stat(proc.pid)
    assert stat is not None and stat.start_ticks == proc.record.start_ticks
    assert pidfile.pid_path.read_text().strip() == str(proc.pid)
    assert pidfile.running() == proc.record
    assert supervise.child(proc.pid) is proc
    assert proc.stop(timeout=5)
    assert proc.returncode == -signal.SIGTERM
    assert pidfile.read() is None
    assert not proc.stop()  # twice is harmless
    assert "start: " in proc.tail()


def test_a_recorded_pid_with_another_start_time_is_never_signalled(tmp_path: Path) -> None:
    pidfile = PidFile(tmp_path / "run", "sleeper")
    proc = supervise.spawn("sleeper", SLEEP, log=tmp_path / "sleeper.log", cwd=tmp_path)
    try:
        # A pid file naming this pid but another start time is a recycled pid: not ours.
        pidfile.write(dataclasses.replace(proc.record,
                                          start_ticks=proc.record.start_ticks - 1))
        assert pidfile.running() is None
        assert pidfile.stop() is None
        assert proc.ours()
        # The same for a record from another boot.
        other_boot = dataclasses.replace(proc.record, boot_id="another-boot")
        assert not other_boot.signal(signal.SIGTERM)
        assert proc.ours()
    finally:
        proc.kill()
        proc.wait(timeout=5)
    assert not proc.ours()


def test_pid_file_stops_a_process_that_is_not_our_child(tmp_path: Path) -> None:
    pidfile = PidFile(tmp_path / "run", "sleeper")
    proc = supervise.spawn("sleeper", SLEEP, log=tmp_path / "sleeper.log", cwd=tmp_path,
                           pidfile=pidfile)
    assert pidfile.stop(timeout=5) == proc.pid
    assert _gone(proc.record)
    assert not pidfile.meta_path.exists() and not pidfile.pid_path.exists()


def test_pid_files_of_the_older_format_are_still_read(tmp_path: Path) -> None:
    proc = supervise.spawn("sleeper", SLEEP, log=tmp_path / "sleeper.log", cwd=tmp_path)
    try:
        pidfile = PidFile(tmp_path / "run", "old")
        pidfile.pid_path.parent.mkdir(parents=True)
        pidfile.pid_path.write_text(f"{proc.pid}\n")
        pidfile.meta_path.write_text(
            f'{{"argv": [], "start_ticks": {proc.record.start_ticks}}}')
        running = pidfile.running()
        assert running is not None and running.pid == proc.pid
    finally:
        proc.stop(timeout=5)


def test_stop_escalates_to_sigkill_of_the_group(tmp_path: Path) -> None:
    code = ("import signal, subprocess, sys, time; signal.signal(signal.SIGTERM, signal.SIG_IGN);"
            " subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(300)']);"
            " print('ready', flush=True); time.sleep(300)")
    proc = supervise.spawn("stubborn", [sys.executable, "-c", code],
                           log=tmp_path / "stubborn.log", cwd=tmp_path)
    deadline = time.monotonic() + 10
    while "\nready" not in proc.log.read_text() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert proc.stop(timeout=0.5)
    assert proc.returncode == -signal.SIGKILL


def test_pause_and_resume(tmp_path: Path) -> None:
    proc = supervise.spawn("sleeper", SLEEP, log=tmp_path / "sleeper.log", cwd=tmp_path)
    try:
        assert proc.pause()
        deadline = time.monotonic() + 5
        while not proc.stopped() and time.monotonic() < deadline:
            time.sleep(0.02)
        assert proc.stopped()
        assert proc.resume()
        deadline = time.monotonic() + 5
        while proc.stopped() and time.monotonic() < deadline:
            time.sleep(0.02)
        assert not proc.stopped()
    finally:
        proc.pause()
        assert proc.stop(timeout=5)  # a paused process is resumed, then stopped
    assert proc.returncode == -signal.SIGTERM


def test_log_tail_reads_only_the_end(tmp_path: Path) -> None:
    log = tmp_path / "big.log"
    log.write_text("".join(f"line {i}\n" for i in range(100_000)))
    assert supervise.log_tail(log, 2) == "line 99998\nline 99999"
    assert supervise.log_tail(tmp_path / "missing.log") == ""


def test_free_port_is_bindable() -> None:
    import socket

    port = supervise.free_port()
    with socket.socket() as s:
        s.bind(("127.0.0.1", port))
