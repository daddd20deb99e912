"""Per-source event-time progress, and the clock each alert scope is evaluated by.

Every source has its own progress: the newest ``occurred_at`` among its stored events, and
the wall-clock time its data last arrived. A source whose device clock runs ahead moves
only its own progress. A scope (a commune's data of one feed, or one source) is evaluated
up to the *slowest* of its sources that are still sending (Flink's minimum over inputs);
a source that has sent nothing for its idle grace is left out, and when every source of
a scope is idle the scope's clock advances on wall-clock time from where its data stopped
(Flink's watermark idleness), so a pending alert fires or clears and "no data" resolves.

The idle grace adapts to the source: ``clamp(1.5 x its longest gap, idle_grace,
idle_grace_max)``, where the gap is the longest wall-clock time between two of its
arrivals or the longest event-time span one arrival covered. A source that uploads an
hour at a time is therefore not judged idle between uploads (its next upload would
otherwise arrive after its minutes were evaluated without it).
"""

from __future__ import annotations

import heapq
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Protocol


@dataclass(frozen=True, slots=True)
class Sighting:
    """One source's stored records in one committed batch."""

    source_id: str
    feed: str
    department: str
    commune_code: str
    province_code: str
    newest: datetime
    """Newest ``occurred_at`` among them (event time)."""
    received_at: datetime
    """When they arrived (wall clock)."""
    oldest: datetime | None = None
    """Oldest ``occurred_at`` among them: a source that delivers an hour at once is
    expected to be silent for about that long (its idle grace grows to match)."""


class _RecordLike(Protocol):
    @property
    def source_id(self) -> str: ...
    @property
    def feed(self) -> str: ...
    @property
    def department(self) -> str: ...
    @property
    def commune_code(self) -> str: ...
    @property
    def province_code(self) -> str: ...
    @property
    def occurred_at(self) -> datetime: ...


def sightings(records: Iterable[_RecordLike], received_at: datetime) -> list[Sighting]:
    """One sighting per source of ``records`` (pass only records that were stored)."""
    newest: dict[str, _RecordLike] = {}
    oldest: dict[str, datetime] = {}
    for r in records:
        have = newest.get(r.source_id)
        if have is None or r.occurred_at > have.occurred_at:
            newest[r.source_id] = r
        first = oldest.get(r.source_id)
        if first is None or r.occurred_at < first:
            oldest[r.source_id] = r.occurred_at
    return [Sighting(r.source_id, r.feed, r.department, r.commune_code, r.province_code,
                     r.occurred_at, received_at, oldest[r.source_id])
            for r in newest.values()]


@dataclass(slots=True)
class SourceState:
    feed: str
    department: str
    commune_code: str
    province_code: str
    newest: datetime
    received_at: datetime
    gap: timedelta = timedelta(0)
    """Longest wall-clock gap seen between two of its arrivals."""


def feed_of(metric: str) -> str:
    """The feed a rollup metric comes from (``traffic.*``, ``service.*``, else sensor)."""
    head = metric.split(".", 1)[0]
    return head if head in ("traffic", "service") else "sensor"


EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


