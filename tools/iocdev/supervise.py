"""The one process supervisor of the developer tooling: stack services, demo children,
test and chaos workers.

Why one: a recycled pid must never be signalled, and every caller used to get that
right (or not) on its own. The rules, kept here only:

- every child starts in its own session, so its process group holds only it and what it
  starts (a terminal's Ctrl-C reaches only the parent; a stop can take the whole group);
- a process is identified by pid **and** kernel start time (``/proc/<pid>/stat`` field
  22) and boot id; a pid counts as ours only while both still match;
- nothing is looked up or signalled by name; a stop is SIGTERM (or the service's own
  signal), a wait, then SIGKILL of the group;
- a service that outlives the process that started it (the local stack) is recorded in
  ``<run>/<name>.pid`` (the pid alone, for shell tools) and ``<run>/<name>.json``.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

CLK_TCK = os.sysconf("SC_CLK_TCK")


def _boot_id() -> str:
    try:
        return Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    except OSError:
        return ""


BOOT_ID = _boot_id()


# ---------------------------------------------------------------------------- /proc
@dataclass(frozen=True, slots=True)
class Stat:
    """The fields of ``/proc/<pid>/stat`` the tooling uses."""

    state: str
    start_ticks: int
    utime_ticks: int
    stime_ticks: int

    @property
    def cpu_s(self) -> float:
        """User plus system CPU seconds used so far."""
        return (self.utime_ticks + self.stime_ticks) / CLK_TCK

    @property
    def alive(self) -> bool:
        """Not a zombie (exited, waiting to be reaped) nor dead."""
        return self.state not in ("Z", "X")

    @property
    def stopped(self) -> bool:
        """Stopped by a signal (SIGSTOP) or being traced."""
        return self.state in ("T", "t")


def stat(pid: int) -> Stat | None:
    """The stat of ``pid``, or None when there is no such process."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # The command name is in parentheses and may hold spaces and ')': split after the last.
    fields = raw[raw.rindex(")") + 2 :].split()
    return Stat(state=fields[0], utime_ticks=int(fields[11]), stime_ticks=int(fields[12]),
                start_ticks=int(fields[19]))


def peak_rss_mb(pid: int) -> float:
    """The peak resident set size (VmHWM) of ``pid`` in MiB (0 when unknown)."""
    try:
        lines = Path(f"/proc/{pid}/status").read_text().splitlines()
    except OSError:
        return 0.0
    for line in lines:
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return 0.0


