"""Stage 1's one-event fast path gives what full validation gives, or declines.

``Validator.accept_one`` and ``has_forbidden`` replace, for the common message, the
general ``validate`` call and the regex search: whatever the bytes, the fast path must
either decline (None) or return the very record ``validate`` returns, and
``has_forbidden`` must agree with the regex on every string.
"""

from __future__ import annotations

from typing import Any

import msgspec
from hypothesis import given, settings
from hypothesis import strategies as st

from ioccore.events.validate import (
    FORBIDDEN_CHARS,
    ONE_EVENT_FAST_MAX,
    Validator,
    has_forbidden,
)
from streams import deadletters
from streams.prepare import InMessage, Prepare

NOW = 1_762_160_000.0
VALIDATOR = Validator(max_message_bytes=1 << 20, max_future_skew_s=300,
                      known_commune={"00004", "00007"})


def _event(feed: str, i: int, *, when: str, ident: str, value: float, unit: str,
           code: str | None, status: str) -> dict[str, Any]:
    body: dict[str, Any] = {
        "sensor": {"metric": "pm25", "value": value, "unit": unit},
        "traffic": {"segment_id": f"seg-{ident}", "vehicle_count": int(abs(value)) % 500,
                    "avg_speed_kmh": 30.5, "occupancy": 0.4},
        "service": {"dossier_id": f"hs-{ident}", "procedure_code": "1.0001", "agency": "ubnd",
                    "channel": "online", "status": status,
                    "due_at": "2025-11-10T08:00:00+07:00", "fee_bearing": False,
                    "digitised": True,
                    **({"resolved_at": "2025-11-04T08:00:00+07:00"}
                       if status == "resolved" else {})},
    }[feed]
    ev: dict[str, Any] = {"schema_version": 1, "feed": feed, "event_id": f"e{i}-{ident}",
                          "source_id": f"src-{ident}", "department": "01-nnmt",
                          "occurred_at": when, "body": body}
    if code is not None:
        ev["commune_code"] = code
    else:
        ev["location"] = {"lat": 21.03, "lon": 105.85}
    return ev


EVENTS = st.builds(
    _event, st.sampled_from(["sensor", "traffic", "service"]), st.integers(0, 10**6),
    when=st.sampled_from(["2025-11-03T08:00:00+07:00", "2025-11-03T01:00:00Z",
                          "2099-01-01T00:00:00Z", "1999-12-31T23:59:59Z",
                          "2025-11-03T08:00:00"]),
    ident=st.one_of(st.text("abz-09", min_size=1, max_size=12),  # mostly valid ones
                    st.text("aĐ\u00a0µ", min_size=1, max_size=4),
                    st.text(st.characters(codec="utf-8"), min_size=1, max_size=12)),
    value=st.floats(-1e4, 1e4, allow_nan=False),
    unit=st.sampled_from(["µg/m3", "ug/m3", "mg/m3", "ppm", "kg", " ug/m3"]),
    code=st.sampled_from([None, "00004", "00007", "99999", "4"]),
    status=st.sampled_from(["received", "in_progress", "resolved", "paid", "returned"]))


def _mangle(raw: bytes, cut: int, junk: bytes) -> bytes:
    return raw[:cut % (len(raw) + 1)] + junk


VALUES = st.one_of(
    EVENTS.map(msgspec.json.encode),
    EVENTS.map(msgspec.json.encode),  # twice: about a third of the values are valid
    EVENTS.map(lambda e: b" " + msgspec.json.encode(e)),  # whitespace first: declined
    EVENTS.map(lambda e: msgspec.json.encode([e])),  # a batch: declined
    st.builds(_mangle, EVENTS.map(msgspec.json.encode), st.integers(0, 2000),
              st.sampled_from([b"", b"}", b'"', b"\x00", b"{}"])),
    st.binary(max_size=64))


@settings(max_examples=300)
@given(VALUES, st.sampled_from([None, "sensor", "traffic", "service"]))
def test_the_fast_path_returns_what_validate_returns_or_declines(
        value: bytes, feed: str | None) -> None:
    fast = VALIDATOR.accept_one(value, NOW, feed)
    records, rejections = VALIDATOR.validate(value, now=NOW, expected_feed=feed,
                                             key=b"k", check_key=True)
    if fast is not None:
        assert (records, rejections) == ([fast], [])
    elif value[:1] == b"{" and len(value) <= ONE_EVENT_FAST_MAX:
        assert not (len(records) == 1 and not rejections)  # declined only what fails


def test_a_value_over_the_fast_bound_is_left_to_validate() -> None:
    ev = _event("sensor", 1, when="2025-11-03T01:00:00Z", ident="x", value=5.0,
                unit="ug/m3", code="00004", status="received")
    value = b"{" + b" " * ONE_EVENT_FAST_MAX + msgspec.json.encode(ev)[1:]
    assert VALIDATOR.accept_one(value, NOW, None) is None
    assert len(VALIDATOR.validate(value, now=NOW)[0]) == 1


@given(st.text(st.characters(codec="utf-8")))
def test_has_forbidden_agrees_with_the_regex(text: str) -> None:
    assert has_forbidden(text) == (FORBIDDEN_CHARS.search(text) is not None)


@settings(max_examples=200)
@given(st.lists(st.tuples(st.sampled_from(["ioc.raw.sensor.v1", "ioc.raw.traffic.v1"]),
                          st.integers(0, 2), st.booleans(), VALUES), max_size=30))
def test_prepare_accounts_for_every_message_with_or_without_the_fast_path(
        batch: list[tuple[str, int, bool, bytes]]) -> None:
    """Every message ends as records or dead letters, each record knows its message, and
    the fast path changes nothing (against a validator that never takes it)."""
    class Full(Validator):
        def accept_one(self, value: bytes, now: float, expected_feed: str | None
                       ) -> None:
            return None

    feeds: dict[str, Any] = {"ioc.raw.sensor.v1": "sensor", "ioc.raw.traffic.v1": "traffic"}
    messages = [InMessage(topic, part, i, b"k" if keyed else None, value)
                for i, (topic, part, keyed, value) in enumerate(batch)]

    class Index:
        def lookup(self, lat: Any, lon: Any, ids: Any) -> tuple[Any, Any]:
            return ["00004"] * len(lat), ["contains"] * len(lat)

        def province_of(self, codes: Any) -> Any:
            return ["01"] * len(codes)

        def check_code(self, code: str) -> tuple[str, str]:
            return code, "code"

    def run(validator: Validator) -> Any:
        prepare = Prepare(validator, Index(), feeds, publisher=deadletters.named_department,
                          message_budget_s=5.0)
        return prepare.run(messages, NOW)

    fast = run(VALIDATOR)
    full = run(Full(max_message_bytes=1 << 20, max_future_skew_s=300,
                    known_commune={"00004", "00007"}))
    assert fast.records == full.records
    assert fast.deadletters == full.deadletters
    assert fast.received == full.received and fast.rejected == full.rejected
