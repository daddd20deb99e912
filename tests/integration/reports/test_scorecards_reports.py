"""Scorecards and periodic reports on the real database (docs/kpis.md "Scorecards",
docs/reports.md): per-unit targets with fallback, competition ranks with a tie, a unit
without a denominator, the XLSX opened with openpyxl and checked against the database,
the CSV, and the schedule making each month's report exactly once under two processes.

October 2026, province 01 (online_share = received_online / received):

| agency (tier) | commune | received | online | share |
|---|---|---|---|---|
| ubnd-00004 (commune) | 00004 | 10 | 8 | 0.8 (own target 0.85: below) |
| ubnd-00007 (commune) | 00007 | 5 | 4 | 0.8 (province default 0.80: met) |
| stp-01 (province) | 00004 | 4 | 1 | 0.25 |
| sxd-01 (province) | - | 0 | 0 | no data |

Communes: 00007 4/5 = 0.8 (rank 1), 00004 9/14 (rank 2). Provinces: 02 2/2 and 03 3/3
tie at rank 1, 01 13/19 is rank 3.
"""

from __future__ import annotations

import asyncio
import csv
import io
import threading
from collections.abc import Iterator
from datetime import date
from pathlib import Path
from typing import Any

import psycopg
import pytest
from iocdev.sandbox import fresh_database
from openpyxl import load_workbook
from typer.testing import CliRunner

from ioc.cli import app
from ioccore.agencies import parse_registry, write_registry
from ioccore.reports import store
from ioccore.settings import Settings
from tests.integration.api.apihelpers import ApiDb, api_client, bearer, new_key

pytestmark = pytest.mark.integration

REGISTRY = """code,name,tier,seat_commune,province_code
ubnd-00004,Bộ phận Một cửa Phường Ba Đình,commune,00004,01
ubnd-00007,Bộ phận Một cửa Phường Ngọc Hà,commune,00007,01
stp-01,Sở Tư pháp Thành phố Hà Nội,province,00004,01
sxd-01,Sở Xây dựng Thành phố Hà Nội,province,00004,01
"""
ROWS = [  # day, agency, province, commune, received, received_online
    ("2026-10-05", "ubnd-00004", "01", "00004", 10, 8),
    ("2026-10-06", "ubnd-00007", "01", "00007", 5, 4),
    ("2026-10-07", "stp-01", "01", "00004", 4, 1),
    ("2026-10-08", "x-02", "02", "00100", 2, 2),
    ("2026-10-09", "x-03", "03", "00200", 3, 3),
    ("2026-09-20", "ubnd-00004", "01", "00004", 10, 5),  # September: the previous month
]
UNIT_TARGETS = [("online_share", "agency", "ubnd-00004", 0.85, "2026-10-01"),
                ("online_share", "agency", "ubnd-00004", 0.10, "2027-01-01")]


@pytest.fixture(scope="module")
def db(stack: Settings) -> Iterator[ApiDb]:
    with fresh_database(stack, "ioc_reports") as (name, conninfo):
        with psycopg.connect(conninfo, autocommit=True) as conn:
            write_registry(conn, parse_registry(io.StringIO(REGISTRY)),
                           valid_from=date(2025, 7, 1), source="test")
            for day, agency, prov, commune, received, online in ROWS:
                conn.execute(
                    "INSERT INTO kpi_counts_daily (day, agency, province_code, commune_code,"
                    " received, received_online) VALUES (%s, %s, %s, %s, %s, %s)",
                    (day, agency, prov, commune, received, online))
            conn.cursor().executemany(
                "INSERT INTO kpi_unit_targets (kpi, level, unit_code, target, valid_from)"
                " VALUES (%s, %s, %s, %s, %s)", UNIT_TARGETS)
            conn.execute(
                "INSERT INTO alerts (fingerprint, rule_id, state, severity, labels, "
                "commune_code, province_code, seq, started_at, firing_at, updated_at) "
                "VALUES ('fp-1', 'pm25_high', 'firing', 'critical', '{}', '00004', '01', 1,"
                " '2026-10-10T03:00Z', '2026-10-10T03:05Z', '2026-10-10T03:05Z')")
        # no worker here: admission control would only watch the lag of idle topics
        # (the API tests' fixture turns it off the same way)
        api = stack.api.model_copy(update={"backpressure": stack.api.backpressure.model_copy(
            update={"enabled": False})})
        settings = stack.model_copy(update={
            "api": api,
            "database": stack.database.model_copy(update={"dbname": name, "pool_max": 4})})
        yield ApiDb(name, conninfo, settings)


