"""NGSI-LD entities into envelopes, on the official Smart Data Models examples
(tests/data/ngsi/SOURCES.md names each file)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from ioccore.events.validate import Validator
from ioccore.formats import ngsi
from ioccore.formats.eventid import derive

DATA = Path(__file__).parents[2] / "data" / "ngsi"
HANOI = {"type": "Point", "coordinates": [105.838, 21.0386]}


def fixture(name: str) -> dict[str, Any]:
    entity: dict[str, Any] = json.loads((DATA / name).read_text())
    return entity


def in_hanoi(entity: dict[str, Any], normalized: bool = True) -> dict[str, Any]:
    """The example moved to Hà Nội (the validator accepts only Vietnam)."""
    return {**entity, "location": {"type": "GeoProperty", "value": HANOI}
            if normalized else HANOI}


def by_metric(events: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {e["body"]["metric"]: e for e in events}


def test_air_quality_normalized_example() -> None:
    entity = fixture("AirQualityObserved.example-normalized-ld.jsonld")
    events, problems = ngsi.convert([entity], department="env")
    assert problems == []
    got = {m: (e["body"]["value"], e["body"]["unit"]) for m, e in by_metric(events).items()}
    # NO and NOx have no ioc metric; CO is in mg/m3 (GP), the others in ug/m3 (GQ)
    assert got == {"co": (500.0, "mg/m3"), "so2": (11.0, "ug/m3"), "no2": (69.0, "ug/m3"),
                   "temperature": (12.2, "C"), "humidity": (0.54, "fraction"),
                   "wind_speed": (0.64, "m/s"), "rainfall": (0.0, "mm")}
    e = by_metric(events)["no2"]
    assert e["occurred_at"] == "2016-03-15T12:00:00.000000Z"  # the interval's end, UTC
    assert e["location"] == {"lat": 40.4238528, "lon": -3.7122472}
    assert e["source_id"] == entity["id"] and e["department"] == "env"
    assert e["feed"] == "sensor"


def test_air_quality_key_values_example_matches_names_in_any_case() -> None:
    events, problems = ngsi.convert([fixture("AirQualityObserved.example.jsonld")],
                                    department="env")
    assert problems == []
    assert set(by_metric(events)) == {"co", "no2", "so2", "temperature", "humidity",
                                      "wind_speed", "rainfall"}
    assert by_metric(events)["co"]["body"]["unit"] == "mg/m3"  # the table's default
    assert by_metric(events)["no2"]["occurred_at"] == "2016-03-15T11:00:00.000000Z"


def test_normalized_and_key_values_give_the_same_ids_for_the_same_observation() -> None:
    kv = fixture("AirQualityObserved.example.jsonld")
    norm = {"id": kv["id"], "type": kv["type"],
            "dateObserved": {"type": "Property", "value": {
                "@type": "DateTime", "@value": "2016-03-15T11:00:00Z"}},
            "NO2": {"type": "Property", "value": 69, "unitCode": "GQ"}}
    a = by_metric(ngsi.convert([kv], department="env")[0])["no2"]
    b = by_metric(ngsi.convert([norm], department="env")[0])["no2"]
    assert a["event_id"] == b["event_id"]
    assert a["event_id"] == derive(kv["id"], "2016-03-15T11:00:00Z",
                                   {"attribute": "NO2", "value": 69.0, "unit": "ug/m3"})


def test_traffic_flow_example_is_one_traffic_event() -> None:
    entity = fixture("TrafficFlowObserved.example-normalized.jsonld")
    events, problems = ngsi.convert([entity], department="transport")
    assert problems == []
    (e,) = events
    assert e["feed"] == "traffic"
    assert e["occurred_at"] == "2016-12-07T11:15:00.000000Z"
    assert e["body"] == {"segment_id": entity["id"], "vehicle_count": 197,
                         "avg_speed_kmh": 52.6, "occupancy": 0.76}
    # a LineString's place is the mean of its positions
    assert e["location"]["lat"] == pytest.approx(41.6578209, abs=1e-6)


def test_water_and_flood_examples() -> None:
    water, problems = ngsi.convert([fixture("WaterObserved.example-normalized.jsonld")],
                                   department="env")
    assert problems == []
    assert [(e["body"]["metric"], e["body"]["value"], e["body"]["unit"]) for e in water] \
        == [("water_level", 3.52, "m")]
    flood, problems = ngsi.convert([fixture("FloodMonitoring.example.jsonld")],
                                   department="env")
    assert problems == []
    (e,) = flood
    assert (e["body"]["metric"], e["body"]["value"]) == ("water_level", 0.98)
    assert e["occurred_at"] == "2020-09-16T08:00:00.000000Z"
    assert "location" not in e  # the example has none: the validator says so


def test_examples_moved_to_hanoi_pass_the_validator() -> None:
    validator = Validator(max_message_bytes=1 << 20, max_future_skew_s=300)
    entities = [in_hanoi(fixture("AirQualityObserved.example-normalized-ld.jsonld")),
                in_hanoi(fixture("AirQualityObserved.example.jsonld"), normalized=False),
                in_hanoi(fixture("WaterObserved.example-normalized.jsonld")),
                in_hanoi(fixture("FloodMonitoring.example.jsonld"), normalized=False)]
    events, _ = ngsi.convert(entities, department="env")
    traffic, _ = ngsi.convert([in_hanoi(fixture(
        "TrafficFlowObserved.example-normalized.jsonld"))], department="transport")
    for e in events + traffic:
        records, rejections = validator.validate_items([json.dumps(e).encode()])
        assert rejections == [] and len(records) == 1, (e, rejections)


def test_bad_attribute_is_a_problem_and_the_rest_still_counts() -> None:
    entity = in_hanoi(fixture("AirQualityObserved.example-normalized-ld.jsonld"))
    entity["NO2"] = {"type": "Property", "value": "high", "unitCode": "GQ"}
    entity["SO2"] = {"type": "Property", "value": 11, "unitCode": "XYZ"}
    entity["madeUpAttribute"] = {"type": "Property", "value": 1}
    events, problems = ngsi.convert([entity], department="env")
    assert {(p.reason, p.attribute) for p in problems} == {
        ("invalid_attribute", "NO2"), ("unknown_unit_code", "SO2")}
    assert "no2" not in by_metric(events) and "co" in by_metric(events)


def test_notification_upsert_and_unknown_types() -> None:
    note = json.loads((DATA / "notification.template.json").read_text())
    note["data"] = [fixture("AirQualityObserved.example.jsonld"),
                    {"id": "urn:x", "type": "Parking"}, "junk"]
    entities, problem = ngsi.entities_of(note)
    assert problem is None and len(entities) == 3
    events, problems = ngsi.convert(entities, department="env")
    assert [(p.index, p.reason) for p in problems] == [(1, "unknown_entity_type"),
                                                       (2, "invalid_ngsi")]
    assert {e["source_id"] for e in events} == {entities[0]["id"]}
    assert ngsi.entities_of({"type": "Notification", "data": 1})[1] is not None
    assert ngsi.entities_of(5)[1] is not None
    assert ngsi.entities_of([{}] * (ngsi.MAX_ENTITIES + 1))[1] is not None


def test_expanded_attribute_names_and_type() -> None:
    entity = {"id": "urn:x:1", "type": "https://smartdatamodels.org/dataModel.Environment/"
              "AirQualityObserved",
              "https://smartdatamodels.org/dateObserved": {
                  "type": "Property", "value": "2025-11-03T01:00:00Z"},
              "https://smartdatamodels.org/dataModel.Environment/pm25": {
                  "type": "Property", "value": 42, "unitCode": "GQ"}}
    events, problems = ngsi.convert([entity], department="env")
    assert problems == []
    assert [(e["body"]["metric"], e["body"]["value"]) for e in events] == [("pm25", 42.0)]
