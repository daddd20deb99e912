"""Request bodies: size limit while reading, JSON arrays, NDJSON, per-event verdicts."""

from __future__ import annotations

from collections.abc import AsyncIterator
from types import SimpleNamespace
from typing import Any

import orjson
import pytest

from ioc.api.errors import BadRequestError, PayloadTooLargeError, UnsupportedMediaError
from ioc.api.ingest import read_body, split_events, validate
from ioccore.events.validate import Validator


def event(i: int = 0, **over: Any) -> dict[str, Any]:
    e: dict[str, Any] = {
        "schema_version": 1, "feed": "sensor", "event_id": f"e{i}", "source_id": "aq-1",
        "department": "env", "occurred_at": "2025-11-03T08:00:00+07:00",
        "location": {"lat": 21.03, "lon": 105.85},
        "body": {"metric": "pm25", "value": 42.0, "unit": "ug/m3"},
    }
    e.update(over)
    return e


async def chunks(parts: list[bytes], consumed: list[int]) -> AsyncIterator[bytes]:
    for p in parts:
        consumed.append(len(p))
        yield p


async def test_body_under_the_limit_is_read_whole() -> None:
    seen: list[int] = []
    body = await read_body(chunks([b"ab", b"cd"], seen), limit=4)
    assert body == b"abcd"


async def test_declared_length_over_the_limit_is_refused_before_reading() -> None:
    seen: list[int] = []
    with pytest.raises(PayloadTooLargeError):
        await read_body(chunks([b"x" * 10], seen), limit=4, content_length="10")
    assert seen == []


async def test_streamed_body_is_refused_as_soon_as_it_passes_the_limit() -> None:
    seen: list[int] = []
    with pytest.raises(PayloadTooLargeError):
        await read_body(chunks([b"xxx", b"xxx", b"xxx", b"xxx"], seen), limit=5)
    assert len(seen) == 2  # stopped reading at the chunk that crossed the limit


async def test_bad_content_length() -> None:
    with pytest.raises(BadRequestError):
        await read_body(chunks([], []), limit=5, content_length="many")


def test_json_array_splits_into_elements() -> None:
    body = orjson.dumps([event(0), event(1)])
    items = split_events(body, "application/json; charset=utf-8")
    assert [orjson.loads(i)["event_id"] for i in items] == ["e0", "e1"]


def test_single_object_is_one_event() -> None:
    assert len(split_events(orjson.dumps(event()), "application/json")) == 1


def test_broken_array_element_keeps_its_neighbours() -> None:
    body = b"[" + orjson.dumps(event(0)) + b", {not json}, " + orjson.dumps(event(2)) + b"]"
    items = split_events(body, "application/json")
    assert len(items) == 3
    assert items[1] == b"{not json}"


def test_ndjson_lines_skip_blanks_and_crlf() -> None:
    body = orjson.dumps(event(0)) + b"\r\n\n" + orjson.dumps(event(1)) + b"\n"
    items = split_events(body, "application/x-ndjson")
    assert [orjson.loads(i)["event_id"] for i in items] == ["e0", "e1"]


@pytest.mark.parametrize(("body", "ctype", "error"), [
    (b"[]", "application/json", BadRequestError),
    (b"  ", "application/json", BadRequestError),
    (b"\n\n", "application/x-ndjson", BadRequestError),
    (b"42", "application/json", BadRequestError),
    (b"[]", "text/plain", UnsupportedMediaError),
])
def test_unusable_bodies(body: bytes, ctype: str, error: type[Exception]) -> None:
    with pytest.raises(error):
        split_events(body, ctype)


def test_validate_maps_verdicts_to_their_index() -> None:
    res = SimpleNamespace(
        settings=SimpleNamespace(kafka=SimpleNamespace(max_message_bytes=2000)),
        validator=Validator(max_message_bytes=2000, max_future_skew_s=300))
    items = [orjson.dumps(event(0)), b"{oops", orjson.dumps(event(2)),
             orjson.dumps(event(3, note="x" * 3000)),
             orjson.dumps(event(4, body={"metric": "pm25", "value": 1, "unit": "furlongs"})),
             orjson.dumps(event(5))]
    verdicts = validate(res, items)  # type: ignore[arg-type]
    got = [(v.event_id, v.reason) for v in verdicts]
    assert got[0] == ("e0", None)
    assert got[1] == (None, "not_json")
    assert got[2] == ("e2", None)
    assert got[3][1] == "message_too_large"
    assert got[4] == ("e4", "unknown_unit")
    assert got[5] == ("e5", None)
    assert verdicts[0].record is not None and verdicts[0].record.source_id == "aq-1"
    assert verdicts[5].record is not None and verdicts[5].record.feed == "sensor"
    assert verdicts[4].feed == "sensor"
