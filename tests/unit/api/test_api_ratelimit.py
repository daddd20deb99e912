"""Token buckets: burst, steady refill, Retry-After, per-key isolation."""

from __future__ import annotations

import pytest

from ioc.api.ratelimit import RateLimiter, TokenBucket


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_bucket_grants_capacity_then_waits_for_refill() -> None:
    b = TokenBucket(capacity=3, rate_per_s=1.0, now=0.0)
    assert [b.take(0.0) for _ in range(3)] == [0.0, 0.0, 0.0]
    assert b.take(0.0) == pytest.approx(1.0)
    assert b.take(0.5) == pytest.approx(0.5)
    assert b.take(1.0) == 0.0
    # refill never exceeds capacity
    assert [b.take(100.0) for _ in range(3)] == [0.0, 0.0, 0.0]
    assert b.take(100.0) > 0


def test_limiter_per_minute_and_retry_after() -> None:
    clock = Clock()
    lim = RateLimiter(6, clock=clock)  # 6 a minute: one token every 10 s
    assert all(lim.check("a") == 0.0 for _ in range(6))
    wait = lim.check("a")
    assert wait == pytest.approx(10.0)
    clock.now += 9.9
    assert lim.check("a") > 0
    clock.now += 0.2
    assert lim.check("a") == 0.0


def test_keys_do_not_share_buckets() -> None:
    clock = Clock()
    lim = RateLimiter(1, clock=clock)
    assert lim.check("a") == 0.0
    assert lim.check("a") > 0
    assert lim.check("b") == 0.0


def test_zero_disables_limiting() -> None:
    lim = RateLimiter(0)
    assert all(lim.check("a") == 0.0 for _ in range(1000))


def test_eviction_forgets_only_full_buckets() -> None:
    clock = Clock()
    lim = RateLimiter(60, clock=clock, max_keys=2)
    for _ in range(60):
        lim.check("busy")
    lim.check("idle")
    clock.now += 1.0  # "idle" is full again (59 + 1), "busy" has 1 token
    lim.check("new")  # evicts "idle" only
    assert lim.check("busy") == 0.0
    assert lim.check("busy") > 0  # its nearly empty bucket survived eviction
