"""The incident API by real HTTP requests (uvicorn on loopback): a department's
responder key sees and acts on its incidents and alerts only; IOC operators see and
act on everything; viewers read; ingest keys get nothing."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import httpx
import psycopg
import pytest
from iocdev.sandbox import fresh_database

from ioc.api.auth import ensure_department
from ioccore.settings import Settings
from tests.integration.api.apihelpers import ApiDb, api_server, bearer, new_key
from tests.integration.incidents.helpers import put_alert, rows

pytestmark = [pytest.mark.integration, pytest.mark.asyncio(loop_scope="session")]


@pytest.fixture(scope="module")
def inc_db(stack: Settings) -> Iterator[ApiDb]:
    with fresh_database(stack, "ioc_inca") as (name, conninfo):
        with psycopg.connect(conninfo, autocommit=True) as conn:
            ensure_department(conn, "pctt", ["sensor"], "Ban Chỉ huy PCTT")
            ensure_department(conn, "sxd", ["traffic"], "Sở Xây dựng")
        api = stack.api.model_copy(update={"backpressure": stack.api.backpressure.model_copy(
            update={"enabled": False})})
        yield ApiDb(name, conninfo, stack.model_copy(update={
            "api": api,
            "database": stack.database.model_copy(update={"dbname": name, "pool_max": 4})}))


async def test_department_scoping_and_actions(inc_db: ApiDb) -> None:
    now = datetime.now(UTC).replace(microsecond=0)
    flood, traffic = uuid.uuid4().hex[:12], uuid.uuid4().hex[:12]
    put_alert(inc_db.conninfo, flood, started=now)
    put_alert(inc_db.conninfo, traffic, rule="traffic_incident", department="sxd",
              severity="warning", started=now)
    pctt = new_key(inc_db, "responder", "pctt", name="pctt-lan")
    xd = new_key(inc_db, "responder", "sxd", name="xd-minh")
    ops = new_key(inc_db, "operator", name="ioc-ops-hoa")
    viewer = new_key(inc_db, "viewer")
    ingest = new_key(inc_db, "department", "pctt")
    async with api_server(inc_db.settings) as base, httpx.AsyncClient(base_url=base,
                                                                       timeout=30) as c:
        # the IOC opens both from the board; each department sees only its own
        r = await c.post("/v1/incidents", json={"alerts": [flood]}, headers=bearer(ops))
        assert r.status_code == 201, r.text
        flood_id = r.json()["id"]
        assert r.json()["department"] == "pctt"
        assert [s["step_id"] for s in r.json()["steps"]][:2] == ["confirm", "order_evacuation"]
        r = await c.post("/v1/incidents", json={"alerts": [traffic]}, headers=bearer(xd))
        assert r.status_code == 201, r.text
        traffic_id = r.json()["id"]
        assert (await c.post("/v1/incidents", json={"alerts": [flood]},
                             headers=bearer(xd))).status_code == 404  # not its alert

        board = (await c.get("/v1/incidents", headers=bearer(pctt))).json()
        assert [i["id"] for i in board["incidents"]] == [flood_id]
        board = (await c.get("/v1/incidents?view=all", headers=bearer(ops))).json()
        assert {i["id"] for i in board["incidents"]} == {flood_id, traffic_id}
        r = await c.get("/v1/incidents?view=department&department=sxd",
                        headers=bearer(ops))
        assert [i["id"] for i in r.json()["incidents"]] == [traffic_id]
        assert (await c.get(f"/v1/incidents/{traffic_id}", headers=bearer(pctt))
                ).status_code == 404
        assert (await c.post(f"/v1/incidents/{traffic_id}/ack", headers=bearer(pctt))
                ).status_code == 404
        alerts = (await c.get("/v1/workspace/alerts", headers=bearer(pctt))).json()["alerts"]
        assert [a["fingerprint"] for a in alerts] == [flood]
        assert alerts[0]["incident_id"] == flood_id
        all_alerts = (await c.get("/v1/workspace/alerts", headers=bearer(viewer))).json()
        assert {a["fingerprint"] for a in all_alerts["alerts"]} == {flood, traffic}

        # who may act
        assert (await c.get("/v1/incidents", headers=bearer(ingest))).status_code == 403
        assert (await c.get("/v1/incidents")).status_code == 401
        r = await c.post(f"/v1/incidents/{flood_id}/ack", headers=bearer(viewer))
        assert r.status_code == 403
        r = await c.post(f"/v1/incidents/{flood_id}/assign",
                         json={"department": "sxd"}, headers=bearer(pctt))
        assert r.status_code == 403  # only the IOC moves it to another department
        r = await c.post(f"/v1/incidents/{flood_id}/assign", json={"department": "nobody"},
                         headers=bearer(ops))
        assert r.status_code == 400 and r.json()["error"] == "bad_department"

        # the department works its incident
        r = await c.post(f"/v1/incidents/{flood_id}/ack", json={"note": "đã nhận"},
                         headers=bearer(pctt))
        assert r.status_code == 200 and r.json()["state"] == "acknowledged"
        r = await c.post(f"/v1/incidents/{flood_id}/assign", json={"assignee": "pctt-lan"},
                         headers=bearer(pctt))
        assert r.json()["assignee"] == "pctt-lan"
        mine = (await c.get("/v1/incidents?view=mine", headers=bearer(pctt))).json()
        assert [i["id"] for i in mine["incidents"]] == [flood_id]
        r = await c.post(f"/v1/incidents/{flood_id}/steps/order_evacuation/done",
                         json={"note": "đã ra lệnh"}, headers=bearer(pctt))
        assert r.status_code == 409 and "evidence" in r.json()["message"]
        r = await c.post(f"/v1/incidents/{flood_id}/steps/order_evacuation/done",
                         json={"evidence": "Lệnh sơ tán 12/LSC"}, headers=bearer(pctt))
        assert r.status_code == 200
        r = await c.post(f"/v1/incidents/{flood_id}/resolve", headers=bearer(pctt))
        assert r.status_code == 409  # a note is required
        r = await c.post(f"/v1/incidents/{flood_id}/resolve", json={"note": "nước đã rút"},
                         headers=bearer(pctt))
        assert r.json()["state"] == "resolved"
        r = await c.post(f"/v1/incidents/{flood_id}/close", headers=bearer(ops))
        assert r.json()["state"] == "closed"
        page = (await c.get(f"/v1/incidents/{flood_id}", headers=bearer(pctt))).json()
        timeline = [(e["actor"], e["action"]) for e in page["timeline"]]
        assert timeline == [("ioc-ops-hoa", "open"), ("ioc-ops-hoa", "attach"),
                            ("pctt-lan", "ack"), ("pctt-lan", "assign"),
                            ("pctt-lan", "step_done"), ("pctt-lan", "resolve"),
                            ("ioc-ops-hoa", "close")]
        assert page["alerts"][0]["fingerprint"] == flood
        assert {"escalations", "notifications", "timers", "steps"} <= set(page)

        # KPIs: each department sees its own rows
        r = await c.get("/v1/incidents/kpis?period=day", headers=bearer(pctt))
        assert r.status_code == 200
        kp = r.json()["rows"]
        assert [(k["department"], k["responses"], k["resolved"]) for k in kp] == [
            ("pctt", 1, 1)]
        assert kp[0]["ack_within_sla"] == 1.0
        r = await c.get("/v1/incidents/kpis?period=month", headers=bearer(ops))
        assert {k["department"] for k in r.json()["rows"]} == {"pctt",
                                                              "sxd"}
        bad = await c.get("/v1/incidents/kpis?period=year", headers=bearer(ops))
        assert bad.status_code == 422
    actors = rows(inc_db.conninfo, "SELECT DISTINCT actor FROM incident_events")
    assert {a for (a,) in actors} == {"ioc-ops-hoa", "xd-minh", "pctt-lan"}


async def test_merge_and_split_by_http(inc_db: ApiDb) -> None:
    now = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=1)
    a, b = uuid.uuid4().hex[:12], uuid.uuid4().hex[:12]
    put_alert(inc_db.conninfo, a, started=now, province="46", commune="19753")
    put_alert(inc_db.conninfo, b, started=now, province="48", commune="20194")
    ops = new_key(inc_db, "operator")
    pctt = new_key(inc_db, "responder", "pctt")
    async with api_server(inc_db.settings) as base, httpx.AsyncClient(base_url=base,
                                                                       timeout=30) as c:
        one = (await c.post("/v1/incidents", json={"alerts": [a]}, headers=bearer(pctt))
               ).json()["id"]
        two = (await c.post("/v1/incidents", json={"alerts": [b]}, headers=bearer(pctt))
               ).json()["id"]
        r = await c.post(f"/v1/incidents/{one}/merge", json={"incidents": [two]},
                         headers=bearer(pctt))
        assert r.status_code == 200, r.text
        assert sorted(x["fingerprint"] for x in r.json()["alerts"]
                      if x["detached_at"] is None) == sorted([a, b])
        r = await c.post(f"/v1/incidents/{one}/split", json={"alerts": [b], "title": "Huế"},
                         headers=bearer(ops))
        assert r.status_code == 201 and r.json()["title"] == "Huế"
        r = await c.post(f"/v1/incidents/{one}/detach", json={"alerts": [a]},
                         headers=bearer(pctt))
        assert r.status_code == 200
        r = await c.post(f"/v1/incidents/{one}/attach", json={"alerts": ["nope"]},
                         headers=bearer(pctt))
        assert r.status_code == 404
        r = await c.post(f"/v1/incidents/{one}/attach", content=b"{not json",
                         headers=bearer(pctt))
        assert r.status_code == 400 and r.json()["error"] == "bad_body"
        r = await c.post(f"/v1/incidents/{one}/attach", json={"alerts": ["x"] * 1001},
                         headers=bearer(pctt))
        assert r.status_code == 400
