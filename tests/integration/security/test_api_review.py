"""Regression tests of issue 24's API findings, by real requests against the real API
(PostgreSQL of the stack; Kafka where the route produces): 4 (silence preview), 6 (SSE
Last-Event-ID), 7 (keyless requests and the global bucket), 10 (docs, headers,
/metrics), 12 (feed health's error text), 14 (one feed per source and request) and 5
(the gateway's early area check)."""

from __future__ import annotations

import socket
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta

import httpx
import orjson
import psycopg
import pytest
from fastapi import FastAPI
from iocdev.sandbox import fresh_database
from pydantic import SecretStr

from alerts import store
from alerts.model import Transition
from ioc.api import alert_stream
from ioc.api.auth import ensure_department
from ioc.api.console_feeds import TAIL_UNAVAILABLE
from ioccore.settings import Settings, TopicSettings
from ioccore.source_registry import register, set_area
from tests.integration.api.apihelpers import (
    ApiDb,
    api_client,
    api_server,
    bearer,
    new_key,
    with_api,
)


@pytest.fixture(scope="module")
def api_db(stack: Settings, pg_conninfo: str) -> Iterator[ApiDb]:
    """A migrated database with department ``env`` (sensor, traffic) and ``water``."""
    with fresh_database(stack, "ioc_review") as (name, conninfo):
        with psycopg.connect(conninfo, autocommit=True) as conn:
            ensure_department(conn, "env", ["sensor", "traffic"], "Sở Tài nguyên và Môi trường")
            ensure_department(conn, "water", ["sensor"], "Sở Nông nghiệp (thuỷ lợi)")
        api = stack.api.model_copy(update={"backpressure": stack.api.backpressure.model_copy(
            update={"enabled": False})})
        settings = stack.model_copy(update={
            "api": api,
            "database": stack.database.model_copy(update={"dbname": name, "pool_max": 4})})
        yield ApiDb(name, conninfo, settings)


@pytest.fixture
def feeds(new_topic: Callable[..., str], api_db: ApiDb) -> Settings:
    """Settings whose raw topics are fresh one-partition topics (nothing shared)."""
    topics = api_db.settings.kafka.topics.model_copy(update={
        feed: TopicSettings(name=new_topic(1, prefix=f"review-{feed}"), partitions=1)
        for feed in ("sensor", "traffic", "service")})
    return api_db.settings.model_copy(update={"kafka": api_db.settings.kafka.model_copy(
        update={"topics": topics})})


# ------------------------------------------------------------------ 4 silence preview
async def test_silence_preview_of_a_64kb_hostile_matcher_is_refused_at_once(
        api_db: ApiDb) -> None:
    """The proof payload: one 64 KB matcher of quotes, which the old regex
    ``"?(.*?)"?\\s*$`` took 11 s to refuse on the event loop."""
    operator = new_key(api_db, "operator")
    hostile = 'a="' + '"' * (64 * 1024 - 16)
    async with api_client(with_api(api_db.settings,
                                   max_operator_body_bytes=256 * 1024)) as c:
        warm = await c.post("/v1/console/silences/preview", headers=bearer(operator),
                            json={"matchers": ['a="b"']})  # pool and key cache warm
        assert warm.status_code == 200
        started = time.perf_counter()
        r = await c.post("/v1/console/silences/preview", headers=bearer(operator),
                         json={"matchers": [hostile]})
        took = time.perf_counter() - started
    assert r.status_code == 400 and r.json()["error"] == "bad_body", r.text[:200]
    assert took < 0.5, took


def test_matcher_parse_is_linear_in_hostile_text() -> None:
    """The parser itself, past the route's bound: 64 KB and 1 MiB of quotes and spaces
    cost the same per byte (bounded before scanning: both are refused at once)."""
    from alerts.silences import Matcher

    for n in (64 * 1024, 1024 * 1024):
        for text in ('a="' + '"' * n, "a=" + " " * n + "x", "a" * n + "=b"):
            started = time.perf_counter()
            with pytest.raises(ValueError):
                Matcher.parse(text)
            assert time.perf_counter() - started < 0.05
    m = Matcher.parse('  rule_id =~ "pm25_.*"  ')
    assert (m.name, m.op, m.value) == ("rule_id", "=~", "pm25_.*")
    assert Matcher.parse("severity!=info").value == "info"


