"""CPU time and memory of the processes a benchmark measures, read from /proc.

A process's CPU is taken with its descendants (a PyFlink job's JVM is a child of its
Python process), and every process seen is remembered with the last value read, so a
process that exits before the end of a measurement still counts (the two-worker figure
once lost a worker's CPU that way and reported 0.3 s for two workers).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

from ioccore.settings import Settings

CLK_TCK = os.sysconf("SC_CLK_TCK")


def _stat(pid: int) -> tuple[str, list[str]] | None:
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    head, _, rest = text.rpartition(")")
    return head.partition("(")[2], rest.split()


def cpu_s(pid: int, *, reaped: bool = False) -> float | None:
    """User + system CPU seconds of one process (all its threads), with ``reaped`` also
    that of its children that exited and were waited for; None once it is gone."""
    st = _stat(pid)
    if st is None:
        return None
    fields = st[1]
    ticks = int(fields[11]) + int(fields[12])
    if reaped:
        ticks += int(fields[13]) + int(fields[14])
    return ticks / CLK_TCK


def _parent(pid: int) -> int:
    st = _stat(pid)
    return int(st[1][1]) if st else 0


def peak_rss_mb(pid: int) -> float:
    """VmHWM: the largest resident set the process has had."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def _all() -> list[tuple[int, str, int]]:
    """(pid, name, parent pid) of every process."""
    out = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        st = _stat(int(entry.name))
        if st is not None:
            out.append((int(entry.name), st[0], int(st[1][1])))
    return out


def descendants(roots: Iterable[int]) -> set[int]:
    """The given pids and every process below them."""
    procs = _all()
    found = set(roots)
    grew = True
    while grew:
        grew = False
        for pid, _, parent in procs:
            if parent in found and pid not in found:
                found.add(pid)
                grew = True
    return found


def postgres_pids() -> set[int]:
    """Every PostgreSQL server process on this machine (shared with anyone else's load)."""
    return {pid for pid, name, _ in _all() if name == "postgres"}


def postgres_backends(dbname: str) -> set[int]:
    """The PostgreSQL backends connected to database ``dbname`` (their process title
    names it): a benchmark's own share of a server that other engineers' tests use too."""
    found = set()
    for pid in postgres_pids():
        try:
            title = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").split()
        except OSError:
            continue
        if len(title) > 2 and title[2].decode(errors="replace") == dbname:
            found.add(pid)
    return found


def kafka_pids(settings: Settings) -> set[int]:
    """The local stack's Kafka broker (its pid file)."""
    path = settings.stack.root / "run" / "kafka.pid"
    try:
        return {int(path.read_text().split()[0])}
    except (OSError, ValueError, IndexError):
        return set()


@dataclass
class CpuMeter:
    """CPU seconds of a group of processes between ``start()`` and the last ``sample()``.

    Processes are found again at every sample (children appear, workers start late);
    each keeps the largest value read, and its value at ``start()`` as its base (0 for
    a process that appeared afterwards). A process whose parent is not in the group (the
    postmaster, a worker, the Flink job's Python) also counts its exited children, so
    short-lived PostgreSQL backends are not lost between samples."""

    find: Callable[[], set[int]]
    base: dict[int, float] = field(default_factory=dict)
    last: dict[int, float] = field(default_factory=dict)
    started: bool = False

    offset: float = 0.0
    inner: set[int] = field(default_factory=set)
    """Processes whose parent is in the group: once gone, the parent's reaped time has
    their whole CPU, so they are dropped instead of counted twice."""

    def _read(self) -> dict[int, float]:
        pids = self.find()
        out = {}
        for pid in pids:
            inner = _parent(pid) in pids
            value = cpu_s(pid, reaped=not inner)
            if value is not None:
                out[pid] = value
                if inner:
                    self.inner.add(pid)
        for gone in [p for p in self.inner if p not in out]:
            # its whole CPU now shows in the parent's reaped time: count only what it
            # used after start()
            self.inner.discard(gone)
            self.last.pop(gone, None)
            self.offset -= self.base.pop(gone, 0.0)
        return out

    def start(self) -> None:
        self.base.clear()
        self.last.clear()
        self.offset = 0.0
        for pid, value in self._read().items():
            self.base[pid] = self.last[pid] = value
        self.started = True

    def sample(self) -> float:
        """Sample now; CPU seconds used since ``start()``."""
        for pid, value in self._read().items():
            self.base.setdefault(pid, 0.0 if self.started else value)
            self.last[pid] = max(value, self.last.get(pid, 0.0))
        return self.used

    @property
    def used(self) -> float:
        return self.offset + sum(self.last[p] - self.base.get(p, 0.0) for p in self.last)
