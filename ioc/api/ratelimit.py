"""Per-key rate limiting with token buckets.

Each key has a bucket of ``capacity`` tokens refilled at ``per_minute / 60`` tokens a
second (monotonic clock). A request takes one token; with none left it is refused with
the time until a token is back (the ``Retry-After`` of the 429). The default capacity
is one minute's worth, so a client may burst its whole minute at once and then
continues at the steady rate. State is per process: with N API processes behind a
balancer a key gets up to N times the rate.
"""

from __future__ import annotations

import time
from collections.abc import Callable


class TokenBucket:
    """One key's bucket. ``take`` never blocks."""

    __slots__ = ("capacity", "rate", "tokens", "updated")

    def __init__(self, capacity: float, rate_per_s: float, now: float) -> None:
        self.capacity = capacity
        self.rate = rate_per_s
        self.tokens = capacity
        self.updated = now

    def take(self, now: float, cost: float = 1.0) -> float:
        """Take ``cost`` tokens: 0.0 when granted, else seconds until they are there."""
        elapsed = now - self.updated
        if elapsed > 0:
            self.tokens = min(self.capacity, self.tokens + elapsed * self.rate)
            self.updated = now
        if self.tokens >= cost:
            self.tokens -= cost
            return 0.0
        if self.rate <= 0:
            return float("inf")
        return (cost - self.tokens) / self.rate


class RateLimiter:
    """Token buckets by key id; ``per_minute <= 0`` disables limiting."""

    def __init__(self, per_minute: int, *, burst: float | None = None,
                 clock: Callable[[], float] = time.monotonic,
                 max_keys: int = 100_000) -> None:
        self.per_minute = per_minute
        self.rate = per_minute / 60.0
        self.capacity = float(burst if burst is not None else per_minute)
        self._clock = clock
        self._max_keys = max_keys
        self._buckets: dict[str, TokenBucket] = {}

    def check(self, key: str, cost: float = 1.0) -> float:
        """0.0 when ``key`` may proceed, else the seconds to wait before retrying."""
        if self.per_minute <= 0:
            return 0.0
        now = self._clock()
        bucket = self._buckets.get(key)
        if bucket is None:
            if len(self._buckets) >= self._max_keys:
                self._evict_full(now)
            bucket = self._buckets[key] = TokenBucket(self.capacity, self.rate, now)
        return bucket.take(now, cost)

    def wait(self, key: str, cost: float = 1.0) -> float:
        """Like :meth:`check`, but takes nothing: for a cost charged only on failure."""
        if self.per_minute <= 0:
            return 0.0
        bucket = self._buckets.get(key)
        if bucket is None:
            return 0.0
        bucket.take(self._clock(), 0.0)  # refill up to now
        if bucket.tokens >= cost:
            return 0.0
        return float("inf") if bucket.rate <= 0 else (cost - bucket.tokens) / bucket.rate

    def debit(self, key: str, cost: float) -> None:
        """Take ``cost`` tokens whatever is left (the bucket may go below zero): for a
        cost known only after the work, e.g. the events of a request just validated."""
        if self.per_minute <= 0 or cost <= 0:
            return
        now = self._clock()
        bucket = self._buckets.get(key)
        if bucket is None:
            if len(self._buckets) >= self._max_keys:
                self._evict_full(now)
            bucket = self._buckets[key] = TokenBucket(self.capacity, self.rate, now)
        bucket.take(now, 0.0)  # refill up to now
        bucket.tokens -= cost

    def _evict_full(self, now: float) -> None:
        """Drop buckets that have refilled completely (forgetting them changes nothing)."""
        full = [k for k, b in self._buckets.items()
                if b.tokens + (now - b.updated) * b.rate >= b.capacity]
        for k in full:
            del self._buckets[k]
        if len(self._buckets) >= self._max_keys:  # all busy: start over rather than grow
            self._buckets.clear()