# ---------------------------------------------------------------------------- helpers
def log_tail(path: Path, lines: int = 40) -> str:
    """The last ``lines`` lines of a log file ('' when it cannot be read); reads at most
    the last 64 KiB, so a huge log costs nothing."""
    try:
        with path.open("rb") as fh:
            fh.seek(0, os.SEEK_END)
            fh.seek(max(0, fh.tell() - 64 * 1024))
            text = fh.read().decode(errors="replace")
    except OSError:
        return ""
    return "\n".join(text.splitlines()[-lines:])


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port nobody listens on right now (the kernel's pick)."""
    with socket.socket() as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


# ---------------------------------------------------------------------------- identity
@dataclass(frozen=True, slots=True)
class Record:
    """Who a started process is: pid, kernel start time, boot, and what it ran."""

    pid: int
    start_ticks: int
    argv: tuple[str, ...] = ()
    boot_id: str = BOOT_ID

    @classmethod
    def of(cls, pid: int, argv: tuple[str, ...] = ()) -> Record | None:
        """The record of a running process (None when it is already gone)."""
        st = stat(pid)
        if st is None or not st.alive:
            return None
        return cls(pid=pid, start_ticks=st.start_ticks, argv=argv)

    def ours(self) -> bool:
        """True while this exact process exists and has not exited."""
        if self.boot_id and self.boot_id != BOOT_ID:  # '' : recorded by an older version
            return False
        st = stat(self.pid)
        return st is not None and st.alive and st.start_ticks == self.start_ticks

    def signal(self, sig: int, *, group: bool = False) -> bool:
        """Send ``sig`` to the process (or its whole group) if it is still ours."""
        if not self.ours():
            return False
        with contextlib.suppress(ProcessLookupError, PermissionError):
            if group and os.getpgid(self.pid) == self.pid:
                os.killpg(self.pid, sig)
            else:
                os.kill(self.pid, sig)
            return True
        return False

    def to_json(self) -> str:
        return json.dumps({"pid": self.pid, "start_ticks": self.start_ticks,
                           "argv": list(self.argv), "boot_id": self.boot_id})

    @classmethod
    def from_json(cls, text: str) -> Record:
        raw = json.loads(text)
        return cls(pid=int(raw["pid"]), start_ticks=int(raw["start_ticks"]),
                   argv=tuple(raw.get("argv", ())), boot_id=str(raw.get("boot_id", "")))


def _reap(pid: int) -> None:
    """Collect the exit status of a child :func:`spawn` started (a zombie is never
    "ours" anyway; other children are left to whoever holds their Popen)."""
    proc = _CHILDREN.get(pid)
    if proc is not None:
        proc.poll()


def stop_record(record: Record, *, sig: int = signal.SIGTERM, timeout: float = 20.0) -> bool:
    """Stop a recorded process that need not be our child: ``sig``, wait up to
    ``timeout``, then SIGKILL its group. True when it had to be signalled."""
    if not record.signal(sig):
        return False
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        _reap(record.pid)
        if not record.ours():
            return True
        time.sleep(0.05)
    record.signal(signal.SIGKILL, group=True)
    while record.ours():
        _reap(record.pid)
        time.sleep(0.05)
    return True


class PidFile:
    """``<run>/<name>.pid`` and ``<run>/<name>.json`` of a process that may outlive us."""

    def __init__(self, run_dir: Path, name: str) -> None:
        self.name = name
        self.pid_path = run_dir / f"{name}.pid"
        self.meta_path = run_dir / f"{name}.json"

    def read(self) -> Record | None:
        try:
            raw = json.loads(self.meta_path.read_text())
            if "pid" not in raw:  # files written before this module: pid in <name>.pid
                raw["pid"] = int(self.pid_path.read_text().strip())
            return Record.from_json(json.dumps(raw))
        except (OSError, ValueError, KeyError, TypeError):
            return None

    def write(self, record: Record) -> None:
        self.meta_path.parent.mkdir(parents=True, exist_ok=True)
        self.meta_path.write_text(record.to_json())
        self.pid_path.write_text(f"{record.pid}\n")

    def clear(self) -> None:
        self.pid_path.unlink(missing_ok=True)
        self.meta_path.unlink(missing_ok=True)

    def running(self) -> Record | None:
        """The recorded process while it is still alive and still the one recorded."""
        record = self.read()
        return record if record is not None and record.ours() else None

    def stop(self, *, sig: int = signal.SIGTERM, timeout: float = 30.0) -> int | None:
        """Stop the recorded process if it is ours; the pid stopped (None: nothing was
        running). The files are removed in every case."""
        record = self.running()
        stopped = record.pid if record is not None and stop_record(
            record, sig=sig, timeout=timeout) else None
        self.clear()
        return stopped


# ---------------------------------------------------------------------------- children
_CHILDREN: dict[int, Process] = {}
"""Children started by this process, by pid (so a caller holding only a pid can still
learn the exit code)."""


def child(pid: int) -> Process | None:
    """The child :func:`spawn` started with this pid, if any."""
    return _CHILDREN.get(pid)


class Process:
    """A child started by :func:`spawn`.

    ``signal``/``pause``/``resume``/``kill`` act only while the process is still the one
    started (pid and start time); ``stop`` is safe to call twice.
    """

    def __init__(self, name: str, argv: list[str], log: Path,
                 popen: subprocess.Popen[bytes], record: Record,
                 pidfile: PidFile | None) -> None:
        self.name = name
        self.argv = argv
        self.log = log
        self.popen = popen
        self.record = record
        self.pidfile = pidfile

    @property
    def pid(self) -> int:
        return self.popen.pid

    @property
    def returncode(self) -> int | None:
        return self.popen.returncode

    def poll(self) -> int | None:
        """The exit code once it ended (negative: killed by that signal); never blocks."""
        return self.popen.poll()

    def ours(self) -> bool:
        """True while it runs and is still the process we started."""
        return self.popen.poll() is None and self.record.ours()

    def send_signal(self, sig: int, *, group: bool = False) -> bool:
        """Signal it (or its group) if it is still ours; True when sent."""
        return self.popen.poll() is None and self.record.signal(sig, group=group)

    def kill(self) -> bool:
        """SIGKILL, no grace: what a crash looks like."""
        return self.send_signal(signal.SIGKILL)

    def pause(self) -> bool:
        """SIGSTOP the whole group: frozen, sockets open, as a stalled VM looks."""
        return self.send_signal(signal.SIGSTOP, group=True)

    def resume(self) -> bool:
        return self.send_signal(signal.SIGCONT, group=True)

    def stopped(self) -> bool:
        """True while paused by :meth:`pause`."""
        st = stat(self.pid)
        return st is not None and st.stopped

    def wait(self, timeout: float | None = None) -> int:
        """Wait for it to end; raises ``subprocess.TimeoutExpired`` like ``Popen.wait``."""
        code = self.popen.wait(timeout=timeout)
        if self.pidfile is not None:
            self.pidfile.clear()
        return code

    def stop(self, *, sig: int = signal.SIGTERM, timeout: float = 20.0) -> bool:
        """``sig`` (resuming it first if paused), wait ``timeout``, then SIGKILL its group.
        True when it was running and had to be signalled."""
        signalled = False
        if self.ours():
            signalled = True
            self.resume()
            self.send_signal(sig)
            try:
                self.popen.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.send_signal(signal.SIGKILL, group=True)
                self.popen.wait()
        if self.pidfile is not None:
            self.pidfile.clear()
        return signalled

    def tail(self, lines: int = 40) -> str:
        return log_tail(self.log, lines)

    def describe(self) -> str:
        """One line for failures: name, pid, how it ended, and the log's last lines."""
        code = self.poll()
        how = ("running" if code is None else
               f"killed by signal {-code}" if code < 0 else f"exited with code {code}")
        return f"{self.name} (pid {self.pid}) {how}; last lines of {self.log}:\n{self.tail()}"


def wait_started(proc: Process, ready: Callable[[], bool], what: str, *,
                 timeout: float, interval: float) -> None:
    """Poll ``ready`` until it is true; RuntimeError ``<what> did not start`` with the
    process's log tail as soon as the process exits, or after ``timeout``."""
    deadline = time.monotonic() + timeout
    while not ready():
        if proc.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(f"{what} did not start\n{proc.describe()}")
        time.sleep(interval)


def ioc_argv(*args: str) -> list[str]:
    """The command line of ``ioc ARGS`` from this interpreter (its virtualenv's ``ioc``,
    whatever is on PATH)."""
    return [sys.executable, "-m", "ioc.cli", *args]


def spawn(name: str, argv: list[str], *, log: Path, cwd: Path,
          env: Mapping[str, str] | None = None, user: str | None = None,
          pidfile: PidFile | None = None, append: bool = True) -> Process:
    """Start ``argv`` in its own session, stdout and stderr to ``log`` (appended, after a
    start line), and record pid and start time (in ``pidfile`` too when given).

    ``user`` runs it as that OS user (only possible as root); the log is opened here.
    Returns once the process exists; readiness is the caller's business.
    """
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("ab" if append else "wb") as out:
        out.write(f"\n=== {time.strftime('%Y-%m-%d %H:%M:%S')} start: {' '.join(argv)}\n"
                  .encode())
        out.flush()
        popen = subprocess.Popen(
            argv, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT, cwd=cwd,
            env=dict(env) if env is not None else None, start_new_session=True,
            user=user, group=user, extra_groups=[] if user is not None else None,
        )
    record = Record.of(popen.pid, tuple(argv)) or Record(popen.pid, -1, tuple(argv))
    if pidfile is not None:
        pidfile.write(record)
    proc = Process(name, argv, log, popen, record, pidfile)
    _CHILDREN[proc.pid] = proc
    return proc
