"""SenML packs into envelopes; derived event ids make a retransmission the same event."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone

from hypothesis import given
from hypothesis import strategies as st

from ioccore.events.validate import Validator
from ioccore.formats import senml
from ioccore.formats.eventid import derive

T0 = datetime(2025, 11, 3, 1, 0, tzinfo=UTC).timestamp()


def conv(pack: object, feed: str = "sensor") -> tuple[list[dict[str, object]], list[str]]:
    events, problems = senml.convert(pack, department="env", feed=feed, source_id="aq-1")
    return events, [p.reason for p in problems]


def test_base_fields_apply_until_changed_and_units_are_translated() -> None:
    pack = [{"bn": "urn:dev:mac:0024befffe804ff1:", "bt": T0, "bu": "Cel", "n": "temp",
             "v": 27.5},
            {"n": "temp", "t": 60, "v": 28.0},
            {"n": "hum", "u": "%RH", "v": 81},
            {"n": "pm2.5", "u": "ug/m3", "v": 35.2},
            {"u": "lat", "v": 21.0386}, {"u": "lon", "v": 105.838}]
    events, problems = conv(pack)
    assert problems == []
    bodies = [(e["occurred_at"], e["body"]) for e in events]
    assert bodies == [
        ("2025-11-03T01:00:00.000000Z", {"metric": "temperature", "value": 27.5, "unit": "C"}),
        ("2025-11-03T01:01:00.000000Z", {"metric": "temperature", "value": 28.0, "unit": "C"}),
        ("2025-11-03T01:00:00.000000Z", {"metric": "humidity", "value": 81.0, "unit": "%"}),
        ("2025-11-03T01:00:00.000000Z", {"metric": "pm25", "value": 35.2, "unit": "ug/m3"})]
    assert all(e["location"] == {"lat": 21.0386, "lon": 105.838} for e in events)
    validator = Validator(max_message_bytes=1 << 20, max_future_skew_s=300)
    records, rejections = validator.validate_items([json.dumps(e).encode() for e in events])
    assert rejections == [] and len(records) == 4


def test_refusals() -> None:
    assert conv({"v": 1})[1] == ["invalid_senml"]
    assert conv([])[1] == ["invalid_senml"]
    assert conv([{"n": "pm25", "v": 1}])[1] == ["senml_time_missing"]  # relative time
    assert conv([{"bt": T0, "n": "pm25", "vs": "high"}])[1] == ["senml_not_numeric"]
    assert conv([{"bt": T0, "n": "pm25", "v": 1, "x_": 1}])[1] == ["senml_must_understand"]
    assert conv([{"bt": T0, "n": "pm25", "v": 1}], feed="service")[1] == ["unsupported_feed"]
    assert conv([{"bt": T0, "n": "pm25", "v": 1}] * 1001)[1] == ["invalid_senml"]
    events, reasons = conv([{"bt": T0, "n": "pm25", "v": 1}, 7])
    assert len(events) == 1 and reasons == ["invalid_senml"]


def test_traffic_records_of_one_time_make_one_event() -> None:
    pack = [{"bt": T0, "n": "vehicle_count", "v": 42}, {"n": "speed", "u": "m/s", "v": 10},
            {"n": "occupancy", "u": "%", "v": 30}, {"n": "segment_id", "vs": "seg-9"}]
    events, problems = conv(pack, feed="traffic")
    assert problems == []
    assert [e["body"] for e in events] == [{"segment_id": "seg-9", "vehicle_count": 42,
                                            "avg_speed_kmh": 36.0, "occupancy": 0.3}]


def test_is_senml() -> None:
    assert senml.is_senml([{"bn": "x", "v": 1}])
    assert not senml.is_senml([{"schema_version": 1, "feed": "sensor"}])
    assert not senml.is_senml({"n": "x"})


@given(st.floats(min_value=-50, max_value=50, allow_nan=False),
       st.integers(min_value=-12, max_value=14), st.permutations(["n", "u", "v", "bt"]))
def test_a_retransmission_is_the_same_event(value: float, hours: int,
                                            order: list[str]) -> None:
    """Whatever key order, the same pack gives the same ids; the id follows the instant,
    not how its time zone was spelt."""
    record = {"n": "temperature", "u": "Cel", "v": value, "bt": T0}
    shuffled = {k: record[k] for k in order}
    a, _ = conv([record])
    b, _ = conv([shuffled])
    assert [e["event_id"] for e in a] == [e["event_id"] for e in b]
    when = datetime.fromtimestamp(T0, UTC)
    local = when.astimezone(timezone(timedelta(hours=hours)))
    body = {"metric": "x"}
    assert derive("s", when, body) == derive("s", local.isoformat(), body)
    assert derive("s", when, body) != derive("s", when + timedelta(microseconds=1), body)
    assert derive("s", when, body) != derive("t", when, body)
