"""The compact duplicate memory behaves exactly like a dict plus a FIFO ring of keys."""

from __future__ import annotations

from collections import deque

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ioccore.events.dedupe import SeenKeys


class Model:
    """The reference: the last ``capacity`` recorded keys, first in first out."""

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self.ring: deque[tuple[str, str]] = deque()
        self.seen: set[tuple[str, str]] = set()

    def add(self, source_id: str, event_id: str) -> bool:
        key = (source_id, event_id)
        if key in self.seen:
            return False
        self.seen.add(key)
        self.ring.append(key)
        if len(self.ring) > self.capacity:
            self.seen.discard(self.ring.popleft())
        return True

    def clear(self) -> None:
        self.ring.clear()
        self.seen.clear()


# Few distinct ids, so keys recur (duplicates, and keys coming back after eviction).
_KEY = st.tuples(st.sampled_from(["s1", "s2", "s3"]), st.integers(0, 40).map(str))
_OP = st.one_of(_KEY, st.just(None))  # None: clear()


@settings(max_examples=300, deadline=None)
@given(capacity=st.integers(1, 50), young_max=st.integers(1, 20),
       ops=st.lists(_OP, max_size=400))
def test_same_answers_as_the_dict_model(capacity: int, young_max: int,
                                        ops: list[tuple[str, str] | None]) -> None:
    store, model = SeenKeys(capacity, young_max=young_max), Model(capacity)
    for op in ops:
        if op is None:
            store.clear()
            model.clear()
            continue
        assert store.add(*op) == model.add(*op), op
        assert len(store) == len(model.ring)
    for key in {k for k in ops if k is not None}:
        assert (key in store) == (key in model.seen), key


@settings(max_examples=30, deadline=None)
@given(ops=st.lists(st.integers(0, 3000), min_size=1, max_size=3000))
def test_merges_with_a_large_window_match_the_model(ops: list[int]) -> None:
    store, model = SeenKeys(1000, young_max=64), Model(1000)
    for i in ops:
        assert store.add("src", f"e{i}") == model.add("src", f"e{i}")


@settings(max_examples=200, deadline=None)
@given(capacity=st.integers(1, 12), young_max=st.integers(1, 6),
       ops=st.lists(st.integers(0, 20), max_size=600))
def test_keys_recorded_again_after_eviction(capacity: int, young_max: int,
                                            ops: list[int]) -> None:
    """Few keys and long runs: keys come back after eviction many times (a dead copy and
    a live one of the same key side by side in the sorted arrays)."""
    store, model = SeenKeys(capacity, young_max=young_max), Model(capacity)
    for i in ops:
        assert store.add("s", str(i)) == model.add("s", str(i)), i


def test_forgets_exactly_capacity_recordings_later() -> None:
    store = SeenKeys(100_000)
    for i in range(250_000):
        assert store.add(f"s{i % 97}", str(i))
    for i in range(150_000, 250_000):
        assert not store.add(f"s{i % 97}", str(i))  # the last 100,000: remembered
    assert store.add(f"s{149_999 % 97}", "149999")  # evicted: fresh again
    assert len(store) == 100_000


def test_about_sixteen_bytes_a_key() -> None:
    store = SeenKeys(1_000_000)
    for i in range(1_000_000):
        store.add("source-1", str(i))
    assert store.nbytes <= 17 * 1_000_000


def test_capacity_must_be_positive() -> None:
    with pytest.raises(ValueError):
        SeenKeys(0)
