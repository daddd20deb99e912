"""Per-source event-time progress for the ``late`` marker (docs/architecture.md, time model).

An event is *late* when it arrives more than the allowed lateness behind the newest event
its own source had already delivered, in arrival order. A device whose clock jumps ahead
marks only its own later events late; nobody else's. ``late`` is a per-event marker and a
metric (``ioc_stream_events_late_total``): late events are stored and counted in every
rollup and KPI like any other.

:meth:`SourceProgress.mark` is pure; :meth:`SourceProgress.advance` moves progress and is
called only after the batch committed, so a retried batch is marked the same way.
Memory is bounded: beyond ``max_sources`` the least recently advanced sources are
forgotten (their next event is then judged against nothing, i.e. not late).
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence


class SourceProgress:
    """Newest event time (epoch seconds) per source."""

    def __init__(self, allowed_lateness_s: float, max_sources: int = 200_000) -> None:
        self.allowed_lateness_s = allowed_lateness_s
        self.max_sources = max_sources
        self._newest: OrderedDict[str, float] = OrderedDict()

    def newest(self, source_id: str) -> float | None:
        return self._newest.get(source_id)

    def mark(self, sources: Sequence[str], times: Sequence[float]) -> list[bool]:
        """Late flag of each event (``sources[i]`` at ``times[i]``) in arrival order."""
        running: dict[str, float] = {}
        out: list[bool] = []
        for source, t in zip(sources, times, strict=True):
            have = running.get(source)
            if have is None:
                have = self._newest.get(source, t)
            out.append(t < have - self.allowed_lateness_s)
            running[source] = max(have, t)
        return out

    def advance(self, sources: Sequence[str], times: Sequence[float]) -> None:
        """The batch committed: its events move their sources' progress."""
        for source, t in zip(sources, times, strict=True):
            have = self._newest.get(source)
            if have is None or t > have:
                self._newest[source] = t
            self._newest.move_to_end(source)
        while len(self._newest) > self.max_sources:
            self._newest.popitem(last=False)

    @property
    def newest_overall(self) -> float:
        return max(self._newest.values(), default=0.0)