# ------------------------------------------------------------------ 6 SSE
async def test_stream_clamps_an_old_last_event_id_and_pages_in_chunks(
        api_db: ApiDb, monkeypatch: pytest.MonkeyPatch) -> None:
    """An id from the year 2000 starts the stream at the replay window with a ``gap``
    event; older transitions are not replayed. Stored transitions inside the window
    come in pages of bounded size across polls, each once."""
    monkeypatch.setattr(alert_stream, "PAGE", 50)
    monkeypatch.setattr(alert_stream, "PAGES_PER_POLL", 2)
    viewer = new_key(api_db, "viewer")
    rule = f"sse_{uuid.uuid4().hex[:6]}"
    async with await psycopg.AsyncConnection.connect(api_db.conninfo, autocommit=True) as c:
        old = [Transition(fingerprint=f"{rule}-old", seq=1, rule_id=rule, kind="state",
                          from_state="inactive", to_state="firing",
                          at=datetime.now(UTC) - timedelta(hours=3), severity="info",
                          labels={"alertname": rule}, annotations={}, value=1.0)]
        await store.persist(c, old, receivers=[])
        await c.execute("UPDATE alert_transitions SET recorded_at = now() - interval "
                        "'3 hours' WHERE fingerprint = %s", (f"{rule}-old",))
        at = datetime.now(UTC).replace(microsecond=0)
        new = [Transition(fingerprint=f"{rule}-{i:04d}", seq=1, rule_id=rule, kind="state",
                          from_state="inactive", to_state="firing", at=at, severity="info",
                          labels={"alertname": rule}, annotations={}, value=1.0)
               for i in range(250)]
        await store.persist(c, new, receivers=[])
    got: list[str] = []
    gaps: list[dict[str, str]] = []
    async with (api_server(api_db.settings) as url,
                httpx.AsyncClient(base_url=url, timeout=30) as client,
                client.stream("GET", "/v1/alerts/stream", params={"rule": rule},
                              headers={**bearer(viewer),
                                       "Last-Event-ID": "2000-01-01T00:00:00+00:00"}) as r):
        assert r.status_code == 200
        event = ""
        deadline = time.monotonic() + 20
        async for line in r.aiter_lines():
            if line.startswith("event: "):
                event = line[7:]
            elif line.startswith("data: ") and event == "gap":
                gaps.append(orjson.loads(line[6:]))
            elif line.startswith("data: ") and event == "transition":
                got.append(orjson.loads(line[6:])["fingerprint"])
            if len(got) >= 250 or time.monotonic() > deadline:
                break
    assert len(gaps) == 1 and gaps[0]["asked"].startswith("2000-01-01")
    assert sorted(got) == [f"{rule}-{i:04d}" for i in range(250)]  # each once, no old one


# ------------------------------------------------------------------ 7 keyless requests
async def test_keyless_requests_do_not_lock_out_keyed_clients(api_db: ApiDb) -> None:
    settings = with_api(api_db.settings, global_requests_per_second=5,
                        unauthenticated_per_minute=3)
    viewer = new_key(api_db, "viewer")
    async with api_client(settings) as c:
        assert (await c.get("/v1/alerts", headers=bearer(viewer))).status_code == 200
        codes = [(await c.get("/v1/alerts", headers=bearer("ioc_nope_x"))).status_code
                 for _ in range(20)]
        assert codes[:3] == [401, 401, 401] and set(codes[3:]) == {429}
        # the global bucket is untouched by the 20 keyless requests, and the address's
        # keyed client (verified moments ago) still gets in
        assert (await c.get("/v1/alerts", headers=bearer(viewer))).status_code == 200


