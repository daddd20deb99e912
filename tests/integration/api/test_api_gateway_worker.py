"""The gateway in front of a real ``ioc worker``: what the gateway accepts reaches Kafka
as one envelope per source and request, and every accepted event is stored exactly once
(also when a client sends the same request again); rejected events are answered per
element with their reason and never stored."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import psycopg
import pytest
from iocdev.sandbox import Pipeline

from ioc.api.auth import create_key, ensure_department, settings_pepper
from ioccore.settings import Settings, TopicSettings
from tests.integration.api.apihelpers import api_client, bearer
from tests.integration.api.test_api_ingest import events_of, read_topic

pytestmark = [pytest.mark.integration, pytest.mark.asyncio(loop_scope="session"),
              pytest.mark.partitions(2)]


def api_settings(pipe: Pipeline) -> Settings:
    """The stack's settings pointed at the pipeline's database and raw topics."""
    s = pipe.settings
    topics = s.kafka.topics.model_copy(update={
        feed: TopicSettings(name=pipe.topics[feed], partitions=pipe.partitions)
        for feed in ("sensor", "traffic", "service")})
    return s.model_copy(update={
        "kafka": s.kafka.model_copy(update={"topics": topics}),
        "database": s.database.model_copy(update={"dbname": pipe.dbname, "pool_max": 4})})


def reading(i: int, source: str, **over: Any) -> dict[str, Any]:
    e: dict[str, Any] = {
        "schema_version": 1, "feed": "sensor", "event_id": f"{source}-{i}",
        "source_id": source, "department": "env",
        "occurred_at": (datetime.now(UTC) - timedelta(seconds=30)).isoformat(),
        "location": {"lat": 21.0285, "lon": 105.8542},
        "body": {"metric": "pm25", "value": 10.0 + i % 40, "unit": "ug/m3"}}
    e.update(over)
    return e


async def test_accepted_events_land_as_envelopes_and_are_stored_exactly_once(
        pipe: Pipeline) -> None:
    tag = uuid.uuid4().hex[:6]
    sources = [f"gw-{tag}-{n}" for n in range(3)]
    with psycopg.connect(pipe.conninfo, autocommit=True) as conn:
        ensure_department(conn, "env", ["sensor"], "env")
        key = create_key(conn, role="department", department="env", name="gw-test",
                         pepper=settings_pepper(pipe.settings.api))[1]
    batch: list[Any] = [reading(i, sources[i % 3]) for i in range(300)]
    bad = {7: ("unknown_unit", {"body": {"metric": "pm25", "value": 1, "unit": "furlongs"}}),
           50: ("forbidden_department", {"department": "transport"}),
           51: ("timestamp_without_offset", {"occurred_at": "2025-11-03T08:00:00"})}
    for i, (_, over) in bad.items():
        batch[i].update(over)
    batch.insert(100, "not an object")
    accepted_ids = {e["event_id"] for j, e in enumerate(batch)
                    if isinstance(e, dict) and j not in bad and j != 100}
    pipe.start_worker()
    async with api_client(api_settings(pipe)) as c:
        first = await c.post("/v1/events", content=orjson.dumps(batch), headers=bearer(key))
        again = await c.post("/v1/events", content=orjson.dumps(batch), headers=bearer(key))
        lines = b"\n".join(orjson.dumps(reading(i, sources[0])) for i in range(300, 310))
        ndjson = await c.post("/v1/events", content=lines, headers={
            **bearer(key), "Content-Type": "application/x-ndjson"})
    for r in (first, again):
        assert r.status_code == 207, r.text
        body = r.json()
        assert (body["accepted"], body["rejected"]) == (len(accepted_ids), 4)
        reasons = {x["index"]: x["reason"] for x in body["results"]
                   if x["status"] == "rejected"}
        assert reasons == {7: "unknown_unit", 50: "forbidden_department",
                           51: "timestamp_without_offset", 100: "not_an_object"}
    assert ndjson.status_code == 200, ndjson.text
    accepted_ids |= {f"{sources[0]}-{i}" for i in range(300, 310)}

    messages = await asyncio.to_thread(read_topic, pipe.settings.kafka.bootstrap_servers,
                                       pipe.topics["sensor"], 7)
    # per request one envelope per source: 3 + 3 + 1, each keyed by its source
    assert len(messages) == 7
    for k, value in messages:
        assert {e["source_id"] for e in orjson.loads(value)} == {k.decode()}
    sent = events_of(messages)
    assert len(sent) == 2 * (len(accepted_ids) - 10) + 10

    expected = len(accepted_ids)
    pipe.wait_for(f"SELECT count(*) FROM sensor_readings WHERE source_id LIKE 'gw-{tag}-%'",
                  expected, timeout=120)
    await asyncio.sleep(2.0)  # a late duplicate would show now
    stored = pipe.query("SELECT event_id, count(*) FROM sensor_readings "
                        f"WHERE source_id LIKE 'gw-{tag}-%' GROUP BY event_id")
    assert {eid for eid, _ in stored} == accepted_ids
    assert {n for _, n in stored} == {1}
