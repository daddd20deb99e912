"""Dependency health of the worker, degraded but not noisy: what is down, since when,
how much waits, in bounded lines.

:class:`Health` is the worker's one record of its dependencies (``database``, ``kafka``).
Stages report failures and recoveries to it; it keeps the ``ioc_stream_dependency_up``
gauge, answers ``/readyz`` with states only (never exception text), and logs one line
when a dependency goes down, at most one summary per ``summary_every_s`` while it stays
down, and one line when it returns.

:class:`RateLimitFilter` bounds what other libraries log in an outage: aiokafka, faust
and psycopg_pool log every failed attempt (about 8,600 lines a second were seen during a
broker outage). It lets the first ``burst`` lines of each call site (file and line)
through per ``window_s`` and then one line saying how many were suppressed.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

from ioccore import metrics

log = logging.getLogger(__name__)

DEPENDENCIES = ("database", "kafka")


@dataclass(slots=True)
class _Outage:
    since_wall: float
    since: float
    last_summary: float
    failures: int
    cause: str


class Health:
    """Dependency states for ``/readyz``, metrics and bounded outage logs."""

    def __init__(self, *, summary_every_s: float = 30.0) -> None:
        self._summary_every_s = summary_every_s
        self._down: dict[str, _Outage] = {}
        self.waiting: dict[str, int] = {}
        """Per stage, messages taken from Kafka and not yet durable (0 when idle)."""
        for dep in DEPENDENCIES:
            metrics.DEPENDENCY_UP.labels(dep).set(1)

    def failed(self, dependency: str, exc: BaseException) -> None:
        """An attempt on ``dependency`` failed (call on every failure; logs are bounded)."""
        now = time.monotonic()
        cause = type(exc).__name__
        outage = self._down.get(dependency)
        if outage is None:
            self._down[dependency] = _Outage(time.time(), now, now, 1, cause)
            metrics.DEPENDENCY_UP.labels(dependency).set(0)
            log.warning("%s unavailable (%s); retrying, messages wait in Kafka", dependency,
                        cause, extra={"dependency": dependency, "waiting": self.pending()})
            return
        outage.failures += 1
        outage.cause = cause
        if now - outage.last_summary >= self._summary_every_s:
            outage.last_summary = now
            log.warning("%s still unavailable for %.0f s (%d failed attempts, last %s);"
                        " %d messages waiting", dependency, now - outage.since,
                        outage.failures, cause, self.pending(),
                        extra={"dependency": dependency, "waiting": self.pending(),
                               "down_s": round(now - outage.since, 1)})

    def ok(self, dependency: str) -> None:
        """An attempt on ``dependency`` succeeded."""
        outage = self._down.pop(dependency, None)
        if outage is None:
            return
        metrics.DEPENDENCY_UP.labels(dependency).set(1)
        log.warning("%s available again after %.1f s (%d failed attempts)", dependency,
                    time.monotonic() - outage.since, outage.failures,
                    extra={"dependency": dependency})

    def down(self) -> dict[str, float]:
        """Dependency -> epoch seconds since it has been down."""
        return {dep: o.since_wall for dep, o in self._down.items()}

    def pending(self) -> int:
        return sum(self.waiting.values())


class RateLimitFilter(logging.Filter):
    """At most ``burst`` records per call site per ``window_s``, then a count."""

    def __init__(self, *, burst: int = 5, window_s: float = 30.0) -> None:
        super().__init__()
        self._burst = burst
        self._window_s = window_s
        self._seen: dict[tuple[str, int], tuple[float, int]] = {}

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno >= logging.CRITICAL:
            return True
        key = (record.pathname, record.lineno)  # the call site: f-strings vary
        now = time.monotonic()
        start, count = self._seen.get(key, (now, 0))
        if now - start >= self._window_s:
            if count > self._burst:
                record.msg = f"{record.msg} [{count - self._burst} similar lines suppressed" \
                             f" in the last {now - start:.0f} s]"
            start, count = now, 0
        count += 1
        self._seen[key] = (start, count)
        if len(self._seen) > 10_000:  # bounded: call sites, not messages, are keys
            self._seen.clear()
        return count <= self._burst


def quiet_libraries(*, burst: int = 5, window_s: float = 30.0) -> RateLimitFilter:
    """Attach one rate limit to every handler of the root logger (idempotent)."""
    root = logging.getLogger()
    for handler in root.handlers:
        for f in handler.filters:
            if isinstance(f, RateLimitFilter):
                return f
    limit = RateLimitFilter(burst=burst, window_s=window_s)
    for handler in root.handlers:
        handler.addFilter(limit)
    return limit
