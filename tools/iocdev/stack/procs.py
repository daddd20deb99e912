"""Pid-file process control: start detached, recognise our own pids, stop them.

A started service gets ``run/<name>.pid`` (the pid alone, for shell tools) and
``run/<name>.json`` (argv and the kernel start time of the process). A pid counts as
ours only while ``/proc/<pid>/cmdline`` equals the recorded argv and its start time
matches, so a recycled pid is never signalled. Nothing is ever looked up or killed by
process name.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

_CHILDREN: list[subprocess.Popen[bytes]] = []
"""Popen objects of services started by this process (kept so they are not reaped early)."""


@dataclass(frozen=True, slots=True)
class Record:
    """What the pid files say about a started service."""

    pid: int
    argv: list[str]
    start_ticks: int


def _stat(pid: int) -> tuple[str, int] | None:
    """(state, start time in clock ticks) of a process, or None when it is gone."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return None
    # The command name is in parentheses and may contain spaces: split after the last ')'.
    fields = raw[raw.rindex(")") + 2 :].split()
    return fields[0], int(fields[19])


def _cmdline(pid: int) -> list[str] | None:
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return None
    return [part.decode(errors="replace") for part in raw.split(b"\0")[:-1]]


def _reap(pid: int) -> None:
    """Collect the exit status if the pid is our child (no zombie left behind)."""
    for proc in _CHILDREN:
        if proc.pid == pid:
            proc.poll()
            return
    with contextlib.suppress(ChildProcessError, OSError):
        os.waitpid(pid, os.WNOHANG)


def is_alive(pid: int) -> bool:
    """True while the process exists and is not a zombie."""
    _reap(pid)
    stat = _stat(pid)
    return stat is not None and stat[0] not in ("Z", "X")


class PidFiles:
    """The pid files of one service under ``run_dir``."""

    def __init__(self, run_dir: Path, name: str) -> None:
        self.name = name
        self.pid_path = run_dir / f"{name}.pid"
        self.meta_path = run_dir / f"{name}.json"

    def read(self) -> Record | None:
        try:
            meta = json.loads(self.meta_path.read_text())
            pid = int(self.pid_path.read_text().strip())
        except (FileNotFoundError, ValueError, json.JSONDecodeError):
            return None
        return Record(pid=pid, argv=list(meta["argv"]), start_ticks=int(meta["start_ticks"]))

    def write(self, record: Record) -> None:
        self.pid_path.parent.mkdir(parents=True, exist_ok=True)
        self.meta_path.write_text(json.dumps({"argv": record.argv,
                                              "start_ticks": record.start_ticks}))
        self.pid_path.write_text(f"{record.pid}\n")

    def clear(self) -> None:
        self.pid_path.unlink(missing_ok=True)
        self.meta_path.unlink(missing_ok=True)

    def running(self) -> Record | None:
        """The recorded process if it is still alive and still ours, else None."""
        record = self.read()
        if record is None or not is_alive(record.pid):
            return None
        stat = _stat(record.pid)
        if stat is None or stat[1] != record.start_ticks:
            return None
        if _cmdline(record.pid) != record.argv:
            return None
        return record


def start(
    files: PidFiles,
    argv: list[str],
    *,
    log: Path,
    cwd: Path,
    env: dict[str, str] | None = None,
    user: str | None = None,
) -> Record:
    """Start ``argv`` in its own session with output appended to ``log``; record its pid.

    ``user`` runs the process under that OS user (only possible as root); the log file
    is opened here, so it needs no permissions for it.
    """
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("ab") as out:
        out.write(f"\n=== {time.strftime('%Y-%m-%d %H:%M:%S')} start: {' '.join(argv)}\n"
                  .encode())
        out.flush()
        proc = subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            cwd=cwd,
            env=env,
            start_new_session=True,
            user=user,
            group=user,
            extra_groups=[] if user is not None else None,
        )
    _CHILDREN.append(proc)
    stat = _stat(proc.pid)
    record = Record(pid=proc.pid, argv=argv, start_ticks=stat[1] if stat else 0)
    files.write(record)
    return record


def stop(files: PidFiles, *, sig: signal.Signals = signal.SIGTERM,
         timeout: float = 30.0) -> int | None:
    """Stop the recorded process if it is ours: ``sig``, then SIGKILL after ``timeout``.

    Returns the pid that was stopped, or None when nothing of ours was running. The pid
    files are removed in every case.
    """
    record = files.running()
    if record is None:
        files.clear()
        return None
    os.kill(record.pid, sig)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not is_alive(record.pid):
            break
        time.sleep(0.1)
    else:
        if files.running() is not None:
            # Our leader is still there: kill its whole session group (it was started with
            # start_new_session, so the group id is its pid and holds only its children).
            with contextlib.suppress(ProcessLookupError):
                os.killpg(record.pid, signal.SIGKILL)
            while is_alive(record.pid):
                time.sleep(0.05)
    files.clear()
    return record.pid


def exit_code(pid: int) -> int | None:
    """The exit code of a service this process started, if it has ended."""
    for proc in _CHILDREN:
        if proc.pid == pid:
            return proc.poll()
    return None
