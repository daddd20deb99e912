"""The gateway's envelopes: per (feed, source), in order, bounded by events and bytes."""

from __future__ import annotations

import orjson
from hypothesis import given
from hypothesis import strategies as st

from ioc.api import ingest
from ioc.api.ingest import Verdict, envelopes
from ioc.api.validation import Accepted


def verdict(i: int, source: str, feed: str = "sensor", pad: int = 0) -> Verdict:
    raw = orjson.dumps({"event_id": f"e{i}", "source_id": source, "pad": "x" * pad})
    rec = Accepted(department="d", feed=feed, source_id=source, commune_code=None, lat=None,
                   lon=None)
    return Verdict(raw, event_id=f"e{i}", feed=feed, record=rec)


def test_one_envelope_per_source_in_order() -> None:
    todo = [verdict(0, "a"), verdict(1, "b"), verdict(2, "a"), verdict(3, "c", "traffic")]
    got = [(feed, src, [v.event_id for v in g]) for feed, src, g in envelopes(todo, 10_000)]
    assert got == [("sensor", "a", ["e0", "e2"]), ("sensor", "b", ["e1"]),
                   ("traffic", "c", ["e3"])]


def test_bytes_and_event_bounds_split_a_source() -> None:
    todo = [verdict(i, "a", pad=100) for i in range(5)]
    size = len(todo[0].raw)
    groups = envelopes(todo, 2 + 2 * (size + 1))  # two events fit, a third does not
    assert [len(g) for _, _, g in groups] == [2, 2, 1]
    many = [verdict(i, "a") for i in range(ingest.ENVELOPE_MAX_EVENTS + 1)]
    assert [len(g) for _, _, g in envelopes(many, 10**9)] == [ingest.ENVELOPE_MAX_EVENTS, 1]


@given(st.lists(st.tuples(st.sampled_from("abc"), st.integers(0, 300)), max_size=60),
       st.integers(50, 2000))
def test_every_event_once_order_kept_and_within_bounds(spec: list[tuple[str, int]],
                                                       max_bytes: int) -> None:
    todo = [verdict(i, src, pad=pad) for i, (src, pad) in enumerate(spec)]
    groups = envelopes(todo, max_bytes)
    flat = [v for _, _, g in groups for v in g]
    assert sorted(id(v) for v in flat) == sorted(id(v) for v in todo)
    for src in "abc":  # per source, the order as sent
        assert [v.event_id for v in flat if v.record and v.record.source_id == src] == [
            v.event_id for v in todo if v.record and v.record.source_id == src]
    for _, src, g in groups:
        assert {v.record.source_id for v in g if v.record} == {src}
        value = b"[" + b",".join(v.raw for v in g) + b"]"
        assert len(g) == 1 or len(value) <= max_bytes  # one oversize event goes alone
        assert [e["event_id"] for e in orjson.loads(value)] == [v.event_id for v in g]
