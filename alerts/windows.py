"""The evaluator's copy of the one-minute windows, and aggregates over them.

Stage 2 sends window totals (never increments): putting the same minute again replaces
it, so a late event that corrects an old minute changes what evaluations of later
minute boundaries see. Minutes no evaluation can read again are dropped by
:meth:`WindowStore.prune_by` (the evaluator decides per scope from its clock).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from alerts.model import WindowPoint

MINUTE = timedelta(minutes=1)
SeriesKey = tuple[str, str | None, str]
"""(commune_code, source_id or None, metric)."""


@dataclass(slots=True)
class MinuteTotals:
    count: int
    sum: float
    min: float
    max: float
    last: float


def floor_minute(at: datetime) -> datetime:
    return at.replace(second=0, microsecond=0)


class WindowStore:
    """Minute totals per (commune, source or None, metric)."""

    def __init__(self) -> None:
        self._series: dict[SeriesKey, dict[datetime, MinuteTotals]] = {}
        self._by_metric: dict[str, set[tuple[str, str | None]]] = defaultdict(set)
        self._by_commune: dict[tuple[str, str], set[str | None]] = defaultdict(set)
        """(metric, commune) -> sources (None: the commune's own series) holding it."""
        self._communes: dict[str, int] = {}
        self.province_of: dict[str, str] = {}
        self.source_commune: dict[str, str] = {}

    def put(self, point: WindowPoint) -> SeriesKey:
        key: SeriesKey = (point.commune_code, point.source_id, point.metric)
        series = self._series.get(key)
        if series is None:
            series = self.create(key)
        series[floor_minute(point.minute)] = MinuteTotals(
            point.count, point.sum, point.min, point.max, point.last)
        self.province_of[point.commune_code] = point.province_code
        if point.source_id is not None:
            self.source_commune[point.source_id] = point.commune_code
        return key

    @property
    def raw(self) -> dict[SeriesKey, dict[datetime, MinuteTotals]]:
        """The series themselves (the evaluator's undo log restores entries of it)."""
        return self._series

    def series(self, key: SeriesKey) -> dict[datetime, MinuteTotals] | None:
        return self._series.get(key)

    def create(self, key: SeriesKey) -> dict[datetime, MinuteTotals]:
        series = self._series[key] = {}
        self._by_metric[key[2]].add((key[0], key[1]))
        self._by_commune[(key[2], key[0])].add(key[1])
        self._communes[key[0]] = self._communes.get(key[0], 0) + 1
        return series

    def has_commune(self, commune: str) -> bool:
        return self._communes.get(commune, 0) > 0

    def first(self, commune: str, source: str | None, metric: str) -> datetime | None:
        series = self._series.get((commune, source, metric))
        return min(series) if series else None

    def next_after(self, commune: str, source: str | None, metric: str, after: datetime
                   ) -> datetime | None:
        """The first minute later than ``after`` that holds data."""
        series = self._series.get((commune, source, metric))
        if not series:
            return None
        later = [m for m in series if m > after]
        return min(later) if later else None

    def prune_by(self, before: Callable[[str, str], datetime | None]) -> None:
        """Forget each series' minutes before ``before(commune, metric)`` (None: keep)."""
        empty: list[SeriesKey] = []
        for key, series in self._series.items():
            cut = before(key[0], key[2])
            if cut is None:
                continue
            for m in [m for m in series if m < cut]:
                del series[m]
            if not series:
                empty.append(key)
        for key in empty:
            self._drop(key)

    def _drop(self, key: SeriesKey) -> None:
        del self._series[key]
        self._by_metric[key[2]].discard((key[0], key[1]))
        of_commune = self._by_commune.get((key[2], key[0]))
        if of_commune is not None:
            of_commune.discard(key[1])
            if not of_commune:
                del self._by_commune[(key[2], key[0])]
        n = self._communes.get(key[0], 0) - 1
        if n > 0:
            self._communes[key[0]] = n
        else:
            self._communes.pop(key[0], None)

    def keys(self, metric: str) -> Iterable[tuple[str, str | None]]:
        """(commune, source) pairs holding ``metric``."""
        return self._by_metric.get(metric, ())

    def sources_in(self, metric: str, commune: str) -> Iterable[str | None]:
        """Sources (None: the commune's own series) of ``commune`` holding ``metric``."""
        return self._by_commune.get((metric, commune), ())

    def minutes(self, commune: str, source: str | None, metric: str, now: datetime,
                window: timedelta) -> list[tuple[datetime, MinuteTotals]]:
        """Minutes in the window ending with the minute holding ``now``, oldest first."""
        series = self._series.get((commune, source, metric))
        if not series:
            return []
        last = floor_minute(now)
        first = last - window + MINUTE
        return sorted((m, t) for m, t in series.items() if first <= m <= last)

    def prune(self, before: datetime) -> None:
        """Forget minutes starting before ``before``."""
        empty: list[SeriesKey] = []
        for key, series in self._series.items():
            old = [m for m in series if m < before]
            for m in old:
                del series[m]
            if not series:
                empty.append(key)
        for key in empty:
            self._drop(key)


def merge(rows: Iterable[list[tuple[datetime, MinuteTotals]]]) -> list[tuple[datetime,
                                                                          MinuteTotals]]:
    """Add several series minute by minute (a province from its communes)."""
    acc: dict[datetime, MinuteTotals] = {}
    for series in rows:
        for minute, t in series:
            have = acc.get(minute)
            if have is None:
                acc[minute] = MinuteTotals(t.count, t.sum, t.min, t.max, t.last)
            else:
                have.count += t.count
                have.sum += t.sum
                have.min = min(have.min, t.min)
                have.max = max(have.max, t.max)
                have.last += t.last  # province "last" = sum of its communes' last values
    return sorted(acc.items())


def aggregate(kind: str, minutes: list[tuple[datetime, MinuteTotals]],
              min_count: int = 1) -> float | None:
    """``avg``/``min``/``max``/``sum``/``count``/``last``/``rate`` over the minutes.

    ``None`` when there are fewer than ``min_count`` events (``rate``: fewer than two
    minutes with data). ``rate`` is the change of the per-minute ``last`` value per hour.
    """
    if not minutes:
        return None
    count = sum(t.count for _, t in minutes)
    if count < min_count and kind != "count":
        return None
    if kind == "count":
        return float(count)
    if kind == "sum":
        return sum(t.sum for _, t in minutes)
    if kind == "avg":
        return sum(t.sum for _, t in minutes) / count if count else None
    if kind == "min":
        return min(t.min for _, t in minutes)
    if kind == "max":
        return max(t.max for _, t in minutes)
    if kind == "last":
        return minutes[-1][1].last
    # rate
    if len(minutes) < 2:
        return None
    (m0, t0), (m1, t1) = minutes[0], minutes[-1]
    hours = (m1 - m0).total_seconds() / 3600
    return (t1.last - t0.last) / hours
