"""The operator API on the real database: roles, acknowledge/resolve/silence changing the
stored state with an audit trail, and the live stream of transitions (SSE over uvicorn)."""

from __future__ import annotations

import asyncio
import logging
import uuid
from datetime import datetime, timedelta
from typing import Any

import httpx
import orjson
import psycopg
import pytest

from tests.integration.api.apihelpers import (
    ApiDb,
    api_client,
    api_server,
    bearer,
    firing_alert,
    new_key,
)

pytestmark = [pytest.mark.integration, pytest.mark.asyncio(loop_scope="session")]


def audit_rows(db: ApiDb, target: str) -> list[tuple[Any, ...]]:
    with psycopg.connect(db.conninfo) as conn:
        return conn.execute("SELECT actor, action, detail FROM audit_log WHERE target = %s"
                            " ORDER BY id", (target,)).fetchall()


async def test_roles_viewer_reads_operator_acts(api_db: ApiDb,
                                               caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="ioc.api.access")
    fp = await firing_alert(api_db)
    viewer = new_key(api_db, "viewer", name="viewer-anna")
    dept = new_key(api_db, "department", "env")
    async with api_client(api_db.settings) as c:
        assert (await c.get("/v1/alerts")).status_code == 401
        r = await c.get("/v1/alerts", headers=bearer(dept))
        assert r.status_code == 403
        r = await c.get(f"/v1/alerts/{fp}", headers=bearer(viewer))
        assert r.status_code == 200
        r = await c.post(f"/v1/alerts/{fp}/ack", json={"note": "seen"}, headers=bearer(viewer))
        assert r.status_code == 403
        assert r.json()["error"] == "insufficient_role"
        r = await c.post("/v1/silences", json={"matchers": ['rule_id="x"'], "duration": "1h"},
                         headers=bearer(viewer))
        assert r.status_code == 403
        assert (await c.get("/v1/audit", headers=bearer(viewer))).status_code == 403
    lines = [r for r in caplog.records if r.name == "ioc.api.access"]
    seen = {(getattr(r, "route", None), getattr(r, "status", None), getattr(r, "key", None))
            for r in lines}
    assert ("/v1/alerts/{fingerprint}", 200, "viewer-anna") in seen
    assert ("/v1/alerts/{fingerprint}/ack", 403, "viewer-anna") in seen
    assert ("/v1/alerts", 401, None) in seen
    assert all(isinstance(getattr(r, "duration_ms", None), float) for r in lines)
    with psycopg.connect(api_db.conninfo) as conn:
        state = conn.execute("SELECT state FROM alerts WHERE fingerprint = %s", (fp,)).fetchone()
    assert state == ("firing",)


async def test_list_filters_and_pagination(api_db: ApiDb) -> None:
    province = f"9{uuid.uuid4().int % 10}"
    fps = [await firing_alert(api_db, severity=s, province=province)
           for s in ("critical", "warning", "warning")]
    viewer = new_key(api_db, "viewer")
    async with api_client(api_db.settings) as c:
        r = await c.get("/v1/alerts", params={"province": province}, headers=bearer(viewer))
        assert sorted(a["fingerprint"] for a in r.json()["alerts"]) == sorted(fps)
        r = await c.get("/v1/alerts", params={"province": province, "severity": "critical"},
                        headers=bearer(viewer))
        assert [a["fingerprint"] for a in r.json()["alerts"]] == [fps[0]]
        r = await c.get("/v1/alerts", params={"province": province, "state": "firing,pending",
                                               "limit": 2}, headers=bearer(viewer))
        page = r.json()
        assert len(page["alerts"]) == 2 and page["next_offset"] == 2
        r = await c.get("/v1/alerts", params={"province": province, "limit": 2, "offset": 2},
                        headers=bearer(viewer))
        assert len(r.json()["alerts"]) == 1 and r.json()["next_offset"] is None
        r = await c.get("/v1/alerts/nope", headers=bearer(viewer))
        assert r.status_code == 404


