"""The console's reads of citizen reports (``/v1/feedback/console``) against a real ``ioc
api`` process and database: who sees which reports (a department only its own, an IOC
key all), filters, keyset pages, the map's points and commune counts, the KPI strip,
bounded inputs, and no reporter contact in any answer."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import psycopg
import pytest

from ioccore.feedback import catalogue, store
from ioccore.feedback.contract import FeedbackRatingV1, FeedbackReportV1, FeedbackStatusV1
from ioccore.kpis import VN_TZ
from tests.integration.feedback.conftest import FeedbackDb

pytestmark = pytest.mark.integration

EMAIL = "nguoi.bao@example.vn"


@dataclass(frozen=True)
class Data:
    ids: dict[str, str]          # name -> report_id
    received: dict[str, datetime]
    commune_only: str            # the commune of the report sent without coordinates


async def _store(conninfo: str, now: datetime) -> Data:
    cat = catalogue.default()
    plan: list[tuple[str, str, float, dict[str, Any], list[tuple[float, str]], int | None]] = [
        # name, service, hours ago, location, [(hours ago, status)], rating
        ("flood_overdue", "flooding", 10, {"lat": 21.0287, "lon": 105.8524},
         [(9, "assigned")], None),
        ("light_open", "streetlight", 1, {"commune_code": ""}, [], None),
        ("dump_resolved", "illegal_dumping", 5, {"lat": 21.0340, "lon": 105.8140},
         [(4, "in_progress"), (2, "resolved")], 5),
        ("flood_late", "flooding", 20, {"lat": 21.0287, "lon": 105.8524},
         [(19, "assigned"), (1, "resolved")], 2),
    ]
    ids: dict[str, str] = {}
    received: dict[str, datetime] = {}
    async with await psycopg.AsyncConnection.connect(conninfo, autocommit=True) as conn:
        row = await (await conn.execute(
            "SELECT commune_code FROM current_communes WHERE province_code = '01'"
            " ORDER BY commune_code DESC LIMIT 1")).fetchone()
        assert row is not None
        commune_only = str(row[0])
        for name, code, ago, where, statuses, rating in plan:
            svc = cat.service(code)
            assert svc is not None
            at = now - timedelta(hours=ago)
            loc = {"commune_code": commune_only} if "commune_code" in where else where
            report = FeedbackReportV1(event_id=name, source_id="test-app", occurred_at=at,
                                      service_code=code, description=f"{name} <b>x</b>",
                                      **loc)
            rid, _ = await store.store_report(conn, report, svc, store.Contact(email=EMAIL),
                                              nearest_max_m=2000)
            ids[name], received[name] = rid, at
            for i, (s_ago, status) in enumerate(statuses):
                await store.store_status(conn, FeedbackStatusV1(
                    event_id=f"{name}-{i}", source_id="desk", department=svc.department,
                    report_id=rid, occurred_at=now - timedelta(hours=s_ago),
                    status=status))  # type: ignore[arg-type]
            if rating is not None:
                await store.store_rating(conn, FeedbackRatingV1(
                    report_id=rid, rating=rating, occurred_at=now - timedelta(minutes=30)))
    return Data(ids, received, commune_only)


@pytest.fixture(scope="module")
def data(feedback_db: FeedbackDb) -> Data:
    return asyncio.run(_store(feedback_db.conninfo, datetime.now(UTC)))


@pytest.fixture(scope="module")
def keys(feedback_db: FeedbackDb) -> Iterator[dict[str, str]]:
    yield {"viewer": feedback_db.key("viewer"),
           "construction": feedback_db.key("department", "construction"),
           "env": feedback_db.key("department", "env"),
           "env_responder": feedback_db.key("responder", "env")}


def _get(url: str, key: str | None, path: str, **params: Any) -> httpx.Response:
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    return httpx.get(f"{url}/v1/feedback/console/{path}", params=params, headers=headers,
                     timeout=30)


def _ids(answer: dict[str, Any]) -> list[str]:
    return [r["report_id"] for r in answer["reports"]]


def test_each_key_reads_its_scope(api_url: str, data: Data, keys: dict[str, str]) -> None:
    ids = data.ids
    everyone = _get(api_url, keys["viewer"], "reports").json()
    assert everyone["scope"] == "all"
    # most urgent first: by due time (flooding 4 h, dumping 48 h, streetlight 72 h)
    assert _ids(everyone) == [ids["flood_late"], ids["flood_overdue"], ids["dump_resolved"],
                              ids["light_open"]]
    assert everyone["counts"] == {"open": 2, "overdue": 1}
    first = everyone["reports"][1]
    assert (first["status"], first["overdue"], first["department"]) == (
        "assigned", True, "construction")
    assert first["service"] == {"vi": "Ngập úng", "en": "Flooding"}
    assert 9.9 < first["age_hours"] < 10.1 and first["commune_name"]
    late = everyone["reports"][0]
    assert (late["status"], late["overdue"], late["late"], late["rating"]) == (
        "resolved", False, True, 2)
    light = everyone["reports"][3]
    assert (light["located"], light["commune_code"]) == (False, data.commune_only)

    construction = _get(api_url, keys["construction"], "reports").json()
    assert construction["scope"] == "construction"
    assert _ids(construction) == [ids["flood_late"], ids["flood_overdue"], ids["light_open"]]
    env = _get(api_url, keys["env"], "reports").json()
    assert _ids(env) == [ids["dump_resolved"]] and env["counts"] == {"open": 0, "overdue": 0}
    assert _ids(_get(api_url, keys["env_responder"], "reports").json()) == [
        ids["dump_resolved"]]
    # a department cannot widen its scope; an IOC key can narrow its own
    other = _get(api_url, keys["env"], "reports", department="construction")
    assert other.status_code == 403 and other.json()["error"] == "other_department"
    assert _ids(_get(api_url, keys["viewer"], "reports", department="env").json()) == [
        ids["dump_resolved"]]
    assert _get(api_url, None, "reports").status_code == 401
    assert _get(api_url, "ioc_nope_nope", "reports").status_code == 401
    for answer in (everyone, construction, env):
        assert EMAIL not in json.dumps(answer)


def test_filters_and_pages(api_url: str, data: Data, keys: dict[str, str]) -> None:
    ids, key = data.ids, keys["viewer"]
    assert _ids(_get(api_url, key, "reports", status="open").json()) == [
        ids["flood_overdue"], ids["light_open"]]
    assert _ids(_get(api_url, key, "reports", overdue="true").json()) == [ids["flood_overdue"]]
    assert _ids(_get(api_url, key, "reports", status="resolved", overdue="false").json()) == [
        ids["flood_late"], ids["dump_resolved"]]
    assert _ids(_get(api_url, key, "reports", commune=data.commune_only).json()) == [
        ids["light_open"]]
    seen: list[str] = []
    after: str | None = None
    for _ in range(10):
        params: dict[str, Any] = {"limit": 1} | ({"after": after} if after else {})
        page = _get(api_url, key, "reports", **params).json()
        seen += _ids(page)
        after = page["next"]
        if after is None:
            break
    assert seen == _ids(_get(api_url, key, "reports").json())  # every report once, in order
    for bad in ({"limit": 201}, {"limit": 0}, {"status": "lost"}, {"province": "1"},
                {"commune": "x' OR 1=1"}, {"after": "not-a-cursor"}, {"after": "x" * 300},
                {"department": "A B"}):
        assert _get(api_url, key, "reports", **bad).status_code in (400, 422), bad


def test_map_points_and_commune_counts(api_url: str, data: Data,
                                       keys: dict[str, str]) -> None:
    ids = data.ids
    doc = _get(api_url, keys["viewer"], "map", province="01").json()
    assert doc["type"] == "FeatureCollection" and (doc["open"], doc["truncated"]) == (2, False)
    points = [f for f in doc["features"] if f["properties"]["kind"] == "report"]
    communes = [f for f in doc["features"] if f["properties"]["kind"] == "commune"]
    # open reports only, overdue first; one sent without coordinates sits in its commune
    assert [p["id"] for p in points] == [ids["flood_overdue"], ids["light_open"]]
    assert points[0]["properties"]["overdue"] is True
    assert points[0]["properties"]["service"] == {"vi": "Ngập úng", "en": "Flooding"}
    assert points[0]["geometry"] == {"type": "Point", "coordinates": [105.8524, 21.0287]}
    assert points[1]["properties"]["located"] is False
    assert points[1]["geometry"]["type"] == "Point"
    assert {c["id"]: (c["properties"]["open"], c["properties"]["overdue"])
            for c in communes}[data.commune_only] == (1, 0)
    assert all(c["geometry"]["type"] in ("Polygon", "MultiPolygon") for c in communes)
    assert sum(c["properties"]["open"] for c in communes) == 2
    env = _get(api_url, keys["env"], "map").json()
    assert (env["scope"], env["open"], env["features"]) == ("env", 0, [])
    construction = _get(api_url, keys["construction"], "map").json()
    assert construction["open"] == 2
    assert _get(api_url, keys["env"], "map", department="construction").status_code == 403
    assert _get(api_url, None, "map").status_code == 401
    assert EMAIL not in json.dumps(doc)


def test_kpi_strip(api_url: str, data: Data, keys: dict[str, str]) -> None:
    month_start = datetime.now(VN_TZ).date().replace(day=1)
    in_month = {n for n, at in data.received.items() if at.astimezone(VN_TZ).date() >= month_start}
    k = _get(api_url, keys["viewer"], "kpis", province="01").json()
    assert (k["scope"], k["code"], k["from"]) == ("province", "01", month_start.isoformat())
    assert k["received"] == len(in_month)
    assert k["overdue_now"] == 1  # whenever received
    resolved = in_month & {"dump_resolved", "flood_late"}
    assert k["resolved"] == len(resolved)
    if resolved == {"dump_resolved", "flood_late"}:
        assert k["share_resolved_in_sla"] == 0.5 and k["satisfaction"] == 3.5
        assert k["median_hours_to_resolve"] == pytest.approx(11.0, abs=0.01)
    env = _get(api_url, keys["env"], "kpis", province="01").json()
    assert (env["scope"], env["code"], env["overdue_now"]) == ("department", "env", 0)
    assert env["received"] == len(in_month & {"dump_resolved"})
    assert _get(api_url, keys["viewer"], "kpis").status_code == 400
