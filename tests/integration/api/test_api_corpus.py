"""The hostile-input corpus through the gateway (issue 15): every case gets its expected
HTTP answer, its valid neighbours in the same request are accepted, and no case gets a
5xx. Runs the real app against the real database and broker (fresh topics)."""

from __future__ import annotations

import base64
import json
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import pytest

from ioc.api.auth import ensure_department
from ioccore.settings import ROOT, Settings, TopicSettings
from tests.integration.api.apihelpers import ApiDb, api_client, bearer, new_key

pytestmark = [pytest.mark.integration, pytest.mark.asyncio(loop_scope="session")]

CORPUS = ROOT / "tests" / "data" / "malformed" / "corpus.jsonl"
CASES = [json.loads(line) for line in CORPUS.read_text().splitlines() if line.strip()]
DEPARTMENTS = ("01-nnmt", "01-sgtvt", "01-phvhcc", "01-vpubnd", "01-xd")


def raw_of(case: dict[str, Any]) -> bytes:
    return base64.b64decode(case["raw_b64"]) if "raw_b64" in case else str(case["raw"]).encode()


def department_of(raw: bytes) -> str:
    try:
        doc = json.loads(raw)
    except (ValueError, RecursionError):
        return DEPARTMENTS[0]
    items = doc if isinstance(doc, list) else [doc]
    for item in items:
        if isinstance(item, dict) and item.get("department") in DEPARTMENTS:
            return str(item["department"])
    return DEPARTMENTS[0]


def neighbour(dept: str) -> bytes:
    at = (datetime.now(UTC) - timedelta(minutes=1)).isoformat()
    return json.dumps({
        "schema_version": 1, "feed": "sensor", "event_id": f"n-{uuid.uuid4().hex[:10]}",
        "source_id": f"gw-{dept}", "department": dept, "occurred_at": at,
        "location": {"lat": 21.04, "lon": 105.82},
        "body": {"metric": "pm10", "value": 80.5, "unit": "ug/m3"}}).encode()


async def test_corpus_through_the_gateway(api_db: ApiDb, new_topic: Callable[..., str]
                                          ) -> None:
    assert len(CASES) >= 80
    with psycopg.connect(api_db.conninfo, autocommit=True) as conn:
        for dept in DEPARTMENTS:
            ensure_department(conn, dept, ["sensor", "traffic", "service"], dept)
    keys = {dept: new_key(api_db, "department", dept) for dept in DEPARTMENTS}
    topics = api_db.settings.kafka.topics.model_copy(update={
        feed: TopicSettings(name=new_topic(1, prefix=f"corpus-{feed}"), partitions=1)
        for feed in ("sensor", "traffic", "service")})
    kafka = api_db.settings.kafka.model_copy(update={"topics": topics})
    api = api_db.settings.api.model_copy(update={"rate_limit_per_minute": 0})
    settings: Settings = api_db.settings.model_copy(update={"kafka": kafka, "api": api})
    checked = 0
    failures: list[str] = []
    async with api_client(settings) as client:
        async def post(body: bytes, dept: str) -> Any:
            return await client.post("/v1/events", content=body, headers={
                "Content-Type": "application/json", **bearer(keys[dept])})

        for case in CASES:
            if case.get("gateway") is False:
                continue
            name = case["name"]
            raw = raw_of(case)
            dept = department_of(raw)
            expected = case.get("gateway_reason", case["expected_reason"])
            if case.get("batchable", True):
                if case.get("prime"):
                    await post(b"[" + raw + b"]", dept)
                body = b"[" + b",".join([neighbour(dept), raw, neighbour(dept)]) + b"]"
                r = await post(body, dept)
                want_status = 200 if expected is None else 207
                if r.status_code != want_status:
                    failures.append(f"{name}: {r.status_code} {r.text[:200]}")
                    continue
                results = r.json()["results"]
                got = [x["reason"] for x in results]
                if got != [None, expected, None]:
                    failures.append(f"{name}: {got}")
                checked += 1
                continue
            assert "http_status" in case, f"{name}: a message-level case needs http_status"
            r = await post(raw, dept)
            if r.status_code != case["http_status"]:
                failures.append(f"{name}: {r.status_code} (want {case['http_status']}) "
                                f"{r.text[:200]}")
                continue
            outcome = case.get("expected_outcome")
            if outcome is not None:
                results = r.json()["results"]
                accepted = sum(x["count"] for x in results if x["status"] == "accepted")
                if accepted != outcome["accepted"]:
                    failures.append(f"{name}: accepted {accepted}")
                rejected = [[x["reason"], x["index"], x["count"]] for x in results
                            if x["status"] == "rejected"]
                if rejected != outcome["rejections"]:  # a run is one result with its count
                    failures.append(f"{name}: {rejected}")
            elif r.status_code >= 400 and r.json().get("error") != case["expected_reason"]:
                failures.append(f"{name}: error {r.json().get('error')}")
            checked += 1
    print(f"gateway corpus: {checked} cases checked")
    assert not failures, "\n".join(failures)
    assert checked >= 80
