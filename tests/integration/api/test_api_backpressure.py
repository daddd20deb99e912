"""Admission control on a real broker and a real worker: with the worker stopped the
backlog grows past the bound and an ingest request is held, then refused with 503 and
``Retry-After``; once the worker has caught up requests are accepted again, and every
accepted event is stored exactly once. The API runs as a gateway principal with exactly
the gateway's grants (DESCRIBE on the worker's groups, no READ): the lag is readable."""

from __future__ import annotations

import asyncio
import time
import uuid

import httpx
import orjson
import psycopg
import pytest
from iocdev.sandbox import Pipeline
from pydantic import SecretStr

from ioc.api.auth import create_key, ensure_department, settings_pepper
from ioccore import principals
from ioccore.settings import BackpressureSettings, Settings, TopicSettings
from tests.integration.api.apihelpers import api_client, bearer
from tests.integration.api.test_api_gateway_worker import reading

pytestmark = [pytest.mark.integration, pytest.mark.asyncio(loop_scope="session"),
              pytest.mark.partitions(2)]

SOURCES = 40
"""Sources per request: one envelope (Kafka message) each, so one request is 40 messages
of backlog, 8 s at the 5 messages/s floor."""


def gateway_settings(pipe: Pipeline, user: str, password: str) -> Settings:
    s = pipe.settings
    topics = s.kafka.topics.model_copy(update={
        feed: TopicSettings(name=pipe.topics[feed], partitions=pipe.partitions)
        for feed in ("sensor", "traffic", "service", "enriched")})
    kafka = s.kafka.model_copy(update={"topics": topics, "sasl_username": user,
                                       "sasl_password": SecretStr(password)})
    api = s.api.model_copy(update={"backpressure": BackpressureSettings(
        max_lag_s=1.0, max_wait_s=2.0, sample_interval_s=0.3, rate_window_s=3.0,
        min_rate_per_s=5.0)})
    return s.model_copy(update={
        "kafka": kafka, "api": api,
        "stream": s.stream.model_copy(update={"app_id": pipe.app_id}),
        "database": s.database.model_copy(update={"dbname": pipe.dbname, "pool_max": 4})})


def body(tag: str, seq: int) -> bytes:
    return orjson.dumps([reading(seq * 1000 + i, f"bp-{tag}-{i % SOURCES}")
                         for i in range(2 * SOURCES)])


def sample(text: str, name: str) -> float:
    """The value of one sample line ``name`` (with its labels) of a metrics page."""
    for line in text.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[-1])
    return 0.0


async def test_held_then_refused_while_behind_then_accepted_and_stored_once(
        pipe: Pipeline) -> None:
    tag = uuid.uuid4().hex[:6]
    kafka = pipe.settings.kafka
    user = f"gw-{tag}"
    password = principals.create_principal(kafka, user, principals.gateway_grants(
        kafka, topics=pipe.topics, group=pipe.app_id))
    try:
        with psycopg.connect(pipe.conninfo, autocommit=True) as conn:
            ensure_department(conn, "env", ["sensor"], "env")
            conn.execute("UPDATE departments SET source_quota = greatest(source_quota, 100)"
                         " WHERE code = 'env'")
            key = create_key(conn, role="department", department="env", name="bp-test",
                             pepper=settings_pepper(pipe.settings.api))[1]
        accepted: set[str] = set()

        async def post(c: httpx.AsyncClient, seq: int) -> httpx.Response:
            raw = body(tag, seq)
            r = await c.post("/v1/events", content=raw, headers=bearer(key))
            if r.status_code == 200:
                accepted.update(e["event_id"] for e in orjson.loads(raw))
            return r

        settings = gateway_settings(pipe, user, password)
        async with api_client(settings) as c:
            gate = c._transport.app.state.resources.backpressure  # type: ignore[attr-defined]
            errors_before = sample((await c.get("/metrics")).text,
                                   "ioc_api_backpressure_lag_errors_total")
            first = await post(c, 0)  # nothing behind yet: accepted at once
            assert first.status_code == 200, first.text
            for _ in range(100):  # the next samples see 40 messages, no consumer
                if gate.holding:
                    break
                await asyncio.sleep(0.1)
            assert gate.holding and gate.backlog_s > 1.0

            t0 = time.monotonic()
            refused = await post(c, 1)
            waited = time.monotonic() - t0
            assert refused.status_code == 503, refused.text
            assert refused.json()["error"] == "pipeline_backlogged"
            assert int(refused.headers["Retry-After"]) >= 1
            assert waited >= 2.0  # held for max_wait_s before the refusal
            health = await c.get("/healthz")  # never held
            assert health.status_code == 200

            page = (await c.get("/metrics")).text
            assert sample(page, 'ioc_api_pipeline_backlog_seconds{stage="stage1"}') > 1.0
            assert sample(page, 'ioc_api_backpressure_requests_total{outcome="refused"}') >= 1
            # the gateway principal reads the lag: DESCRIBE on the groups is enough
            assert sample(page, "ioc_api_backpressure_lag_errors_total") == errors_before

            pipe.start_worker()
            deadline = time.monotonic() + 120
            seq = 2
            while True:
                r = await post(c, seq)
                seq += 1
                if r.status_code == 200:
                    break
                assert r.status_code == 503, r.text
                assert time.monotonic() < deadline, "never accepted again"
                await asyncio.sleep(float(r.headers["Retry-After"]))
            assert not gate.holding or gate.backlog_s > 0
            for _ in range(3):  # caught up: accepted again, request after request
                assert (await post(c, seq)).status_code == 200
                seq += 1
            page = (await c.get("/metrics")).text
            assert sample(page, "ioc_api_backpressure_lag_errors_total") == errors_before

        pipe.wait_for(f"SELECT count(*) FROM sensor_readings WHERE source_id LIKE 'bp-{tag}-%'",
                      len(accepted), timeout=120)
        await asyncio.sleep(2.0)  # a late duplicate would show now
        stored = pipe.query("SELECT event_id, count(*) FROM sensor_readings "
                            f"WHERE source_id LIKE 'bp-{tag}-%' GROUP BY event_id")
        assert {eid for eid, _ in stored} == accepted
        assert {n for _, n in stored} == {1}
    finally:
        principals.revoke(kafka, user)


