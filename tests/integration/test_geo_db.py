"""`ioc geo load` into a fresh database: the reference, a reload, a boundary change."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import geopandas as gpd
import numpy as np
import psycopg
import pytest
import shapely
from typer.testing import CliRunner

from geo.index import index_from_database, index_from_reference
from geo.reference import read_reference
from ioc.cli.geo import app

pytestmark = pytest.mark.integration


@pytest.fixture
def geo_db(migrated_db: tuple[str, str]) -> tuple[str, str]:
    return migrated_db


def _load(*args: str) -> str:
    result = CliRunner().invoke(app, ["load", *args])
    assert result.exit_code == 0, result.output
    return result.output


def test_load_reference_then_change_one_commune(geo_db: tuple[str, str], tmp_path: Path) -> None:
    name, conninfo = geo_db
    out = _load("--database", name, "--valid-from", "2025-07-01")
    assert "3355 new" in out
    out = _load("--database", name, "--valid-from", "2025-07-01")
    assert "3355 unchanged" in out

    with psycopg.connect(conninfo) as conn:
        levels: dict[str, int] = dict(conn.execute(
            "SELECT level, count(*) FROM current_admin_units GROUP BY level").fetchall())
        assert levels == {"province": 34, "commune": 3321}
        assert conn.execute("SELECT communes FROM current_provinces "
                            "WHERE province_code = '01'").fetchone() == (126,)
        row = conn.execute(
            "SELECT commune_name, province_name, approximate, ST_Contains(geom, "
            "ST_SetSRID(ST_MakePoint(longitude, latitude), 4326)) "
            "FROM current_communes WHERE commune_code = '00004'").fetchone()
        assert row == ("Phường Ba Đình", "Thành phố Hà Nội", True, True)

    # Official Hanoi boundaries from 2026-01-01 (approximate=false, so every Hanoi unit
    # is a new version): 00004 loses half its polygon and 00008 disappears. Other
    # provinces are not in the file and stay open.
    ref = read_reference().units
    hanoi = ref[(ref["code"] == "01") | (ref["parent_code"] == "01")]
    hanoi = hanoi[hanoi["code"] != "00008"].copy()
    geom = hanoi.loc[hanoi["code"] == "00004", "geometry"].iloc[0]
    (x0, y0, x1, y1) = geom.bounds
    hanoi.loc[hanoi["code"] == "00004", "geometry"] = shapely.MultiPolygon(
        [shapely.intersection(geom, shapely.box(x0, y0, (x0 + x1) / 2, y1))])
    frame = gpd.GeoDataFrame(hanoi[["code", "name", "level", "parent_code", "geometry"]],
                             geometry="geometry", crs=4326)
    path = tmp_path / "hanoi.geojson"
    frame.to_file(path, driver="GeoJSON", engine="pyogrio")
    out = _load(str(path), "--database", name, "--valid-from", "2026-01-01")
    assert "126 changed" in out and "1 closed" in out  # 01 + 125 communes; 00008

    with psycopg.connect(conninfo) as conn:
        history = conn.execute(
            "SELECT code, valid_from, valid_to, approximate FROM admin_units "
            "WHERE code IN ('00004', '00008') ORDER BY code, valid_from").fetchall()
        assert history == [
            ("00004", date(2025, 7, 1), date(2026, 1, 1), True),
            ("00004", date(2026, 1, 1), None, False),
            ("00008", date(2025, 7, 1), date(2026, 1, 1), True),
        ]
        # As of a day in 2025 nothing changed; as of 2026-01-02 Hanoi has 125 communes.
        as_of = ("SELECT count(*) FILTER (WHERE parent_code = '01'), count(*) FROM admin_units "
                 "WHERE level = 'commune' AND valid_from <= %s "
                 "AND (valid_to IS NULL OR valid_to > %s)")
        day = date(2025, 12, 31)
        assert conn.execute(as_of, (day, day)).fetchone() == (126, 3321)
        day = date(2026, 1, 2)
        assert conn.execute(as_of, (day, day)).fetchone() == (125, 3320)
    # A load dated before an open version cannot rewrite what is in force.
    result = CliRunner().invoke(app, ["load", "--database", name, "--valid-from", "2025-08-01"])
    assert result.exit_code == 1
    assert "newer versions" in result.output


def test_index_from_database_matches_reference(geo_db: tuple[str, str]) -> None:
    name, conninfo = geo_db
    _load("--database", name, "--valid-from", "2025-07-01")
    db_index = index_from_database(conninfo)
    ref_index = index_from_reference()
    communes = read_reference().communes
    lat = communes["lat"].to_numpy()
    lon = communes["lon"].to_numpy()
    rng = np.random.default_rng(7)
    lat = np.concatenate([lat, lat + rng.normal(0, 0.01, len(lat))])
    lon = np.concatenate([lon, lon + rng.normal(0, 0.01, len(lon))])
    db_codes, _ = db_index.lookup(lat, lon)
    ref_codes, _ = ref_index.lookup(lat, lon)
    assert (db_codes == ref_codes).all()
    assert (db_codes[: len(communes)] == communes["code"].to_numpy()).all()


def test_load_refuses_bad_file(geo_db: tuple[str, str], tmp_path: Path) -> None:
    name, _ = geo_db
    path = tmp_path / "points.geojson"
    gpd.GeoDataFrame({"code": ["00004"], "name": ["x"], "parent_code": ["01"]},
                     geometry=[shapely.Point(105.8, 21.0)], crs=4326).to_file(
        path, driver="GeoJSON", engine="pyogrio")
    result = CliRunner().invoke(app, ["load", str(path), "--database", name])
    assert result.exit_code == 2
    assert "non_polygon" in result.output
