"""NGSI-LD notifications through the API in front of a real worker: an AirQualityObserved
entity's PM2.5 to a fired alert, a re-sent notification stored once, a bad attribute
dead-lettered with its reason."""

from __future__ import annotations

import asyncio
import json
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
import pytest
from iocdev.sandbox import Pipeline
from kafka import KafkaConsumer

from ioc.api.auth import create_key, ensure_department, settings_pepper
from ioccore.settings import get_settings
from tests.integration.api.apihelpers import api_client, bearer
from tests.integration.api.test_api_gateway_worker import api_settings
from tests.support.rulefiles import pm25_rule, rules_env

pytestmark = [pytest.mark.integration, pytest.mark.slow,
              pytest.mark.asyncio(loop_scope="session")]

DATA = Path(__file__).parents[2] / "data" / "ngsi"


def observation(entity_id: str, at: datetime, pm25: float, **extra: Any) -> dict[str, Any]:
    return {"id": entity_id, "type": "AirQualityObserved",
            "dateObserved": {"type": "Property", "value": {
                "@type": "DateTime", "@value": at.isoformat()}},
            "location": {"type": "GeoProperty", "value": {
                "type": "Point", "coordinates": [105.838, 21.0386]}},
            "pm25": {"type": "Property", "value": pm25, "unitCode": "GQ"},
            "airQualityLevel": {"type": "Property", "value": "poor"}, **extra}


def notification(*entities: dict[str, Any]) -> dict[str, Any]:
    note: dict[str, Any] = json.loads((DATA / "notification.template.json").read_text())
    note["id"] = f"urn:ngsi-ld:Notification:{uuid.uuid4().hex}"
    note["data"] = list(entities)
    return note


def reasons(topic: str, expect: int) -> list[str]:
    consumer = KafkaConsumer(topic, bootstrap_servers=get_settings().kafka.bootstrap_servers,
                             auto_offset_reset="earliest", enable_auto_commit=False,
                             group_id=None, consumer_timeout_ms=2000,
                             **get_settings().kafka.client_options())
    got = [dict(m.headers).get("ioc-reason", b"").decode() for m in consumer]
    consumer.close()
    return got


async def test_notifications_to_alert(pipe: Pipeline, tmp_path: Path) -> None:
    tag = uuid.uuid4().hex[:8]
    rule = f"ngsi_pm25_{tag}"
    with psycopg.connect(pipe.conninfo, autocommit=True) as conn:
        ensure_department(conn, "env", ["sensor"], "env")
        key = create_key(conn, role="department", department="env", name="orion",
                         pepper=settings_pepper(pipe.settings.api))[1]
    pipe.start_worker(extra_env=rules_env(tmp_path, pm25_rule(rule, label=tag)))
    entity = f"urn:ngsi-ld:AirQualityObserved:hn-{tag}"
    t0 = datetime.now(UTC).replace(second=0, microsecond=0) - timedelta(minutes=4)
    notes = [notification(observation(entity, t0 + timedelta(seconds=s), v))
             for s, v in ((0, 150.0), (1, 170.0), (2, 160.0), (90, 150.0))]
    bad = observation(entity, t0 + timedelta(seconds=3), 1.0,
                      NO2={"type": "Property", "value": "high", "unitCode": "GQ"})
    bad["pm25"] = {"type": "Property", "value": 12, "unitCode": "FURLONG"}
    settings = api_settings(pipe)
    topics = settings.kafka.topics.model_copy(update={
        "deadletter": settings.kafka.topics.deadletter.model_copy(
            update={"name": pipe.topics["deadletter"]})})
    settings = settings.model_copy(update={"kafka": settings.kafka.model_copy(
        update={"topics": topics})})
    async with api_client(settings) as c:
        r = await c.post("/ngsi-ld/v1/notify", json=notes[0])
        assert r.status_code == 401
        for note in notes:
            r = await c.post("/ngsi-ld/v1/notify", json=note, headers=bearer(key))
            assert r.status_code == 200, r.text
            assert r.json()["accepted"] == 1
        again = await c.post("/ngsi-ld/v1/notify", json=notes[1], headers={
            **bearer(key), "Content-Type": "application/ld+json"})
        assert again.status_code == 200
        partly = await c.post("/ngsi-ld/v1/entityOperations/upsert", json=[bad],
                              headers=bearer(key))
        assert partly.status_code == 207
        assert {(x["attribute"], x["reason"]) for x in partly.json()["results"]} == {
            ("NO2", "invalid_attribute"), ("pm25", "unknown_unit_code")}
    where = f"FROM sensor_readings WHERE source_id = '{entity}'"
    pipe.wait_for(f"SELECT count(*) {where}", 4, timeout=120)
    pipe.wait_for(f"SELECT count(*) FROM alert_transitions WHERE rule_id = '{rule}' "
                  "AND kind = 'state' AND to_state = 'firing'", 1, timeout=120)
    await asyncio.sleep(2.0)
    assert pipe.query(f"SELECT count(*) {where}")[0][0] == 4  # the re-sent one: once
    got = await asyncio.to_thread(reasons, pipe.topics["deadletter"], 3)
    assert sorted(got) == ["duplicate_event_id", "invalid_attribute", "unknown_unit_code"]
