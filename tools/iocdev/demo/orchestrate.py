"""Child processes of the demo: started detached, recorded by pid, stopped by pid.

Processes are started, recorded and stopped by :mod:`iocdev.supervise` (own session,
pid plus kernel start time, never by name). Output goes to ``<logs>/<prefix><name>.log``,
the record to ``<run>/<prefix><name>.json`` (prefix ``demo-``, or ``demo@<database>-``
for a demo on another database, so two demos never touch each other's children).

Contract of :class:`Children`:

- ``start`` returns once the process exists (it does not wait for readiness);
- ``poll`` never blocks: it reports children that ended since they were started;
- ``stop_all`` stops every child still running, newest first (SIGTERM, then SIGKILL of
  the child's process group after ``timeout``), and is safe to call twice;
- ``stop_leftovers`` stops children a previous, killed demo recorded and left running.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from iocdev import supervise
from iocdev.demo.errors import DemoError
from iocdev.supervise import PidFile, Process, log_tail

PREFIX = "demo-"

__all__ = ["PREFIX", "Children", "Exited", "log_tail"]


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


class Children:
    """The processes one demo run started."""

    def __init__(self, *, log_dir: Path, run_dir: Path, cwd: Path,
                 env: Mapping[str, str] | None = None, prefix: str = PREFIX) -> None:
        self.prefix = prefix
        self.log_dir = log_dir
        self.run_dir = run_dir
        self.cwd = cwd
        self.env = dict(env) if env is not None else None
        self.children: list[Process] = []
        self._reported: set[str] = set()

    def log_path(self, name: str) -> Path:
        return self.log_dir / f"{self.prefix}{name}.log"

    def start(self, name: str, argv: list[str], *, env: Mapping[str, str] | None = None
              ) -> Process:
        """Start ``argv`` as ``name``; output appended to its log, pid recorded."""
        if any(c.name == name for c in self.children):
            raise DemoError(name, "started twice")
        log = self.log_path(name)
        try:
            child = supervise.spawn(name, argv, log=log, cwd=self.cwd,
                                    env=env if env is not None else self.env,
                                    pidfile=PidFile(self.run_dir, f"{self.prefix}{name}"))
        except OSError as exc:
            raise DemoError(name, f"cannot start {argv[0]}: {exc}", log) from exc
        self.children.append(child)
        return child

    def get(self, name: str) -> Process:
        for child in self.children:
            if child.name == name:
                return child
        raise KeyError(name)

    def poll(self) -> list[Exited]:
        """Children that ended since the last call (each reported once)."""
        ended = []
        for child in self.children:
            code = child.poll()
            if code is not None and child.name not in self._reported:
                self._reported.add(child.name)
                ended.append(Exited(child.name, code, child.log))
        return ended

    def wait(self, child: Process, *, timeout: float) -> int:
        """Wait for a child meant to end (a one-off step); it is then not reported by
        :meth:`poll`. Raises ``subprocess.TimeoutExpired`` like ``Popen.wait``."""
        code = child.wait(timeout=timeout)
        self._reported.add(child.name)
        return code

    def stop(self, child: Process, *, timeout: float = 20.0) -> bool:
        """Stop one child (if still ours); True when it had to be signalled."""
        signalled = child.stop(timeout=timeout)
        self._reported.add(child.name)
        return signalled

    def stop_all(self, *, timeout: float = 20.0) -> list[str]:
        """Stop every child still running, newest first; returns the names stopped."""
        return [child.name for child in reversed(self.children)
                if self.stop(child, timeout=timeout)]

    def keep(self) -> None:
        """Leave the children running after this process ends (pid files stay)."""
        self.children.clear()

    def stop_leftovers(self, *, timeout: float = 20.0) -> list[int]:
        """Stop processes an earlier demo recorded here and left running (by pid)."""
        stopped = []
        for meta in sorted(self.run_dir.glob(f"{self.prefix}*.json")):
            pidfile = PidFile(self.run_dir, meta.name.removesuffix(".json"))
            pid = pidfile.stop(timeout=timeout)
            if pid is not None:
                stopped.append(pid)
            pidfile.clear()
        return stopped

