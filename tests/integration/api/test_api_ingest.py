"""The ingest gateway on the real broker and database: authentication, authorisation,
size and rate limits, per-event results, and exactly the accepted events in Kafka."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import psycopg
import pytest
from kafka import KafkaConsumer
from typer.testing import CliRunner

from ioc.cli.apikeys import app as keys_app
from ioccore.settings import Settings, TopicSettings, get_settings
from tests.integration.api.apihelpers import ApiDb, api_client, bearer, new_key, with_api

pytestmark = [pytest.mark.integration, pytest.mark.asyncio(loop_scope="session")]

NOW = datetime.now(UTC).replace(microsecond=0)


def sensor(i: int, source: str = "aq-1", **over: Any) -> dict[str, Any]:
    e: dict[str, Any] = {
        "schema_version": 1, "feed": "sensor", "event_id": f"ev-{i}", "source_id": source,
        "department": "env", "occurred_at": (NOW - timedelta(minutes=1)).isoformat(),
        "location": {"lat": 21.0285, "lon": 105.8542},
        "body": {"metric": "pm25", "value": 35.0 + i, "unit": "ug/m3"},
    }
    e.update(over)
    return e


def traffic(i: int, source: str = "cam-1", department: str = "transport") -> dict[str, Any]:
    return {
        "schema_version": 1, "feed": "traffic", "event_id": f"tr-{i}", "source_id": source,
        "department": department, "occurred_at": NOW.isoformat(), "commune_code": "00004",
        "body": {"segment_id": "seg-1", "vehicle_count": 12, "avg_speed_kmh": 31.5,
                 "occupancy": 0.2},
    }


def topics_for(settings: Settings, names: dict[str, str]) -> Settings:
    topics = settings.kafka.topics.model_copy(
        update={feed: TopicSettings(name=name, partitions=1) for feed, name in names.items()})
    return settings.model_copy(update={"kafka": settings.kafka.model_copy(
        update={"topics": topics})})


def read_topic(bootstrap: str, topic: str, expect: int, timeout_s: float = 20.0
               ) -> list[tuple[bytes, bytes]]:
    """Every message of ``topic`` (waits for ``expect``, then 2 s more for extras)."""
    consumer = KafkaConsumer(topic, bootstrap_servers=bootstrap, auto_offset_reset="earliest",
                             enable_auto_commit=False, group_id=None,
                             consumer_timeout_ms=1000, **get_settings().kafka.client_options())
    out: list[tuple[bytes, bytes]] = []
    deadline = datetime.now(UTC) + timedelta(seconds=timeout_s)
    extra_until: datetime | None = None
    try:
        while datetime.now(UTC) < deadline:
            for msg in consumer:
                out.append((msg.key, msg.value))
            if len(out) >= expect:
                extra_until = extra_until or datetime.now(UTC) + timedelta(seconds=2)
                if datetime.now(UTC) >= extra_until:
                    break
    finally:
        consumer.close()
    return out


@pytest.fixture(scope="module")
def env_key(api_db: ApiDb) -> str:
    return new_key(api_db, "department", "env", name="env-gateway")


@pytest.fixture
async def feeds(new_topic: Callable[..., str], api_db: ApiDb) -> AsyncIterator[Settings]:
    """Settings whose raw topics are fresh, empty, one-partition topics."""
    names = {feed: new_topic(1, prefix=f"api-{feed}") for feed in ("sensor", "traffic",
                                                                   "service")}
    yield topics_for(api_db.settings, names)


def events_of(messages: list[tuple[bytes, bytes]]) -> list[Any]:
    """The events of messages the gateway produced (JSON-array envelopes), in order."""
    out: list[Any] = []
    for _, value in messages:
        decoded = orjson.loads(value)
        out.extend(decoded if isinstance(decoded, list) else [decoded])
    return out


async def test_missing_unknown_malformed_and_revoked_keys_get_401(api_db: ApiDb) -> None:
    key = new_key(api_db, "department", "env")
    body = orjson.dumps([sensor(1)])
    async with api_client(api_db.settings) as c:
        r = await c.post("/v1/events", content=body)
        assert r.status_code == 401
        assert r.json()["error"] == "missing_key"
        assert r.headers["www-authenticate"].startswith("Bearer")
        for bad in ("ioc_00000000_" + "x" * 43, "not-a-key", key + "x"):
            r = await c.post("/v1/events", content=body, headers=bearer(bad))
            assert r.status_code == 401, bad
            assert r.json()["error"] == "invalid_key"
    with psycopg.connect(api_db.conninfo, autocommit=True) as conn:
        conn.execute("UPDATE api_keys SET revoked_at = now() WHERE prefix = %s",
                     (key.split("_")[1],))
    async with api_client(api_db.settings) as c:  # a fresh app: no cached verification
        r = await c.post("/v1/events", content=body, headers=bearer(key))
        assert r.status_code == 401


async def test_cli_creates_a_working_key_shown_once(api_db: ApiDb, feeds: Settings) -> None:
    result = CliRunner().invoke(keys_app, [
        "create", "--department", "water", "--feeds", "sensor", "--role", "department",
        "--name", "water-gateway", "--database", api_db.name])
    assert result.exit_code == 0, result.output
    key = result.stdout.strip().splitlines()[-1]
    assert key.startswith("ioc_")
    with psycopg.connect(api_db.conninfo) as conn:
        stored = conn.execute("SELECT key_hash, role, department FROM api_keys"
                              " WHERE name = 'water-gateway'").fetchone()
    assert stored is not None and key not in stored[0]
    assert stored[1:] == ("department", "water")
    async with api_client(feeds) as c:
        r = await c.post("/v1/events", headers=bearer(key), content=orjson.dumps(
            [sensor(1, department="water", source=f"w-{uuid.uuid4().hex[:6]}")]))
        assert r.status_code == 200, r.text
    result = CliRunner().invoke(keys_app, ["revoke", key.split("_")[1],
                                           "--database", api_db.name])
    assert result.exit_code == 0, result.output


async def test_operator_keys_cannot_publish(api_db: ApiDb) -> None:
    async with api_client(api_db.settings) as c:
        r = await c.post("/v1/events", content=orjson.dumps([sensor(1)]),
                         headers=bearer(new_key(api_db, "admin")))
    assert r.status_code == 403
    assert r.json()["error"] == "insufficient_role"


async def test_foreign_feed_source_and_department_get_403(api_db: ApiDb, env_key: str) -> None:
    with psycopg.connect(api_db.conninfo, autocommit=True) as conn:
        conn.execute("INSERT INTO sources (source_id, department, feed) VALUES"
                     " ('aq-owned-by-transport', 'transport', 'sensor')")
    cases = {
        "forbidden_feed": traffic(1, department="env"),
        "forbidden_source": sensor(2, source="aq-owned-by-transport"),
        "forbidden_department": sensor(3, department="transport"),
    }
    async with api_client(api_db.settings) as c:
        for reason, event in cases.items():
            r = await c.post("/v1/events", content=orjson.dumps([event]), headers=bearer(env_key))
            assert r.status_code == 403, (reason, r.text)
            body = r.json()
            assert body["accepted"] == 0
            assert body["results"][0]["reason"] == reason
            assert body["results"][0]["status"] == "rejected"
        r = await c.post("/v1/events", content=orjson.dumps(list(cases.values())),
                         headers=bearer(env_key))
        assert r.status_code == 403
        assert [x["reason"] for x in r.json()["results"]] == list(cases)


async def test_oversize_body_gets_413_while_reading(api_db: ApiDb, env_key: str) -> None:
    limit = 64 * 1024
    settings = with_api(api_db.settings, max_body_bytes=limit)
    sent: list[int] = []

    async def body() -> AsyncIterator[bytes]:  # chunked: no Content-Length
        for _ in range(200):
            chunk = b" " * 16 * 1024
            sent.append(len(chunk))
            yield chunk

    async with api_client(settings) as c:
        big = b"[" + b" " * limit + b"]"
        r = await c.post("/v1/events", content=big, headers=bearer(env_key))
        assert r.status_code == 413
        assert r.json()["error"] == "payload_too_large"
        r = await c.post("/v1/events", content=body(),
                         headers={**bearer(env_key), "Content-Type": "application/json"})
        assert r.status_code == 413
    assert sum(sent) < 200 * 16 * 1024  # refused before the client finished sending


async def test_rate_limit_gets_429_with_retry_after(api_db: ApiDb) -> None:
    key = new_key(api_db, "department", "env")
    settings = with_api(api_db.settings, rate_limit_per_minute=3)
    async with api_client(settings) as c:
        codes = []
        for _ in range(4):
            r = await c.post("/v1/events", content=b"[]", headers=bearer(key))
            codes.append(r.status_code)
        assert codes == [400, 400, 400, 429]  # empty batches: 400, then the limit
        assert int(r.headers["retry-after"]) == 20  # one token every 20 s
        other = new_key(api_db, "department", "env")
        r = await c.post("/v1/events", content=b"[]", headers=bearer(other))
        assert r.status_code == 400  # another key has its own bucket


async def test_mixed_batch_reports_each_event_and_only_accepted_reach_kafka(
        api_db: ApiDb, env_key: str, feeds: Settings, kafka_bootstrap: str) -> None:
    src = f"aq-{uuid.uuid4().hex[:8]}"
    batch: list[Any] = [
        sensor(0, source=src),
        sensor(1, source=src, body={"metric": "pm25", "value": 20, "unit": "furlongs"}),
        "not an object",
        sensor(3, source=src, occurred_at="2025-11-03T08:00:00"),
        traffic(4, department="env"),
        sensor(5, source=src, body={"metric": "pm25", "value": 0.05, "unit": "mg/m3"}),
        sensor(6, source=src, department="transport"),
        sensor(7, source=src),
    ]
    async with api_client(feeds) as c:
        r = await c.post("/v1/events", content=orjson.dumps(batch), headers=bearer(env_key))
    assert r.status_code == 207, r.text
    body = r.json()
    got = [(x["index"], x["status"], x["reason"]) for x in body["results"]]
    assert got == [
        (0, "accepted", None), (1, "rejected", "unknown_unit"),
        (2, "rejected", "not_an_object"), (3, "rejected", "timestamp_without_offset"),
        (4, "rejected", "forbidden_feed"), (5, "accepted", None),
        (6, "rejected", "forbidden_department"), (7, "accepted", None),
    ]
    assert (body["accepted"], body["rejected"]) == (3, 5)
    assert body["results"][0]["event_id"] == "ev-0"

    messages = await asyncio.to_thread(read_topic, kafka_bootstrap,
                                       feeds.kafka.topics.sensor.name, 1)
    assert len(messages) == 1  # one envelope for the source's accepted events
    sent = events_of(messages)
    assert [e["event_id"] for e in sent] == ["ev-0", "ev-5", "ev-7"]
    assert {k for k, _ in messages} == {src.encode()}
    assert sent[0] == batch[0]  # the event as sent
    traffic_msgs = await asyncio.to_thread(read_topic, kafka_bootstrap,
                                           feeds.kafka.topics.traffic.name, 0, 3.0)
    assert traffic_msgs == []

    with psycopg.connect(api_db.conninfo) as conn:  # the new source is the department's now
        row = conn.execute("SELECT department, feed FROM sources WHERE source_id = %s",
                           (src,)).fetchone()
    assert row == ("env", "sensor")


async def test_ndjson_all_accepted_gets_200(api_db: ApiDb, feeds: Settings,
                                            kafka_bootstrap: str) -> None:
    key = new_key(api_db, "department", "transport")
    src = f"cam-{uuid.uuid4().hex[:8]}"
    lines = b"\n".join(orjson.dumps(traffic(i, source=src)) for i in range(5)) + b"\n\n"
    async with api_client(feeds) as c:
        r = await c.post("/v1/events", content=lines,
                         headers={**bearer(key), "Content-Type": "application/x-ndjson"})
        assert r.status_code == 200, r.text
        assert r.json()["accepted"] == 5
        r = await c.post("/v1/events", content=lines,
                         headers={**bearer(key), "Content-Type": "text/csv"})
        assert r.status_code == 415
    messages = await asyncio.to_thread(read_topic, kafka_bootstrap,
                                       feeds.kafka.topics.traffic.name, 1)
    assert [e["event_id"] for e in events_of(messages)] == [f"tr-{i}" for i in range(5)]


async def test_openapi_is_served_without_cdn_pages(api_db: ApiDb) -> None:
    async with api_client(api_db.settings) as c:
        spec = (await c.get("/openapi.json")).json()
        assert "/v1/events" in spec["paths"]
        post = spec["paths"]["/v1/events"]["post"]
        assert {"application/json", "application/x-ndjson"} <= set(
            post["requestBody"]["content"])
        assert {"207", "401", "403", "413", "429"} <= set(post["responses"])
        # /docs and /redoc load JavaScript from a public CDN: not served (issue 24, 10)
        assert (await c.get("/docs")).status_code == 404
