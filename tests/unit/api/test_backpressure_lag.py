"""The pure part of admission control: lag in messages, consumption rate, lag in seconds."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from ioc.api.backpressure import GroupLag, consumption_rate, group_lag, lag_seconds


def test_group_lag_counts_from_the_committed_offset_or_the_first_one() -> None:
    end = {"a": 100, "b": 50, "c": 10}
    committed = {"a": 90, "b": -1}  # b: nothing committed; c: not listed
    assert group_lag(end, committed, {"a": 0, "b": 20, "c": 0}) == 10 + 30 + 10
    assert group_lag(end, {"a": 100, "b": 50, "c": 10}) == 0
    assert group_lag(end, {"a": 120}, {}) == 0 + 50 + 10  # never negative


def test_rate_over_the_history() -> None:
    assert consumption_rate([]) == 0.0
    assert consumption_rate([(1.0, 100)]) == 0.0
    assert consumption_rate([(1.0, 100), (2.0, 150), (3.0, 300)]) == 100.0
    assert consumption_rate([(1.0, 300), (3.0, 100)]) == 0.0  # offsets went back
    assert consumption_rate([(2.0, 100), (2.0, 200)]) == 0.0


def test_seconds_use_the_floor_when_the_worker_is_stopped() -> None:
    assert lag_seconds(0, 0.0, 20.0) == 0.0
    assert lag_seconds(100, 0.0, 20.0) == 5.0
    assert lag_seconds(100, 50.0, 20.0) == 2.0
    assert lag_seconds(100, 10.0, 20.0) == 5.0


def test_group_lag_history_keeps_the_window() -> None:
    g = GroupLag("stage1", "ioc-stage1", ("t",), window_s=5.0, floor=10.0)
    assert g.observe(0.0, 0, 0) == 0.0
    assert g.observe(1.0, 100, 200) == 2.0  # 100 msg/s
    for t in range(2, 20):
        g.observe(float(t), 100, 200)  # stopped: the rate decays to the floor
    assert g.history[0][0] >= 20 - 1 - 5.0
    assert g.seconds == 20.0


@given(st.lists(st.tuples(st.integers(0, 10_000), st.integers(0, 10_000)), min_size=1),
       st.floats(0, 1e6), st.floats(0.1, 1e4))
def test_seconds_grow_with_lag_and_never_go_negative(
        pairs: list[tuple[int, int]], rate: float, floor: float) -> None:
    end = {i: e for i, (e, _) in enumerate(pairs)}
    committed = {i: c for i, (_, c) in enumerate(pairs)}
    lag = group_lag(end, committed)
    assert lag >= 0
    s = lag_seconds(lag, rate, floor)
    assert s >= 0
    assert lag_seconds(lag + 1, rate, floor) > s
    assert s <= lag / floor + 1e-9


def test_idle_time_does_not_lower_the_rate() -> None:
    g = GroupLag("stage1", "ioc-stage1", ("t",), window_s=10.0, floor=10.0)
    for t in range(8):
        g.observe(float(t), 0, 0)  # idle: nothing to consume
    g.observe(8.0, 0, 500)
    g.observe(9.0, 200, 500)
    assert g.rate == 100.0  # from the last caught-up reading (7 s), not 200 / 9 s
