"""Dead letters as the console shows them: any bytes and headers parse (never raise),
the raw event is kept bounded, the event id is read when the value is a JSON object, and
the department is the publisher's header (issue 24, item 8)."""

from __future__ import annotations

import orjson
from hypothesis import given
from hypothesis import strategies as st

from ioc.api.console import security_headers
from ioc.api.console_feeds import VALUE_PREVIEW_BYTES, parse_dead_letter


@given(key=st.none() | st.binary(max_size=64), value=st.none() | st.binary(max_size=5000),
       headers=st.lists(st.tuples(st.text(max_size=20), st.none() | st.binary(max_size=50)),
                        max_size=8))
def test_any_message_parses(key: bytes | None, value: bytes | None,
                            headers: list[tuple[str, bytes | None]]) -> None:
    row = parse_dead_letter(0, 1, 1_700_000_000_000, key, value, headers)
    assert len(row.value_preview.encode("utf-8", "replace")) <= 4 * VALUE_PREVIEW_BYTES
    assert row.reason  # "unknown" when the header is missing
    assert row.as_json()["offset"] == 1


def test_reads_the_event_and_the_reason() -> None:
    event = {"event_id": "aq-1", "department": "env", "body": {"unit": "furlongs"}}
    row = parse_dead_letter(2, 7, 1_700_000_000_000, b"aq-01", orjson.dumps(event),
                            [("ioc-reason", b"unknown_unit"), ("ioc-feed", b"sensor"),
                             ("ioc-message", b"unit 'furlongs' is not accepted"),
                             ("ioc-department", b"water")])
    assert (row.reason, row.feed, row.department, row.event_id, row.source_id) == (
        "unknown_unit", "sensor", "water", "aq-1", "aq-01")
    # issue 24, item 8: the publisher is the header, never the event's claim or the key
    unattributed = parse_dead_letter(2, 8, 0, b"aq-01", orjson.dumps(event), [])
    assert unattributed.department is None
    not_object = parse_dead_letter(0, 0, 0, None, b"[1, 2]", [])
    assert not_object.department is None and not_object.reason == "unknown"


def test_tile_server_is_the_only_other_origin() -> None:
    assert "img-src 'self' data:;" in security_headers(None)["Content-Security-Policy"]
    csp = security_headers("https://tiles.example.vn/{z}/{x}/{y}.png")["Content-Security-Policy"]
    assert "img-src 'self' data: https://tiles.example.vn;" in csp
    assert "connect-src 'self'" in csp
