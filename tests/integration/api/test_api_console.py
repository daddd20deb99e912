"""The console's serving and read endpoints on the real database: the page and its
headers, path containment, who may read what (department keys: their own feeds only),
the board snapshot's clock, silence previews, audit entries and the series endpoint."""

from __future__ import annotations

import pytest

from tests.integration.api.apihelpers import ApiDb, api_client, bearer, firing_alert, new_key

pytestmark = [pytest.mark.integration, pytest.mark.asyncio(loop_scope="session")]


async def test_page_served_with_same_origin_headers(api_db: ApiDb) -> None:
    async with api_client(api_db.settings) as c:
        root = await c.get("/")
        assert root.status_code == 307 and root.headers["location"] == "/console/"
        page = await c.get("/console/")
        assert page.status_code == 200, "make setup builds the console bundle"
        csp = page.headers["content-security-policy"]
        assert "default-src 'self'" in csp and "frame-ancestors 'none'" in csp
        assert page.headers["x-frame-options"] == "DENY"
        assert '<script type="module" src="app.js">' in page.text
        js = await c.get("/console/app.js")
        assert js.status_code == 200 and "javascript" in js.headers["content-type"]
        assert "http://" not in page.text and "https://" not in page.text
        icon = await c.get("/favicon.ico")  # browsers ask the origin's root for it
        assert icon.status_code == 200 and icon.headers["content-type"] == "image/x-icon"
        assert icon.content[:4] == b"\x00\x00\x01\x00"
        for bad in ("/console/../pyproject.toml", "/console/%2e%2e/auth.py",
                    "/console/..%2fauth.py", "/console//etc/passwd"):
            assert (await c.get(bad)).status_code == 404, bad


async def test_who_reads_what(api_db: ApiDb) -> None:
    viewer = new_key(api_db, "viewer", name="console-viewer")
    operator = new_key(api_db, "operator", name="console-operator")
    dept = new_key(api_db, "department", "env", name="console-env")
    async with api_client(api_db.settings) as c:
        me = (await c.get("/v1/console/me", headers=bearer(viewer))).json()
        assert me["role"] == "viewer" and me["can_act"] is False
        assert (await c.get("/v1/console/me", headers=bearer(operator))).json()["can_act"]
        d = (await c.get("/v1/console/me", headers=bearer(dept))).json()
        assert d["department"] == "env" and d["feeds"] == ["sensor"]
        assert (await c.get("/v1/console/me")).status_code == 401
        # department keys: only their own feed health, nothing of the operator views
        assert (await c.get("/v1/console/board", headers=bearer(dept))).status_code == 403
        feeds = (await c.get("/v1/console/feeds", headers=bearer(dept))).json()
        assert feeds["scope"] == "env"
        assert [x["code"] for x in feeds["departments"]] == ["env"]
        every = (await c.get("/v1/console/feeds", headers=bearer(viewer))).json()
        assert {"env", "transport", "pscc"} <= {x["code"] for x in every["departments"]}


async def test_board_preview_audit_and_series(api_db: ApiDb) -> None:
    fp = await firing_alert(api_db, severity="critical", commune="00004")
    viewer = new_key(api_db, "viewer")
    operator = new_key(api_db, "operator", name="console-op-audit")
    async with api_client(api_db.settings) as c:
        board = (await c.get("/v1/console/board", headers=bearer(viewer))).json()
        assert board["as_of"] and not board["truncated"]
        assert fp in {a["fingerprint"] for a in board["alerts"]}
        # a preview is for whoever may create the silence (issue 24, finding 4)
        assert (await c.post("/v1/console/silences/preview", headers=bearer(viewer),
                             json={"matchers": ['severity="critical"']})).status_code == 403
        preview = (await c.post("/v1/console/silences/preview", headers=bearer(operator),
                                json={"matchers": ['commune_code="00004"',
                                                   'severity="critical"']})).json()
        assert fp in {a["fingerprint"] for a in preview["sample"]}
        none = (await c.post("/v1/console/silences/preview", headers=bearer(operator),
                             json={"matchers": ['commune_code="99999"']})).json()
        assert none["count"] == 0
        bad = await c.post("/v1/console/silences/preview", headers=bearer(operator),
                           json={"matchers": ["no operator here"]})
        assert bad.status_code == 400
        r = await c.post(f"/v1/alerts/{fp}/ack", headers=bearer(operator),
                         json={"note": "đang kiểm tra"})
        assert r.status_code == 200
        audit = (await c.get("/v1/console/audit", params={"target": fp},
                             headers=bearer(viewer))).json()
        assert audit[0]["actor"] == "console-op-audit"
        assert audit[0]["detail"]["note"] == "đang kiểm tra"
        series = (await c.get(f"/v1/console/alerts/{fp}/series", headers=bearer(viewer))).json()
        assert series["points"] == [] and "reason" in series  # not a configured rule
        assert (await c.get("/v1/console/alerts/nope/series",
                            headers=bearer(viewer))).status_code == 404
        drill = (await c.get("/v1/console/communes/00004", headers=bearer(viewer)))
        assert drill.status_code in (200, 404)  # 404 until boundaries are loaded
        kpis = (await c.get("/v1/console/kpis", params={"province": "01"},
                            headers=bearer(viewer))).json()
        assert {k["kpi"] for k in kpis["kpis"]} >= {"online_share", "on_time_share"}
