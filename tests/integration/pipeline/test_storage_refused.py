"""A row the database refuses after validation is dead-lettered with the event's original
bytes and its raw provenance (13.4), while its neighbours are stored.

The refusal is made real and independent of the validator: the test adds a CHECK
constraint to the test database (as the superuser), so PostgreSQL refuses one reading.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
import pytest
from iocdev.sandbox import Pipeline, envelope, pipeline
from kafka import KafkaConsumer
from psycopg.conninfo import make_conninfo

from ioc.core.settings import Settings

pytestmark = [pytest.mark.integration, pytest.mark.slow]


@pytest.fixture
def pipe(stack: Settings, tmp_path: Path) -> Iterator[Pipeline]:
    with pipeline(stack, tmp_path, partitions=1) as p:
        yield p


def test_a_refused_row_is_dead_lettered_with_its_original_bytes_and_origin(
        pipe: Pipeline, pg_conninfo: str) -> None:
    with psycopg.connect(make_conninfo(pg_conninfo, dbname=pipe.dbname),
                         autocommit=True) as admin:
        admin.execute("ALTER TABLE sensor_readings ADD CONSTRAINT refuse_999"
                      " CHECK (value <> 999)")
    at = datetime.now(UTC) - timedelta(minutes=1)
    events: list[dict[str, Any]] = [
        envelope("sensor", f"r{i}", "aq-ref", at + timedelta(seconds=i),
                 {"metric": "pm25", "value": 999.0 if i == 2 else 10.0, "unit": "ug/m3"},
                 commune_code="00004") for i in range(5)]
    value = json.dumps(events).encode()
    pipe.produce("sensor", [(b"aq-ref", value)])
    pipe.start_worker()
    pipe.wait_for("SELECT count(*) FROM sensor_readings", 4)

    consumer = KafkaConsumer(pipe.topics["deadletter"],
                             bootstrap_servers=pipe.settings.kafka.bootstrap_servers,
                             auto_offset_reset="earliest", consumer_timeout_ms=30_000,
                             group_id=f"dlq-{uuid.uuid4().hex[:8]}",
                             **pipe.settings.kafka.client_options())
    letters = [m for m in consumer]
    consumer.close()
    assert len(letters) == 1
    letter = letters[0]
    headers = {k: v.decode() for k, v in letter.headers}
    assert headers["ioc-reason"] == "storage_rejected"
    assert headers["ioc-value-kind"] == "original"
    assert headers["ioc-source-topic"] == pipe.topics["sensor"]
    assert (headers["ioc-source-partition"], headers["ioc-source-offset"]) == ("0", "0")
    assert headers["ioc-batch-index"] == "2"
    assert letter.key == b"aq-ref"
    assert json.loads(letter.value) == events[2]
    assert letter.value == json.dumps(events[2]).encode()  # the bytes as sent