class Progress:
    """Progress of every source this evaluator has heard from (bounded: ``max_sources``)."""

    def __init__(self, *, idle_grace: timedelta, idle_grace_max: timedelta,
                 max_sources: int = 200_000) -> None:
        self.idle_grace = idle_grace
        self.idle_grace_max = max(idle_grace_max, idle_grace)
        self.max_sources = max_sources
        self.sources: dict[str, SourceState] = {}
        self._groups: dict[tuple[str, str], set[str]] = defaultdict(set)
        self._deadlines: list[tuple[datetime, str]] = []
        """(wall time it may turn idle, source): a heap, one live entry per source."""
        self._queued: dict[str, datetime] = {}
        """The deadline of each source's live heap entry (at most its current deadline:
        a sighting that moves it later does not push; the pop re-queues)."""

    def updated(self, s: Sighting) -> SourceState:
        """The state of ``s.source_id`` after this sighting (not stored: see ``put``)."""
        have = self.sources.get(s.source_id)
        span = s.newest - s.oldest if s.oldest is not None else timedelta(0)
        if have is None:
            return SourceState(s.feed, s.department, s.commune_code, s.province_code,
                               s.newest, s.received_at, span)
        gap = max(have.gap, s.received_at - have.received_at, span)
        return SourceState(s.feed, s.department, s.commune_code or have.commune_code,
                           s.province_code or have.province_code, max(have.newest, s.newest),
                           max(have.received_at, s.received_at), gap)

    def put(self, source_id: str, state: SourceState | None) -> None:
        old = self.sources.get(source_id)
        if old is not None:
            self._groups[(old.commune_code, old.feed)].discard(source_id)
        if state is None:
            self.sources.pop(source_id, None)
            return
        self.sources[source_id] = state
        self._groups[(state.commune_code, state.feed)].add(source_id)
        at = self.idle_at(state)
        queued = self._queued.get(source_id)
        if queued is None or at < queued:
            heapq.heappush(self._deadlines, (at, source_id))
            self._queued[source_id] = at

    def idle_at(self, s: SourceState) -> datetime:
        """The wall time ``s`` turns idle if nothing more arrives from it."""
        return s.received_at + self.idle_after(s)

    def turning_idle(self, wall_now: datetime) -> list[tuple[datetime, str]]:
        """Take the (deadline, source) entries due by ``wall_now`` whose source is, in
        its current state, idle from that deadline: the sources whose idleness moved
        their scopes' clocks since the last call (hand them back with :meth:`requeue`
        if the evaluation that took them is undone)."""
        if len(self._deadlines) > 4 * max(len(self.sources), 1024):  # mostly stale
            self._deadlines = [(self.idle_at(s), i) for i, s in self.sources.items()
                               if i in self._queued]
            heapq.heapify(self._deadlines)
            self._queued = {i: at for at, i in self._deadlines}
        out: list[tuple[datetime, str]] = []
        while self._deadlines and self._deadlines[0][0] <= wall_now:
            at, source_id = heapq.heappop(self._deadlines)
            if self._queued.get(source_id) != at:
                continue  # superseded by an earlier entry
            del self._queued[source_id]
            s = self.sources.get(source_id)
            if s is None:
                continue
            now_at = self.idle_at(s)
            if now_at <= wall_now:
                out.append((at, source_id))
            else:  # heard from since it was queued: wait for its current deadline
                heapq.heappush(self._deadlines, (now_at, source_id))
                self._queued[source_id] = now_at
        return out

    def requeue(self, entries: Iterable[tuple[datetime, str]]) -> None:
        """Hand back what :meth:`turning_idle` took (its evaluation was undone)."""
        for at, source_id in entries:
            queued = self._queued.get(source_id)
            if queued is None or at < queued:
                heapq.heappush(self._deadlines, (at, source_id))
                self._queued[source_id] = at

    def idle_after(self, s: SourceState) -> timedelta:
        return min(self.idle_grace_max, max(self.idle_grace, s.gap * 1.5))

    def idle(self, s: SourceState, wall_now: datetime) -> bool:
        return wall_now - s.received_at >= self.idle_after(s)

    def clock_of(self, states: Sequence[SourceState], wall_now: datetime) -> datetime | None:
        """Event time up to which these sources' data is complete (see module docstring)."""
        if not states:
            return None
        active = [s.newest for s in states if not self.idle(s, wall_now)]
        if active:
            return min(active)
        return max(s.newest + (wall_now - s.received_at) for s in states)

    def clock(self, commune: str, feed: str, wall_now: datetime) -> datetime | None:
        ids = self._groups.get((commune, feed), ())
        return self.clock_of([self.sources[i] for i in ids if i in self.sources], wall_now)

    def all_idle(self, commune: str, feed: str, wall_now: datetime) -> bool:
        """Every source of the scope is idle: its clock moves with the wall clock."""
        return all(self.idle(self.sources[i], wall_now)
                   for i in self._groups.get((commune, feed), ()) if i in self.sources)

    def source_clock(self, source_id: str, wall_now: datetime) -> datetime | None:
        s = self.sources.get(source_id)
        return self.clock_of([s], wall_now) if s is not None else None

    def evict(self) -> list[str]:
        """Drop the longest-silent sources beyond ``max_sources``; returns their ids."""
        extra = len(self.sources) - self.max_sources
        if extra <= 0:
            return []
        oldest = sorted(self.sources, key=lambda i: self.sources[i].received_at)[:extra]
        for i in oldest:
            self.put(i, None)
        return oldest
