"""The GeoJSON map layer after `ioc geo load`, and /healthz, /readyz, /metrics."""

from __future__ import annotations

from datetime import UTC, date, datetime

import psycopg
import pytest

from geo.reference import SOURCE, read_reference
from geo.store import write_units
from ioccore.settings import Settings
from tests.integration.api.apihelpers import ApiDb, api_client, bearer, firing_alert, new_key

pytestmark = [pytest.mark.integration, pytest.mark.asyncio(loop_scope="session")]


@pytest.fixture(scope="module")
def loaded(api_db: ApiDb) -> ApiDb:
    """The bundled reference loaded (what `ioc geo load` does without a file)."""
    units = read_reference(api_db.settings.resolve(api_db.settings.geo.reference)).units
    with psycopg.connect(api_db.conninfo) as conn:
        write_units(conn, units, source=SOURCE, valid_from=date(2025, 7, 1))
    return api_db


async def test_communes_of_hanoi_with_alerts_and_kpis(loaded: ApiDb) -> None:
    with psycopg.connect(loaded.conninfo, autocommit=True) as conn:
        row = conn.execute("SELECT commune_code FROM current_communes WHERE province_code = '01'"
                           " ORDER BY commune_code LIMIT 1").fetchone()
        assert row is not None
        commune = str(row[0])
        bucket = datetime.now(UTC).replace(second=0, microsecond=0)
        conn.execute(
            "INSERT INTO rollup_1m (bucket, commune_code, metric, province_code, count, sum,"
            " min, max, last, last_at) VALUES"
            " (%(b)s, %(c)s, 'service.received', '01', 40, 40, 1, 1, 1, %(b)s),"
            " (%(b)s, %(c)s, 'service.received.online', '01', 40, 30, 0, 1, 1, %(b)s),"
            " (%(b)s, %(c)s, 'service.resolved.on_time', '01', 10, 9, 0, 1, 1, %(b)s)",
            {"b": bucket, "c": commune})
    await firing_alert(loaded, severity="critical", commune=commune, province="01")
    await firing_alert(loaded, severity="warning", commune=commune, province="01")
    viewer = new_key(loaded, "viewer")
    async with api_client(loaded.settings) as c:
        assert (await c.get("/v1/geo/communes")).status_code == 401
        r = await c.get("/v1/geo/communes", params={"province": "01"}, headers=bearer(viewer))
        assert r.status_code == 200
        assert r.headers["content-type"].startswith("application/geo+json")
        doc = r.json()
        bad = await c.get("/v1/geo/communes", params={"province": "1; drop"},
                          headers=bearer(viewer))
        assert bad.status_code == 422
    assert doc["type"] == "FeatureCollection"
    assert len(doc["features"]) == 126
    feature = next(f for f in doc["features"] if f["id"] == commune)
    assert feature["geometry"]["type"] == "MultiPolygon"
    props = feature["properties"]
    assert props["code"] == commune and props["province_code"] == "01"
    assert props["province_name"] and props["name"]
    assert props["approximate"] is True
    assert props["alerts"] == {"critical": 1, "warning": 1, "info": 0, "pending": 0}
    kpi = props["kpi"]
    assert kpi["dossiers_received"] == 40
    assert kpi["online_share"] == pytest.approx(0.75)
    assert kpi["on_time_share"] == pytest.approx(0.9)
    assert kpi["paid_online_share"] is None
    others = [f for f in doc["features"] if f["id"] != commune]
    assert all(f["properties"]["alerts"]["critical"] == 0 for f in others)


async def test_health_ready_and_metrics(api_db: ApiDb) -> None:
    async with api_client(api_db.settings) as c:
        assert (await c.get("/healthz")).json() == {"status": "ok"}
        r = await c.get("/readyz")
        assert r.status_code == 200, r.text
        assert r.json()["failed"] == []
        r = await c.get("/metrics")
        assert r.status_code == 200
        assert 'ioc_api_requests_total{route="/readyz",status="200"}' in r.text


async def test_readyz_names_what_does_not_answer(api_db: ApiDb, stack: Settings) -> None:
    broken = api_db.settings.model_copy(update={
        "database": api_db.settings.database.model_copy(update={"port": 1}),
        "kafka": api_db.settings.kafka.model_copy(update={"bootstrap_servers": "127.0.0.1:1"}),
    })
    async with api_client(broken) as c:
        assert (await c.get("/healthz")).status_code == 200
        r = await c.get("/readyz")
        assert r.status_code == 503
        assert sorted(r.json()["failed"]) == ["database", "kafka"]
    db_only = api_db.settings.model_copy(update={
        "database": api_db.settings.database.model_copy(update={"port": 1})})
    async with api_client(db_only) as c:
        r = await c.get("/readyz")
        assert r.status_code == 503
        assert r.json()["failed"] == ["database"]
        assert r.json()["checks"]["kafka"] == "ok"
