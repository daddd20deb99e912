"""Stage 1 logic with the real validator and the real commune index (no broker)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest

from geo.index import index_from_reference
from ioccore.events.validate import Validator
from streams.stage1 import InMessage, Stage1


@pytest.fixture(scope="module")
def stage1_factory() -> object:
    index = index_from_reference()

    def make() -> Stage1:
        validator = Validator(max_message_bytes=1_048_576, max_future_skew_s=300)
        return Stage1(validator, index, {"sensor-topic": "sensor"})

    return make


def message(offset: int, event_ids: list[str]) -> InMessage:
    at = (datetime.now(UTC) - timedelta(minutes=1)).isoformat()
    events = [{"schema_version": 1, "event_id": e, "source_id": "aq-1", "department": "env",
               "feed": "sensor", "occurred_at": at,
               "location": {"lat": 21.0341, "lon": 105.8372},
               "body": {"metric": "pm25", "value": 42.0, "unit": "µg/m³"}}
              for e in event_ids]
    return InMessage("sensor-topic", 0, offset, b"aq-1", json.dumps(events).encode())


def test_a_redelivered_message_is_processed_again_not_rejected(stage1_factory: object) -> None:
    stage1 = stage1_factory()  # type: ignore[operator]
    first = stage1.process([message(10, ["a", "b"])])
    assert first.valid == 2 and not first.deadletters
    again = stage1.process([message(10, ["a", "b"])])  # same offset: Kafka re-delivery
    assert again.valid == 2 and not again.deadletters


def test_the_same_event_in_a_new_message_is_a_duplicate(stage1_factory: object) -> None:
    stage1 = stage1_factory()  # type: ignore[operator]
    stage1.process([message(10, ["a"])])
    out = stage1.process([message(11, ["a", "c"])])
    assert out.valid == 1
    assert [d.reason for d in out.deadletters] == ["duplicate_event_id"]
    assert out.deadletters[0].source_offset == 11


def test_events_are_grouped_by_commune_with_province(stage1_factory: object) -> None:
    stage1 = stage1_factory()  # type: ignore[operator]
    out = stage1.process([message(1, ["x", "y"]), InMessage("sensor-topic", 0, 2, b"aq-1",
                                                            b"not json")])
    assert out.valid == 2 and [d.reason for d in out.deadletters] == ["not_json"]
    ((code, records),) = out.enriched.items()
    assert code != "unassigned" and all(r.province_code == "01" for r in records)
