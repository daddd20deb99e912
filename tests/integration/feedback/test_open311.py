"""Open311 GeoReport v2 against a real ``ioc api`` process: read with the real Open311
client ``georeport`` (PyPI), create with the spec's form POST and ``api_key`` (the
client has no create call), the spec's error format, the department workflow, the
reporter's privacy, and rate limits per device."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import httpx
import psycopg
import pytest
import requests
from georeport import GeoReport  # type: ignore[import-untyped]

from ioccore.feedback import catalogue
from tests.integration.feedback.conftest import FeedbackDb

pytestmark = pytest.mark.integration

HOAN_KIEM = {"lat": "21.0287", "long": "105.8524"}  # central Hà Nội


def _create(url: str, key: str, **fields: str) -> httpx.Response:
    form = {"api_key": key, "service_code": "flooding",
            "description": "Ngập sâu 40 cm trước số 12", **HOAN_KIEM, **fields}
    return httpx.post(f"{url}/open311/v2/requests.json", data=form, timeout=30)


def test_services_with_the_real_client(api_url: str) -> None:
    client = GeoReport(f"{api_url}/open311/v2")
    services = client.get_service_list()
    codes = [s["service_code"] for s in services]
    assert codes == [s.code for s in catalogue.default().services]
    flooding = services[codes.index("flooding")]
    assert flooding["service_name"] == "Ngập úng"
    assert flooding["metadata"] is False and flooding["type"] == "realtime"
    english = httpx.get(f"{api_url}/open311/v2/services.json", params={"locale": "en"}).json()
    assert english[codes.index("flooding")]["service_name"] == "Flooding"
    assert client.get_service_definition("flooding") == {"service_code": "flooding",
                                                         "attributes": []}
    with pytest.raises(requests.HTTPError):
        client.get_service_definition("no_such")
    missing = httpx.get(f"{api_url}/open311/v2/services/no_such.json")
    assert missing.status_code == 404
    assert missing.json() == [{"code": 404, "description": "no service has this service_code"}]


def test_create_query_and_workflow(api_url: str, feedback_db: FeedbackDb) -> None:
    app_key = feedback_db.key("department", "citizen-app")
    created = _create(api_url, app_key, email="dan@example.vn", phone="0912345678",
                      first_name="Lan", device_id="phone-1", client_request_id="c-1",
                      media_url="https://cdn.example.vn/p/1.jpg")
    assert created.status_code == 201, created.text
    [answer] = created.json()
    report_id = answer["service_request_id"]
    # a retried submission (same client_request_id) is the same report
    again = _create(api_url, app_key, device_id="phone-1", client_request_id="c-1")
    assert again.json()[0]["service_request_id"] == report_id
    with psycopg.connect(feedback_db.conninfo) as conn:
        counted = conn.execute("SELECT sum(count) FROM rollup_1m"
                               " WHERE metric = 'feedback.received.flooding'").fetchone()
    assert counted == (1,)  # the rollup counts the report once, not the retry

    client = GeoReport(f"{api_url}/open311/v2")
    one = client.get_service_request(report_id)
    assert one["status"] == "open" and one["service_code"] == "flooding"
    assert one["agency_responsible"] == "construction"
    assert one["media_url"] == "https://cdn.example.vn/p/1.jpg"
    assert one["commune_code"] and len(one["commune_code"]) == 5  # the geo join
    requested = datetime.fromisoformat(one["requested_datetime"])
    assert datetime.fromisoformat(one["expected_datetime"]) - requested == timedelta(hours=4)
    text = json.dumps(one)
    assert "dan@example.vn" not in text and "0912345678" not in text and "Lan" not in text

    now = datetime.now(UTC)
    listed = client.get_service_requests(
        service_code="flooding", status="open",
        start_date=(now - timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%SZ"),
        end_date=(now + timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%SZ"))
    assert report_id in [r["service_request_id"] for r in listed]
    inside = httpx.get(f"{api_url}/open311/v2/requests.json",
                       params={"bbox": "105.8,21.0,105.9,21.1"}).json()
    outside = httpx.get(f"{api_url}/open311/v2/requests.json",
                        params={"bbox": "106.5,20.5,106.8,20.9"}).json()
    assert report_id in [r["service_request_id"] for r in inside]
    assert report_id not in [r["service_request_id"] for r in outside]

    # another department cannot move it; the refusal is dead-lettered with its reason
    env_key = feedback_db.key("department", "env")
    change = {"event_id": "s-1", "source_id": "env-desk", "department": "env",
              "report_id": report_id, "occurred_at": now.isoformat(), "status": "assigned"}
    refused = httpx.post(f"{api_url}/v1/feedback/status", json=change,
                         headers={"Authorization": f"Bearer {env_key}"}).json()
    assert refused["results"] == [{"event_id": "s-1", "outcome": "not_routed_to_department"}]
    with psycopg.connect(feedback_db.conninfo) as conn:
        reasons = [r[0] for r in conn.execute("SELECT reason FROM feedback_dead_letters")]
    assert "not_routed_to_department" in reasons

    dep_key = feedback_db.key("department", "construction")
    headers = {"Authorization": f"Bearer {dep_key}"}
    changes = [dict(change, source_id="xd-desk", department="construction",
                    event_id=f"x-{i}", status=status,
                    occurred_at=(requested + timedelta(minutes=i + 1)).isoformat())
               for i, status in enumerate(["assigned", "in_progress", "resolved"])]
    stored = httpx.post(f"{api_url}/v1/feedback/status", json=changes, headers=headers).json()
    assert [r["outcome"] for r in stored["results"]] == ["stored"] * 3
    replay = httpx.post(f"{api_url}/v1/feedback/status", json=changes, headers=headers).json()
    assert [r["outcome"] for r in replay["results"]] == ["duplicate"] * 3
    early = dict(changes[0], event_id="x-early",
                 occurred_at=(requested - timedelta(minutes=1)).isoformat())
    future = dict(changes[0], event_id="x-future",
                  occurred_at=(now + timedelta(hours=1)).isoformat())
    odd = httpx.post(f"{api_url}/v1/feedback/status", json=[early, future],
                     headers=headers).json()
    assert [r["outcome"] for r in odd["results"]] == ["before_report", "timestamp_in_future"]
    assert client.get_service_request(report_id)["status"] == "closed"

    # the contact: the report's department only (and admins), never a viewer or another
    contact = httpx.get(f"{api_url}/v1/feedback/reports/{report_id}/contact", headers=headers)
    assert contact.status_code == 200 and contact.json()["email"] == "dan@example.vn"
    for other in (env_key, feedback_db.key("viewer")):
        denied = httpx.get(f"{api_url}/v1/feedback/reports/{report_id}/contact",
                           headers={"Authorization": f"Bearer {other}"})
        assert denied.status_code == 404

    rated = httpx.post(f"{api_url}/v1/feedback/ratings", headers={
        "Authorization": f"Bearer {app_key}"}, json={
        "report_id": report_id, "rating": 4, "occurred_at": now.isoformat()})
    assert rated.status_code == 200, rated.text
    viewer = {"Authorization": f"Bearer {feedback_db.key('viewer')}"}
    kpis = httpx.get(f"{api_url}/v1/feedback/kpis", params={"group_by": "department",
                                                             "code": "construction"},
                     headers=viewer).json()
    [row] = kpis["rows"]
    assert row["received"] == 1 and row["resolved"] == 1 and row["satisfaction"] == 4.0
    assert row["resolved_in_sla"] == 1 and row["median_hours_to_resolve"] == pytest.approx(
        0.05, abs=0.002)  # resolved 3 minutes after receipt


def test_errors_in_the_spec_format(api_url: str, feedback_db: FeedbackDb) -> None:
    no_key = _create(api_url, "")
    assert no_key.status_code == 403
    assert no_key.json() == [{"code": 403,
                              "description": "api_key is required to create a request"}]
    viewer = _create(api_url, feedback_db.key("viewer"))
    assert viewer.status_code == 403 and viewer.json()[0]["code"] == 403
    app_key = feedback_db.key("department", "citizen-app")
    unknown = _create(api_url, app_key, service_code="nope")
    assert unknown.status_code == 404 and unknown.json()[0]["code"] == 404
    http_url = _create(api_url, app_key, media_url="http://insecure.example/x.jpg")
    assert http_url.status_code == 400 and http_url.json()[0]["code"] == 400
    long_text = _create(api_url, app_key, description="x" * 5000)
    assert long_text.status_code == 400
    abroad = _create(api_url, app_key, lat="48.85", long="2.35")
    assert abroad.status_code == 400
    xml = httpx.get(f"{api_url}/open311/v2/services.xml")
    assert xml.status_code == 400 and xml.json()[0]["code"] == 400
    span = httpx.get(f"{api_url}/open311/v2/requests.json", params={
        "start_date": "2026-01-01T00:00:00Z", "end_date": "2026-06-01T00:00:00Z"})
    assert span.status_code == 400 and "90 days" in span.json()[0]["description"]


def test_rate_limit_per_device(api_url: str, feedback_db: FeedbackDb) -> None:
    app_key = feedback_db.key("department", "citizen-app")
    budget = catalogue.default().requests_per_hour_per_device
    codes = [_create(api_url, app_key, device_id="spammer").status_code
             for _ in range(budget + 1)]
    assert codes[:budget] == [201] * budget
    assert codes[budget] == 429
    # another device of the same app is not affected
    assert _create(api_url, app_key, device_id="honest").status_code == 201
