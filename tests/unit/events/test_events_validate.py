"""Validator behaviour beyond the corpus: records, units, batches, dedupe."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import msgspec
import pytest

from ioccore.errors import ContractError
from ioccore.events import units
from ioccore.events.batch_split import split_array
from ioccore.events.models import METRIC_NAMES
from ioccore.events.record import Record
from ioccore.events.validate import Validator

NOW = 1_762_160_000.0


def sensor(i: int = 1, **body: Any) -> dict[str, Any]:
    b = {"metric": "pm25", "value": 55.2, "unit": "µg/m3"}
    b.update(body)
    return {"schema_version": 1, "feed": "sensor", "event_id": f"e{i}", "source_id": "aq-1",
            "department": "01-nnmt", "occurred_at": "2025-11-03T08:00:00+07:00",
            "location": {"lat": 21.03, "lon": 105.85}, "body": b}


def val(**kw: Any) -> Validator:
    return Validator(max_message_bytes=1 << 20, max_future_skew_s=300, **kw)


def test_sensor_record_is_canonical_and_utc() -> None:
    [rec], [] = val().validate(msgspec.json.encode(sensor(unit="mg/m3", value=0.0552)), now=NOW)
    assert isinstance(rec, Record)
    assert rec.unit == "ug/m3" and rec.value == pytest.approx(55.2)
    assert rec.occurred_at == datetime(2025, 11, 3, 1, 0, tzinfo=UTC)
    assert rec.occurred_at.utcoffset() is not None and rec.occurred_at.tzinfo is UTC
    assert rec.received_at == NOW
    assert (rec.commune_code, rec.geo, rec.lat) == ("unassigned", "unassigned", 21.03)


def test_commune_code_is_kept_with_geo_code() -> None:
    ev = sensor()
    ev["commune_code"] = "00004"
    [rec], [] = val(known_commune={"00004"}).validate(msgspec.json.encode(ev), now=NOW)
    assert (rec.commune_code, rec.geo) == ("00004", "code")


def test_known_commune_accepts_a_predicate() -> None:
    ev = sensor()
    ev.pop("location")
    ev["commune_code"] = "00004"
    ok, bad = val(known_commune=lambda c: c.startswith("000")).validate(
        msgspec.json.encode(ev), now=NOW)
    assert len(ok) == 1 and not bad


@pytest.mark.parametrize(("metric", "value", "unit", "expected"), [
    ("pm25", 0.1, "mg/m3", 100.0),
    ("pm25", 40.0, "UG/M³", 40.0),
    ("pm10", 90.0, "μg/m3", 90.0),
    ("water_level", 150.0, "cm", 1.5),
    ("water_level", 1500.0, "mm", 1.5),
    ("temperature", 86.0, "°F", 30.0),
    ("temperature", 300.15, "K", 27.0),
    ("temperature", 21.5, "°C", 21.5),
    ("no2", 40.0, "ppb", 0.04),
    ("co", 1.145, "mg/m3", 1.0),
    ("humidity", 0.65, "fraction", 65.0),
    ("rainfall", 1.0, "in", 25.4),
    ("wind_speed", 36.0, "km/h", 10.0),
])
def test_unit_conversions(metric: str, value: float, unit: str, expected: float) -> None:
    assert units.convert(metric, value, unit) == pytest.approx(expected, rel=1e-3)
    [rec], [] = val().validate(
        msgspec.json.encode(sensor(metric=metric, value=value, unit=unit)), now=NOW)
    assert rec.value == pytest.approx(expected, rel=1e-3)
    assert rec.unit == units.CANONICAL_UNIT[metric]


def test_unit_refusals_raise_contract_errors() -> None:
    with pytest.raises(ContractError) as e:
        units.convert("pm25", 1.0, "furlongs")
    assert e.value.reason == "unknown_unit"
    with pytest.raises(ContractError) as e:
        units.convert("pm25", 1.0, "ppm")
    assert e.value.reason == "wrong_unit"


def test_every_metric_has_units_and_ranges() -> None:
    assert set(METRIC_NAMES) == set(units.CANONICAL_UNIT) == set(units.RANGES)
    for m in units.METRICS:
        assert units.CANONICAL_UNIT[m] in units.CONVERSIONS[m]
        assert units.accepted_units(m)[0] == units.CANONICAL_UNIT[m]


def test_the_validator_remembers_nothing() -> None:
    """Duplicates are stage 1's, after every check (tests/unit/streams/test_stage1.py):
    the validator accepts the same event as often as it is given."""
    v = val()
    raw = msgspec.json.encode(sensor(1))
    ok, bad = v.validate(b"[" + raw + b"," + raw + b"]", now=NOW)
    assert len(ok) == 2 and not bad
    assert v.validate(raw, now=NOW)[0]


def test_future_skew_boundary() -> None:
    v = val()
    ev = sensor()
    ev["occurred_at"] = datetime.fromtimestamp(NOW + 299, UTC).isoformat()
    assert v.validate(msgspec.json.encode(ev), now=NOW)[0]
    ev = sensor(2)
    ev["occurred_at"] = datetime.fromtimestamp(NOW + 301, UTC).isoformat()
    assert v.validate(msgspec.json.encode(ev), now=NOW)[1][0].reason == "timestamp_in_future"


def test_broken_element_does_not_take_the_batch_down() -> None:
    good = [msgspec.json.encode(sensor(i)) for i in range(3)]
    value = b" [ " + good[0] + b", {not json}, " + good[1] + b",NaN," + good[2] + b" ] "
    ok, bad = val().validate(value, now=NOW)
    assert [r.event_id for r in ok] == ["e0", "e1", "e2"]
    assert [(r.reason, r.index) for r in bad] == [("not_json", 1), ("non_finite_number", 3)]


def test_validate_items_for_ndjson() -> None:
    lines = [msgspec.json.encode(sensor(1)), b"{oops", msgspec.json.encode(sensor(2))]
    ok, bad = val().validate_items(lines, now=NOW)
    assert len(ok) == 2 and bad[0].index == 1 and bad[0].reason == "not_json"


def test_split_array() -> None:
    assert split_array(b'[{"a": "],[,"}, 2 ,[3,4]]') == [b'{"a": "],[,"}', b"2", b"[3,4]"]
    assert split_array(b"[]") == []
    assert split_array(b'{"a":1}') is None
    assert split_array(b"[1, 2") == [b"1", b"2"]


@pytest.mark.parametrize("value", [b"", b"\x00\xff", b"[", b"]", b"[[[[", b'"', b"{}" * 3,
                                   b"[" * 5000 + b"]" * 5000, b"[1,]", b"[,]"])
def test_never_raises(value: bytes) -> None:
    ok, bad = val().validate(value, now=NOW)
    assert not ok and bad and all(r.reason for r in bad)
