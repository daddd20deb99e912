"""Finding an event's own bytes inside its raw message (dead letters of records): by the
batch position the validator reported, the message cut once however many are wanted."""

from __future__ import annotations

import json

from ioccore.events.record import Origin
from streams.deadletters import Elements


def test_the_element_at_a_batch_position_is_found() -> None:
    events = [{"source_id": "a", "event_id": str(i), "v": i} for i in range(4)]
    raw = json.dumps(events).encode()
    found = Elements({Origin("t", 0, 7): (b"k", raw)})
    assert found.find(Origin("t", 0, 7, 2)) == (b"k", json.dumps(events[2]).encode(), 2)
    broken = raw[:-1] + b', {"x" ]'  # a batch that no longer parses: the scanner cuts it
    found = Elements({Origin("t", 0, 7): (None, broken)})
    hit = found.find(Origin("t", 0, 7, 3))
    assert hit is not None and json.loads(hit[1]) == events[3] and hit[2] == 3


def test_a_single_event_a_bad_index_or_a_missing_message() -> None:
    single = json.dumps({"source_id": "a", "event_id": "1"}).encode()
    found = Elements({Origin("t", 0, 1): (None, single),
                      Origin("t", 0, 2): (None, b"[" + single + b"]")})
    assert found.find(Origin("t", 0, 1)) == (None, single, None)
    assert found.find(Origin("t", 0, 2, 5)) == (None, b"[" + single + b"]", None)
    assert found.find(Origin("t", 0, 3, 0)) is None


def test_origins_written_before_the_index_still_read() -> None:
    import msgspec

    assert msgspec.json.encode(Origin("t", 1, 2, 3)) == b'["t",1,2,3]'
    assert msgspec.json.decode(b'["t",1,2]', type=Origin) == Origin("t", 1, 2)
    assert Origin("t", 1, 2, 3).message == Origin("t", 1, 2)


def test_a_thousand_refusals_in_one_message_cost_one_split() -> None:
    """Issue 24, item 2: 250 / 500 / 1,000 refused events of one message took 0.68 / 2.8 /
    11.5 s (a re-split per refusal). Now one split per message: linear."""
    import time

    def cost(n: int) -> float:
        events = [{"source_id": "foreign", "event_id": f"e{i}", "pad": "x" * 150}
                  for i in range(n)]
        raw = json.dumps(events).encode()
        t0 = time.perf_counter()
        found = Elements({Origin("t", 0, 1): (b"k", raw)})
        for i in range(n):
            hit = found.find(Origin("t", 0, 1, i))
            assert hit is not None and hit[2] == i
        return time.perf_counter() - t0

    small, large = cost(250), cost(1000)
    assert large < 0.5, large
    assert large < 10 * small + 0.05, (small, large)  # quadratic would be x16
