"""Loading boundary files: good files in three formats, and each documented refusal."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import geopandas as gpd
import pytest
import shapely

from geo.errors import BoundaryFileError
from geo.index import CommuneIndex
from geo.loader import ColumnMapping, read_units

PROVINCE = shapely.box(105.0, 21.0, 106.0, 22.0)
WEST = shapely.box(105.0, 21.0, 105.5, 22.0)
EAST = shapely.box(105.5, 21.0, 106.0, 22.0)
BOW_TIE = shapely.Polygon([(105.5, 21.0), (106.0, 22.0), (106.0, 21.0), (105.5, 22.0)])


def frame(rows: list[dict[str, Any]], crs: Any = 4326) -> gpd.GeoDataFrame:
    return gpd.GeoDataFrame(rows, geometry="geometry", crs=crs)


def good_rows() -> list[dict[str, Any]]:
    return [
        {"ma": "01", "ten": "Tỉnh A", "cap": "province", "cha": None, "geometry": PROVINCE},
        {"ma": "00001", "ten": "Xã Tây", "cap": "commune", "cha": "01", "geometry": WEST},
        {"ma": "00002", "ten": "Xã Đông", "cap": "commune", "cha": "01", "geometry": EAST},
    ]


MAPPING = ColumnMapping.parse("code=ma,name=ten,level=cap,parent_code=cha")


def write(gdf: gpd.GeoDataFrame, path: Path, driver: str) -> Path:
    gdf.to_file(path, driver=driver, engine="pyogrio")
    return path


@pytest.mark.parametrize(("name", "driver"), [("units.geojson", "GeoJSON"),
                                              ("units.gpkg", "GPKG"),
                                              ("units.shp", "ESRI Shapefile")])
def test_reads_each_format(tmp_path: Path, name: str, driver: str) -> None:
    path = write(frame(good_rows()), tmp_path / name, driver)
    units = read_units(path, MAPPING)
    assert units["code"].tolist() == ["01", "00001", "00002"]
    assert units["level"].tolist() == ["province", "commune", "commune"]
    assert units["province_code"].tolist() == ["01", "01", "01"]
    assert set(units.geometry.geom_type) == {"MultiPolygon"}
    assert not units["approximate"].any()
    assert 5000 < units["area_km2"].iloc[1] < 6000  # 0.5° x 1° near 21° N


def test_reprojects_to_wgs84(tmp_path: Path) -> None:
    metric = frame(good_rows()).to_crs(32648)  # UTM 48N
    units = read_units(write(metric, tmp_path / "utm.gpkg", "GPKG"), MAPPING)
    assert units.crs.to_epsg() == 4326
    assert units.geometry.iloc[1].buffer(1e-6).contains(WEST)


def test_derives_provinces_and_pads_numeric_codes(tmp_path: Path) -> None:
    rows = [{"ma": 1, "ten": "Xã Tây", "cha": 1, "geometry": WEST},
            {"ma": 2, "ten": "Xã Đông", "cha": 1, "geometry": EAST}]
    path = write(frame(rows), tmp_path / "communes.gpkg", "GPKG")
    units = read_units(path, ColumnMapping.parse("code=ma,name=ten,parent_code=cha,level="))
    assert units["code"].tolist() == ["01", "00001", "00002"]
    assert units.geometry.iloc[0].equals(shapely.MultiPolygon([PROVINCE]))


def test_bow_tie_is_repaired(tmp_path: Path) -> None:
    rows = good_rows()
    rows[2]["geometry"] = BOW_TIE
    units = read_units(write(frame(rows), tmp_path / "bow.gpkg", "GPKG"), MAPPING)
    repaired = units.geometry.iloc[2]
    assert repaired.is_valid and len(repaired.geoms) == 2
    index = CommuneIndex.from_units(units)
    codes, _ = index.lookup([21.5, 21.5], [105.6, 105.95])
    assert codes.tolist() == ["00002", "00002"]


def refusal(path: Path, mapping: ColumnMapping = MAPPING, **kw: Any) -> BoundaryFileError:
    with pytest.raises(BoundaryFileError) as err:
        read_units(path, mapping, **kw)
    return err.value


def test_missing_columns(tmp_path: Path) -> None:
    path = write(frame(good_rows()), tmp_path / "u.gpkg", "GPKG")
    err = refusal(path, ColumnMapping.parse("code=ma_xa,name=ten"))
    assert err.reason == "missing_columns"
    assert "ma_xa" in err.message and "'ma'" in err.message  # names what is there


@pytest.mark.filterwarnings("ignore:'crs' was not provided")
def test_no_crs(tmp_path: Path) -> None:
    path = write(frame(good_rows(), crs=None), tmp_path / "nocrs.shp", "ESRI Shapefile")
    assert refusal(path).reason == "no_crs"
    assert len(read_units(path, MAPPING, assume_crs="EPSG:4326")) == 3


def test_points_instead_of_polygons(tmp_path: Path) -> None:
    rows = good_rows()
    rows[1]["geometry"] = shapely.Point(105.2, 21.5)
    rows[2]["geometry"] = shapely.Point(105.7, 21.5)
    rows[0]["geometry"] = shapely.Point(105.5, 21.5)
    err = refusal(write(frame(rows), tmp_path / "pts.geojson", "GeoJSON"))
    assert err.reason == "non_polygon"
    assert "Point" in err.message


def test_duplicate_codes(tmp_path: Path) -> None:
    rows = good_rows()
    rows[2]["ma"] = "00001"
    err = refusal(write(frame(rows), tmp_path / "dup.gpkg", "GPKG"))
    assert err.reason == "duplicate_codes" and "00001" in err.message


def test_child_outside_parent(tmp_path: Path) -> None:
    rows = good_rows()
    rows[2]["geometry"] = shapely.box(105.9, 21.0, 106.5, 22.0)
    err = refusal(write(frame(rows), tmp_path / "out.gpkg", "GPKG"))
    assert err.reason == "child_outside_parent" and "00002" in err.message


def test_unknown_parent_and_bad_level(tmp_path: Path) -> None:
    rows = good_rows()
    rows[2]["cha"] = "99"
    assert refusal(write(frame(rows), tmp_path / "p.gpkg", "GPKG")).reason == "unknown_parent"
    rows = good_rows()
    rows[2]["cap"] = "district"
    assert refusal(write(frame(rows), tmp_path / "l.gpkg", "GPKG")).reason == "bad_level"


def test_unreadable(tmp_path: Path) -> None:
    path = tmp_path / "broken.geojson"
    path.write_text("{not json")
    assert refusal(path).reason == "unreadable"


def test_bad_mapping() -> None:
    with pytest.raises(BoundaryFileError):
        ColumnMapping.parse("kode=ma")
    with pytest.raises(BoundaryFileError):
        ColumnMapping.parse("code=")