async def test_ack_then_resolve_changes_the_database_and_is_audited(api_db: ApiDb) -> None:
    fp = await firing_alert(api_db)
    operator = new_key(api_db, "operator", name="operator-binh")
    async with api_client(api_db.settings) as c:
        r = await c.post(f"/v1/alerts/{fp}/ack", json={"note": "đội môi trường đang xử lý"},
                         headers=bearer(operator))
        assert r.status_code == 200, r.text
        assert (r.json()["from_state"], r.json()["to_state"]) == ("firing", "acknowledged")
        r = await c.post(f"/v1/alerts/{fp}/ack", json={"note": "again"},
                         headers=bearer(operator))
        assert r.status_code == 409
        r = await c.post(f"/v1/alerts/{fp}/resolve", json={"note": "đã xử lý"},
                         headers=bearer(operator))
        assert r.status_code == 200
        r = await c.get(f"/v1/alerts/{fp}", headers=bearer(operator))
        detail = r.json()
        assert detail["alert"]["state"] == "resolved"
        assert detail["alert"]["acknowledged_by"] == "operator-binh"
        assert [(h["to_state"], h["actor"], h["note"]) for h in detail["history"]] == [
            ("firing", "system", None),
            ("acknowledged", "operator-binh", "đội môi trường đang xử lý"),
            ("resolved", "operator-binh", "đã xử lý")]
        r = await c.post("/v1/alerts/unknown/resolve", headers=bearer(operator))
        assert r.status_code == 404
    with psycopg.connect(api_db.conninfo) as conn:
        row = conn.execute("SELECT state, acknowledged_by FROM alerts WHERE fingerprint = %s",
                           (fp,)).fetchone()
    assert row == ("resolved", "operator-binh")
    assert [(a, b) for a, b, _ in audit_rows(api_db, fp)] == [
        ("operator-binh", "acknowledge"), ("operator-binh", "resolve")]


async def test_silence_create_list_expire_is_audited(api_db: ApiDb) -> None:
    operator = new_key(api_db, "operator", name="operator-chi")
    admin = new_key(api_db, "admin", name="admin-dung")
    async with api_client(api_db.settings) as c:
        r = await c.post("/v1/silences", headers=bearer(operator), json={
            "matchers": ['commune_code="00004"', {"name": "severity", "op": "!=",
                                                   "value": "critical"}],
            "duration": "2h", "comment": "bảo trì trạm quan trắc"})
        assert r.status_code == 201, r.text
        silence = r.json()
        assert silence["created_by"] == "operator-chi"
        assert {m["name"] for m in silence["matchers"]} == {"commune_code", "severity"}
        ends = datetime.fromisoformat(silence["ends_at"])
        starts = datetime.fromisoformat(silence["starts_at"])
        assert ends - starts == timedelta(hours=2)
        r = await c.get("/v1/silences", headers=bearer(operator))
        assert silence["id"] in [s["id"] for s in r.json()]
        bad = await c.post("/v1/silences", headers=bearer(operator),
                           json={"matchers": ["no matcher here"], "duration": "1h"})
        assert bad.status_code == 400
        bad = await c.post("/v1/silences", headers=bearer(operator),
                           json={"matchers": ['a="b"']})
        assert bad.status_code == 400
        r = await c.delete(f"/v1/silences/{silence['id']}", headers=bearer(admin))
        assert r.status_code == 200
        assert r.json()["expired_by"] == "admin-dung"
        r = await c.get("/v1/silences", headers=bearer(operator))
        assert silence["id"] not in [s["id"] for s in r.json()]
        assert (await c.delete("/v1/silences/999999", headers=bearer(admin))).status_code == 404
        r = await c.get("/v1/audit", params={"target": f"silence/{silence['id']}"},
                        headers=bearer(admin))
        assert [(a["actor"], a["action"]) for a in r.json()] == [
            ("admin-dung", "silence.expire"), ("operator-chi", "silence.create")]
    with psycopg.connect(api_db.conninfo) as conn:
        row = conn.execute("SELECT expired_by, ends_at <= now() FROM silences WHERE id = %s",
                           (silence["id"],)).fetchone()
    assert row == ("admin-dung", True)


async def test_stream_sends_new_transitions(api_db: ApiDb) -> None:
    viewer = new_key(api_db, "viewer")
    async with (api_server(api_db.settings) as url,
                httpx.AsyncClient(base_url=url, timeout=20) as client,
                client.stream("GET", "/v1/alerts/stream", headers=bearer(viewer)) as r):
        assert r.status_code == 200
        assert r.headers["content-type"].startswith("text/event-stream")
        lines = r.aiter_lines()
        assert await anext(lines) == "retry: 2000"
        fp = await firing_alert(api_db, severity="critical")
        event: dict[str, str] = {}

        async def next_event() -> dict[str, str]:
            async for line in lines:
                if not line:
                    if "data" in event:
                        return event
                    continue
                if line.startswith(":"):
                    continue
                name, _, value = line.partition(": ")
                event[name] = value
            raise AssertionError("stream ended")

        got = await asyncio.wait_for(next_event(), 10)
        assert got["event"] == "transition"
        data = orjson.loads(got["data"])
        assert (data["fingerprint"], data["to_state"], data["severity"]) == (
            fp, "firing", "critical")
        assert got["id"] == f"{data['recorded_at']}|{fp}|{data['seq']}"