# ------------------------------------------------------------------ 10 docs, headers, metrics
async def test_no_cdn_pages_security_headers_and_private_metrics(api_db: ApiDb) -> None:
    async with api_client(api_db.settings) as c:
        for path in ("/docs", "/redoc"):
            assert (await c.get(path)).status_code == 404
        spec = await c.get("/openapi.json")
        assert spec.status_code == 200
        for r in (spec, await c.get("/healthz"), await c.get("/v1/alerts")):
            assert r.headers["x-content-type-options"] == "nosniff"
            assert "default-src 'none'" in r.headers["content-security-policy"]
            assert r.headers["x-frame-options"] == "DENY"
        console = await c.get("/console/")
        assert "script-src 'self'" in console.headers["content-security-policy"]
        # httpx's ASGI transport calls from 127.0.0.1: loopback gets metrics
        assert (await c.get("/metrics")).status_code == 200
    token = "m-" + uuid.uuid4().hex
    async with api_client(with_api(api_db.settings, metrics_token=SecretStr(token))) as c:
        assert (await c.get("/metrics")).status_code == 401
        assert (await c.get("/metrics", headers=bearer("wrong"))).status_code == 401
        ok = await c.get("/metrics", headers=bearer(token))
        assert ok.status_code == 200 and "ioc_" in ok.text
    transport = httpx.ASGITransport(app=_app(api_db.settings), client=("203.0.113.9", 4000))
    async with httpx.AsyncClient(transport=transport, base_url="http://ioc.test") as c:
        assert (await c.get("/metrics")).status_code == 403


def _app(settings: Settings) -> FastAPI:
    from ioc.api.app import create_app

    return create_app(settings)


# ------------------------------------------------------------------ 12 feed health
async def test_feed_health_does_not_return_exception_text(api_db: ApiDb) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        closed = s.getsockname()[1]
    settings = api_db.settings.model_copy(update={"kafka": api_db.settings.kafka.model_copy(
        update={"bootstrap_servers": f"127.0.0.1:{closed}"})})
    viewer = new_key(api_db, "viewer")
    async with api_client(settings) as c:
        r = await c.get("/v1/console/feeds", headers=bearer(viewer))
    assert r.status_code == 200
    error = r.json()["deadletters"]["error"] if "deadletters" in r.json() else None
    text = r.text
    assert str(closed) not in text and "Error" not in text
    assert error in (None, TAIL_UNAVAILABLE) and TAIL_UNAVAILABLE in text


# ------------------------------------------------------------------ 14 one feed per source
def _event(source: str, feed: str, i: int, commune: str = "00004") -> dict[str, object]:
    body: dict[str, object] = (
        {"metric": "pm25", "value": 12.5, "unit": "ug/m3"} if feed == "sensor" else
        {"segment_id": "seg-1", "vehicle_count": 10, "avg_speed_kmh": 30.0,
         "occupancy": 0.2})
    return {"schema_version": 1, "event_id": f"{source}-{feed}-{i}", "source_id": source,
            "department": "env", "feed": feed,
            "occurred_at": (datetime.now(UTC) - timedelta(minutes=1)).isoformat(),
            "commune_code": commune,
            "body": body}


async def test_a_source_cannot_carry_another_feed_in_the_same_request(
        api_db: ApiDb, feeds: Settings) -> None:
    source = f"aq-{uuid.uuid4().hex[:6]}"
    with psycopg.connect(api_db.conninfo, autocommit=True) as conn:
        register(conn, "env", "sensor", [source], actor="test")
    dept = new_key(api_db, "department", "env")
    batch = [_event(source, "sensor", 0), _event(source, "traffic", 1)]
    async with api_client(feeds) as c:
        r = await c.post("/v1/events", headers=bearer(dept), json=batch)
    results = {x["event_id"]: x for x in r.json()["results"]}
    assert results[f"{source}-sensor-0"]["status"] == "accepted", results
    assert results[f"{source}-traffic-1"]["status"] == "rejected"
    assert results[f"{source}-traffic-1"]["reason"] == "forbidden_source"


# ------------------------------------------------------------------ 5 area, gateway
async def test_gateway_refuses_a_commune_outside_the_sources_area(
        api_db: ApiDb, feeds: Settings) -> None:
    source = f"gw-{uuid.uuid4().hex[:6]}"
    with psycopg.connect(api_db.conninfo, autocommit=True) as conn:
        register(conn, "env", "sensor", [source], actor="test")
        assert set_area(conn, "env", ["00004"], source_ids=[source]) == 1
    dept = new_key(api_db, "department", "env")
    async with api_client(feeds) as c:
        r = await c.post("/v1/events", headers=bearer(dept),
                         json=[_event(source, "sensor", 0, "00004"),
                               _event(source, "sensor", 1, "00007")])
    results = {x["event_id"]: x for x in r.json()["results"]}
    assert results[f"{source}-sensor-0"]["status"] == "accepted", results
    assert results[f"{source}-sensor-1"]["reason"] == "out_of_area"
