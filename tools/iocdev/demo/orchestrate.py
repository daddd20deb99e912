"""Child processes of the demo: started detached, recorded by pid, stopped by pid.

Each child runs in its own session (so a Ctrl-C in the terminal reaches only the demo,
which then stops its children in order) with stdout and stderr appended to
``<logs>/<prefix><name>.log``. Its pid and kernel start time go to
``<run>/<prefix><name>.json`` (prefix ``demo-``, or ``demo@<database>-`` for a demo on
another database, so two demos never touch each other's children); a pid counts as ours
only while its start time still matches, so a recycled pid is never signalled. Nothing
is looked up or killed by name.

Contract of :class:`Children`:

- ``start`` returns once the process exists (it does not wait for readiness);
- ``poll`` never blocks: it reports children that ended since they were started;
- ``stop_all`` stops every child still running, newest first (SIGTERM, then SIGKILL of
  the child's process group after ``timeout``), and is safe to call twice;
- ``stop_leftovers`` stops children a previous, killed demo recorded and left running.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from iocdev.demo.errors import DemoError

PREFIX = "demo-"


def start_ticks(pid: int) -> int | None:
    """The kernel start time of ``pid`` in clock ticks, or None when it is gone/zombie."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = raw[raw.rindex(")") + 2 :].split()
    if fields[0] in ("Z", "X"):
        return None
    return int(fields[19])


def log_tail(path: Path, lines: int = 30) -> str:
    """The last ``lines`` lines of a log file ('' when it cannot be read)."""
    try:
        with path.open("rb") as fh:
            fh.seek(0, os.SEEK_END)
            size = fh.tell()
            fh.seek(max(0, size - 64 * 1024))
            text = fh.read().decode(errors="replace")
    except OSError:
        return ""
    return "\n".join(text.splitlines()[-lines:])


@dataclass(frozen=True, slots=True)
class Exited:
    """A child that ended: its name, exit code (negative: killed by that signal), log."""

    name: str
    code: int
    log: Path

    def describe(self, lines: int = 30) -> str:
        how = f"signal {-self.code}" if self.code < 0 else f"code {self.code}"
        return f"{self.name} exited with {how}; last lines of {self.log}:\n" + log_tail(
            self.log, lines)


@dataclass(slots=True)
class Child:
    """One started process."""

    name: str
    argv: list[str]
    log: Path
    meta: Path
    proc: subprocess.Popen[bytes]
    ticks: int | None

    @property
    def pid(self) -> int:
        return self.proc.pid

    def ours(self) -> bool:
        """True while the process runs and is still the one we started."""
        if self.proc.poll() is not None:
            return False
        return start_ticks(self.pid) == self.ticks


class Children:
    """The processes one demo run started."""

    def __init__(self, *, log_dir: Path, run_dir: Path, cwd: Path,
                 env: Mapping[str, str] | None = None, prefix: str = PREFIX) -> None:
        self.prefix = prefix
        self.log_dir = log_dir
        self.run_dir = run_dir
        self.cwd = cwd
        self.env = dict(env) if env is not None else None
        self.children: list[Child] = []
        self._reported: set[str] = set()

    def log_path(self, name: str) -> Path:
        return self.log_dir / f"{self.prefix}{name}.log"

    def start(self, name: str, argv: list[str], *, env: Mapping[str, str] | None = None
              ) -> Child:
        """Start ``argv`` as ``name``; output appended to its log, pid recorded."""
        if any(c.name == name for c in self.children):
            raise DemoError(name, "started twice")
        self.log_dir.mkdir(parents=True, exist_ok=True)
        self.run_dir.mkdir(parents=True, exist_ok=True)
        log = self.log_path(name)
        child_env = dict(env) if env is not None else self.env
        with log.open("ab") as out:
            out.write(f"\n=== {time.strftime('%Y-%m-%d %H:%M:%S')} start: {' '.join(argv)}\n"
                      .encode())
            out.flush()
            try:
                proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=out,
                                        stderr=subprocess.STDOUT, cwd=self.cwd,
                                        env=child_env, start_new_session=True)
            except OSError as exc:
                raise DemoError(name, f"cannot start {argv[0]}: {exc}", log) from exc
        meta = self.run_dir / f"{self.prefix}{name}.json"
        child = Child(name, argv, log, meta, proc, start_ticks(proc.pid))
        meta.write_text(json.dumps({"pid": proc.pid, "start_ticks": child.ticks,
                                    "argv": argv}))
        self.children.append(child)
        return child

    def get(self, name: str) -> Child:
        for child in self.children:
            if child.name == name:
                return child
        raise KeyError(name)

    def poll(self) -> list[Exited]:
        """Children that ended since the last call (each reported once)."""
        ended = []
        for child in self.children:
            code = child.proc.poll()
            if code is not None and child.name not in self._reported:
                self._reported.add(child.name)
                ended.append(Exited(child.name, code, child.log))
        return ended

    def wait(self, child: Child, *, timeout: float) -> int:
        """Wait for a child meant to end (a one-off step); it is then not reported by
        :meth:`poll`. Raises ``subprocess.TimeoutExpired`` like ``Popen.wait``."""
        code = child.proc.wait(timeout=timeout)
        self._reported.add(child.name)
        child.meta.unlink(missing_ok=True)
        return code

    def stop(self, child: Child, *, timeout: float = 20.0) -> bool:
        """Stop one child (if still ours); True when it had to be signalled."""
        signalled = False
        if child.ours():
            with contextlib.suppress(ProcessLookupError):
                os.kill(child.pid, signal.SIGTERM)
            signalled = True
            try:
                child.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                # Its session's group holds only the child and what it started.
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(child.pid, signal.SIGKILL)
                child.proc.wait()
        child.meta.unlink(missing_ok=True)
        self._reported.add(child.name)
        return signalled

    def stop_all(self, *, timeout: float = 20.0) -> list[str]:
        """Stop every child still running, newest first; returns the names stopped."""
        stopped = []
        for child in reversed(self.children):
            if self.stop(child, timeout=timeout):
                stopped.append(child.name)
        return stopped

    def keep(self) -> None:
        """Leave the children running after this process ends (pid files stay)."""
        self.children.clear()

    def stop_leftovers(self, *, timeout: float = 20.0) -> list[int]:
        """Stop processes an earlier demo recorded here and left running (by pid)."""
        stopped = []
        for meta in sorted(self.run_dir.glob(f"{self.prefix}*.json")):
            try:
                record = json.loads(meta.read_text())
                pid, ticks = int(record["pid"]), record["start_ticks"]
            except (OSError, ValueError, KeyError, TypeError):
                meta.unlink(missing_ok=True)
                continue
            if ticks is not None and start_ticks(pid) == ticks:
                stop_pid(pid, ticks, timeout=timeout)
                stopped.append(pid)
            meta.unlink(missing_ok=True)
        return stopped


def stop_pid(pid: int, ticks: int, *, timeout: float = 20.0) -> None:
    """SIGTERM a recorded pid that is not our child; SIGKILL its group after ``timeout``."""
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if start_ticks(pid) != ticks:
            return
        time.sleep(0.1)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pid, signal.SIGKILL)
