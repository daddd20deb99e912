"""Finding an event's own bytes inside its raw message (the storage-refused path)."""

from __future__ import annotations

import json

from streams.originals import element_of


def test_the_element_of_a_batch_is_found_by_source_and_event_id() -> None:
    events = [{"source_id": "a", "event_id": str(i), "v": i} for i in range(4)]
    events.append({"source_id": "b", "event_id": "2"})  # same id, other source
    raw = json.dumps(events).encode()
    value, index = element_of(raw, "b", "2")
    assert (json.loads(value), index) == ({"source_id": "b", "event_id": "2"}, 4)
    value, index = element_of(raw, "a", "2")
    assert (value, index) == (json.dumps(events[2]).encode(), 2)


def test_a_single_event_or_no_match_gives_the_whole_message() -> None:
    single = json.dumps({"source_id": "a", "event_id": "1"}).encode()
    assert element_of(single, "a", "1") == (single, None)
    batch = json.dumps([{"source_id": "a", "event_id": "1"}]).encode()
    assert element_of(batch, "a", "9") == (batch, None)