def _units(body: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {u["code"]: u["kpis"]["online_share"] for u in body["units"]}


async def _get(db: ApiDb, path: str, **params: str) -> Any:
    key = new_key(db, "viewer")
    async with api_client(db.settings) as client:
        r = await client.get(path, headers=bearer(key), params=params)
    assert r.status_code == 200, r.text
    return r.json()


def test_scorecards_targets_ranks_ties_and_no_data(db: ApiDb) -> None:
    agencies = asyncio.run(_get(db, "/v1/scorecards", level="agency", province="01",
                                period="2026-10-15"))
    a = _units(agencies)
    assert (a["ubnd-00004"]["rank"], a["ubnd-00007"]["rank"], a["stp-01"]["rank"]) == (1, 1, 3)
    assert a["ubnd-00004"]["target"] == 0.85 and a["ubnd-00004"]["status"] == "below"
    assert a["ubnd-00007"]["target"] == 0.80 and a["ubnd-00007"]["status"] == "met"
    assert a["sxd-01"] == {"numerator": 0, "denominator": 0, "value": None, "target": 0.8,
                           "previous": None, "status": "no_data", "rank": None}
    assert [u["code"] for u in agencies["units"]][-1] == "sxd-01"  # unranked last
    assert (agencies["peers"], agencies["ranked"]) == (4, 3)

    communes = _units(asyncio.run(_get(db, "/v1/scorecards", level="commune",
                                       province="01", period="2026-10-01")))
    assert communes["00007"]["rank"] == 1 and communes["00004"]["rank"] == 2
    assert (communes["00004"]["numerator"], communes["00004"]["denominator"]) == (9, 14)

    provinces = _units(asyncio.run(_get(db, "/v1/scorecards", level="province",
                                        period="2026-10-31")))
    assert (provinces["02"]["rank"], provinces["03"]["rank"], provinces["01"]["rank"]) == (
        1, 1, 3)
    assert (provinces["01"]["numerator"], provinces["01"]["denominator"]) == (13, 19)


def test_scorecard_refuses_a_level_without_its_province(db: ApiDb) -> None:
    async def go() -> int:
        key = new_key(db, "viewer")
        async with api_client(db.settings) as client:
            r = await client.get("/v1/scorecards", headers=bearer(key),
                                 params={"level": "commune"})
        return r.status_code
    assert asyncio.run(go()) == 400


def test_report_xlsx_and_csv_match_the_database(db: ApiDb) -> None:
    async def go() -> tuple[dict[str, Any], bytes, bytes, dict[str, Any]]:
        op, viewer = new_key(db, "operator"), new_key(db, "viewer")
        async with api_client(db.settings) as client:
            r = await client.post("/v1/reports", headers=bearer(op),
                                  json={"scope": "01", "period": "2026-10-15"})
            assert r.status_code == 201, r.text
            info = r.json()
            x = await client.get(info["files"]["xlsx"], headers=bearer(viewer))
            c = await client.get(info["files"]["csv"], headers=bearer(viewer))
            assert x.status_code == 200 and c.status_code == 200
            assert x.headers["content-type"].startswith("application/vnd.openxmlformats")
            listed = (await client.get("/v1/reports", headers=bearer(viewer),
                                       params={"scope": "01"})).json()
        return info, x.content, c.content, listed

    info, xlsx, raw_csv, listed = asyncio.run(go())
    assert info["id"] in [r["id"] for r in listed["reports"]]
    with psycopg.connect(db.conninfo) as conn:
        cutoff = conn.execute("SELECT cutoff FROM reports WHERE id = %s",
                              (info["id"],)).fetchone()
        by_tier: dict[str, list[int]] = dict(conn.execute(
            "SELECT tier, ARRAY[sum(received_online), sum(received)]::bigint[] FROM kpi_daily"
            " WHERE province_code = '01' AND day >= '2026-10-01' AND day < '2026-11-01'"
            " GROUP BY tier").fetchall())
    assert cutoff is not None
    wb = load_workbook(io.BytesIO(xlsx), read_only=True)
    head = {r[0]: r[1] for r in wb["Report"].iter_rows(values_only=True)}
    assert (head["scope"], head["period_from"], head["period_to"]) == (
        "01", "2026-10-01", "2026-10-31")
    assert head["data_cutoff"] == cutoff[0].isoformat()
    tiers = {(r[0], r[1]): r for r in wb["KPIs by tier"].iter_rows(min_row=2,
                                                                   values_only=True)}
    assert tiers[("all", "online_share")][3:5] == (13, 19)
    for tier, (num, den) in by_tier.items():
        assert tiers[(tier, "online_share")][3:5] == (num, den)
    assert tiers[("all", "online_share")][8] == 0.5  # September: 5/10
    cards = [r for r in wb["Scorecards"].iter_rows(min_row=2, values_only=True)
             if r[4] == "online_share"]
    ranks = {(r[0], r[1]): r[10] for r in cards}
    assert ranks[("agency", "ubnd-00004")] == ranks[("agency", "ubnd-00007")] == 1
    assert ranks[("agency", "sxd-01")] is None and ranks[("province", "01")] == 3
    alerts = list(wb["Alerts"].iter_rows(min_row=2, values_only=True))
    assert alerts == [("01", "pm25_high", "critical", "firing", 1)]

    rows = list(csv.reader(io.StringIO(raw_csv.decode("utf-8-sig"))))
    assert rows[0][0] == "section"
    meta = {r[2]: r[3] for r in rows if r[0] == "report"}
    assert meta["data_cutoff"] == cutoff[0].isoformat()
    assert meta["period_from"] == "2026-10-01"
    kpi = [r for r in rows if r[0] == "kpi" and r[4] == "all" and r[5] == "online_share"]
    assert kpi[0][6:8] == ["13", "19"]


def test_schedule_makes_each_month_once_under_two_processes(db: ApiDb) -> None:
    made: list[list[int]] = []
    barrier = threading.Barrier(2)

    def process(me: str) -> None:
        with psycopg.connect(db.conninfo, autocommit=True) as conn:
            barrier.wait(timeout=60)
            made.append(store.run_schedule(conn, source="kpi_daily",
                                           today=date(2026, 11, 3), me=me))

    threads = [threading.Thread(target=process, args=(f"p{i}",)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert len(made) == 2, "a scheduler did not finish"
    with psycopg.connect(db.conninfo, autocommit=True) as conn:
        rows = conn.execute(
            "SELECT scope, state, count(*) FROM reports WHERE kind = 'scheduled' "
            "AND period = '2026-10-01' GROUP BY 1, 2 ORDER BY 1").fetchall()
        assert rows == [("01", "done", 1), ("02", "done", 1), ("03", "done", 1),
                        ("nation", "done", 1)]
        assert sorted(i for m in made for i in m) == sorted(
            r[0] for r in conn.execute("SELECT id FROM reports WHERE kind = 'scheduled' "
                                       "AND period = '2026-10-01'"))
        # again (a restart): nothing new; too early in the month: nothing at all
        assert store.run_schedule(conn, source="kpi_daily", today=date(2026, 11, 20)) == []
        assert store.run_schedule(conn, source="kpi_daily", today=date(2026, 12, 1)) == []
        # a claim whose process died is taken over after the lease, and finished once
        conn.execute("INSERT INTO reports (kind, scope, grain, period, source, claimed_by,"
                     " claimed_at) VALUES ('scheduled', '01', 'month', '2026-09-01', "
                     "'kpi_daily', 'dead', now() - interval '1 hour')")
        again = store.run_schedule(conn, source="kpi_daily", today=date(2026, 10, 2),
                                   scopes=["01"], me="heir")
        assert len(again) == 1
        assert conn.execute("SELECT state, claimed_by FROM reports WHERE id = %s",
                            (again[0],)).fetchone() == ("done", "heir")


def test_cli_unit_targets_and_reports(db: ApiDb, tmp_path: Path) -> None:
    cli = CliRunner()
    targets = tmp_path / "units.csv"
    targets.write_text("kpi,level,unit_code,target,valid_from,valid_to\n"
                       "on_time_share,commune,00007,0.97,2026-10-01,\n", encoding="utf-8")
    r = cli.invoke(app, ["kpis", "targets", "load", str(targets), "--database", db.name])
    assert r.exit_code == 0 and "1 targets written" in r.output, r.output
    r = cli.invoke(app, ["kpis", "targets", "list", "--database", db.name])
    assert "on_time_share\tcommune:00007\t-\t0.97\t2026-10-01" in r.output, r.output
    r = cli.invoke(app, ["reports", "generate", "nation", "--period", "2026-10-03",
                         "--out", str(tmp_path / "oct"), "--database", db.name])
    assert r.exit_code == 0, r.output
    head = {row[0]: row[1] for row in load_workbook(tmp_path / "oct.xlsx", read_only=True)[
        "Report"].iter_rows(values_only=True)}
    assert (head["scope"], head["period_from"]) == ("nation", "2026-10-01")
    assert (tmp_path / "oct.csv").read_bytes().startswith(b"\xef\xbb\xbfsection,")
    r = cli.invoke(app, ["reports", "list", "--scope", "nation", "--database", db.name])
    assert "\ton_demand\tnation\tmonth\t2026-10-01\tdone\t" in r.output, r.output


def test_a_viewer_cannot_make_a_report(db: ApiDb) -> None:
    async def go() -> tuple[int, int]:
        key = new_key(db, "viewer")
        async with api_client(db.settings) as client:
            made = await client.post("/v1/reports", headers=bearer(key),
                                     json={"scope": "01"})
            missing = await client.get("/v1/reports/999999.xlsx", headers=bearer(key))
        return made.status_code, missing.status_code
    assert asyncio.run(go()) == (403, 404)


def test_national_report_reads_what_provinces_published(db: ApiDb, stack: Settings) -> None:
    """At a national ioc (source fed_kpi_daily) the report sums the provinces' published
    day rows and lists each province's latest alert summary."""
    with psycopg.connect(stack.database.owner_conninfo(dbname=db.name),
                         autocommit=True) as owner:
        for origin, received, online in (("01", 10, 6), ("79", 5, 5)):
            owner.execute(
                "INSERT INTO fed_kpi_counts (origin, day, agency, applicant_province, "
                "applicant_commune, province_code, commune_code, tier, received, "
                "received_online, received_digitised, resolved, resolved_online, "
                "resolved_with_due, resolved_on_time, paid_fee_bearing, paid_online, as_of,"
                " digest) VALUES (%s, '2026-08-04', 'a', %s, 'unassigned', %s, 'unassigned',"
                " 'commune', %s, %s, 0, 0, 0, 0, 0, 0, 0, now(), '\\x00')",
                (origin, origin, origin, received, online))
        owner.execute(
            "INSERT INTO fed_snapshots (origin, kind, body, as_of, digest) VALUES ('79', "
            "'alert_summary', '{\"alerts\": [{\"rule_id\": \"flood\", \"severity\": "
            "\"critical\", \"state\": \"firing\", \"count\": 3}]}', now(), '\\x00')")
    with psycopg.connect(db.conninfo, autocommit=True) as conn:
        info = store.generate_on_demand(conn, scope="nation", grain="month",
                                        period=date(2026, 8, 20), source="fed_kpi_daily",
                                        requested_by="test")
        row = conn.execute("SELECT xlsx FROM reports WHERE id = %s", (info.id,)).fetchone()
    assert row is not None
    wb = load_workbook(io.BytesIO(bytes(row[0])), read_only=True)
    head = {r[0]: r[1] for r in wb["Report"].iter_rows(values_only=True)}
    assert (head["scope"], head["source"]) == ("nation", "fed_kpi_daily")
    tiers = {(r[0], r[1]): r for r in wb["KPIs by tier"].iter_rows(min_row=2,
                                                                   values_only=True)}
    assert tiers[("all", "online_share")][3:5] == (11, 15)
    ranks = {r[1]: r[10] for r in wb["Scorecards"].iter_rows(min_row=2, values_only=True)
             if r[0] == "province" and r[4] == "online_share"}
    assert ranks == {"79": 1, "01": 2}
    assert list(wb["Alerts"].iter_rows(min_row=2, values_only=True)) == [
        ("79", "flood", "critical", "firing", 3)]
