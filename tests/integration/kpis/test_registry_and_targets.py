"""`ioc agencies load` and `ioc kpis targets load` on the real database: history kept,
agencies missing from a later file closed, tiers reassigned retroactively (joined at
query time), bad files refused with their line."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psycopg
import pytest
from iocdev.sandbox import fresh_database
from typer.testing import CliRunner

from ioc.cli import app
from ioccore.settings import Settings

pytestmark = pytest.mark.integration

FIRST = """code,name,tier,seat_commune,province_code
ubnd-00004,Bộ phận Một cửa Phường Ba Đình,commune,00004,01
stp-01,Sở Tư pháp Thành phố Hà Nội,province,00004,01
new-01,Trung tâm Phục vụ hành chính công,province,,01
"""
SECOND = """code,name,tier,seat_commune,province_code
ubnd-00004,Bộ phận Một cửa Phường Ba Đình,commune,00004,01
stp-01,Sở Tư pháp Hà Nội,province,00004,01
"""


@pytest.fixture
def db(stack: Settings) -> Iterator[tuple[str, str]]:
    with fresh_database(stack, "ioc_registry") as pair:
        yield pair


def _dossier(conninfo: str, agency: str, dossier: str, at: datetime) -> None:
    with psycopg.connect(conninfo) as conn:
        conn.execute(
            "INSERT INTO service_events (time, event_id, source_id, department, commune_code,"
            " province_code, dossier_id, procedure_code, agency, channel, status, due_at,"
            " geo, received_at) VALUES (%s, %s, 'desk', 'pscc', 'unassigned', 'unassigned',"
            " %s, '1.001', %s, 'online', 'received', %s, 'code', now())",
            (at, dossier, dossier, agency, at))
        conn.commit()


def _tiers(conninfo: str) -> dict[str, tuple[Any, ...]]:
    """Tier, province, commune per day counted (the dossiers here: one per day)."""
    with psycopg.connect(conninfo) as conn:
        return {str(r[0]): r[1:] for r in conn.execute(
            "SELECT day, tier, province_code, commune_code FROM kpi_daily WHERE received > 0")}


def test_registry_history_and_retroactive_tiers(db: tuple[str, str], tmp_path: Path) -> None:
    name, conninfo = db
    cli = CliRunner()
    nov = datetime(2026, 11, 10, 3, tzinfo=UTC)
    _dossier(conninfo, "new-01", "N1", nov)
    assert _tiers(conninfo)["2026-11-10"] == ("unassigned", "unassigned", "unassigned")
    first, second = tmp_path / "first.csv", tmp_path / "second.csv"
    first.write_text(FIRST, encoding="utf-8")
    second.write_text(SECOND, encoding="utf-8")
    r = cli.invoke(app, ["agencies", "load", str(first), "--valid-from", "2025-07-01",
                         "--database", name])
    assert r.exit_code == 0, r.output
    assert "3 new, 0 changed, 0 unchanged, 0 closed" in r.output
    # the agency is known now: its past dossier gets its tier and province (no commune
    # matched, and the agency has no seat: the commune stays unassigned)
    assert _tiers(conninfo)["2026-11-10"] == ("province", "01", "unassigned")
    r = cli.invoke(app, ["agencies", "load", str(second), "--valid-from", "2026-12-01",
                         "--database", name])
    assert r.exit_code == 0, r.output
    assert "0 new, 1 changed, 1 unchanged, 1 closed" in r.output
    _dossier(conninfo, "new-01", "N2", datetime(2026, 12, 5, 3, tzinfo=UTC))
    tiers = _tiers(conninfo)
    # by the version valid on the day counted: new-01 was closed on 2026-12-01
    assert tiers["2026-11-10"][0] == "province" and tiers["2026-12-05"][0] == "unassigned"
    with psycopg.connect(conninfo) as conn:
        versions = conn.execute("SELECT name, valid_from::text, valid_to::text FROM agencies"
                                " WHERE code = 'stp-01' ORDER BY valid_from").fetchall()
    assert versions == [("Sở Tư pháp Thành phố Hà Nội", "2025-07-01", "2026-12-01"),
                        ("Sở Tư pháp Hà Nội", "2026-12-01", None)]
    r = cli.invoke(app, ["agencies", "list", "--province", "01", "--database", name])
    assert r.exit_code == 0 and "new-01" not in r.output and "stp-01\tprovince" in r.output

    bad = tmp_path / "bad.csv"
    bad.write_text(FIRST.replace("commune,00004,01", "district,00004,01"), encoding="utf-8")
    r = cli.invoke(app, ["agencies", "load", str(bad), "--database", name])
    assert r.exit_code == 2 and "line 2" in r.output and "district" in r.output


def test_targets_load_and_resolution(db: tuple[str, str], tmp_path: Path) -> None:
    name, conninfo = db
    targets = tmp_path / "targets.csv"
    targets.write_text("kpi,province_code,tier,target,valid_from,valid_to\n"
                       "online_share,01,province,0.6,2026-11-01,2027-01-01\n"
                       "online_share,*,commune,0.99,2025-07-01,\n"
                       "online_share,01,*,0.7,2025-07-01,\n", encoding="utf-8")
    r = CliRunner().invoke(app, ["kpis", "targets", "load", str(targets), "--database", name])
    assert r.exit_code == 0 and "3 targets written" in r.output, r.output
    with psycopg.connect(conninfo) as conn:
        def target(province: str | None, tier: str | None, day: str) -> Any:
            row = conn.execute("SELECT kpi_target('online_share', %s, %s, %s::date)",
                               (province, tier, day)).fetchone()
            return row[0] if row else None

        assert target("01", "province", "2026-11-15") == 0.6   # province + tier
        assert target("01", "province", "2027-01-01") == 0.7   # expired: province row
        assert target("01", "commune", "2026-11-15") == 0.7    # province beats tier
        assert target("02", "commune", "2026-11-15") == 0.99   # tier row
        assert target("02", "province", "2026-11-15") == 0.8   # the national default
        assert target(None, None, "2026-11-15") == 0.8
    r = CliRunner().invoke(app, ["kpis", "targets", "list", "--province", "01",
                                 "--database", name])
    assert "online_share\t01\tprovince\t0.6\t2026-11-01\t2027-01-01" in r.output
    bad = tmp_path / "bad.csv"
    bad.write_text("kpi,province_code,tier,target,valid_from\nonline_share,01,*,80,2026-01-01\n",
                   encoding="utf-8")
    r = CliRunner().invoke(app, ["kpis", "targets", "load", str(bad), "--database", name])
    assert r.exit_code == 2 and "line 2" in r.output
