"""The bundled reference: counts, containment, tiling, size."""

from __future__ import annotations

import time

import numpy as np
import pytest
import shapely

from geo.index import index_from_reference
from geo.reference import DATA_DIR, LEGACY_FILE, Reference, read_legacy, read_reference


@pytest.fixture(scope="module")
def ref() -> Reference:
    return read_reference()


def test_counts(ref: Reference) -> None:
    assert len(ref.provinces) == 34
    assert len(ref.communes) == 3321
    assert (ref.communes["province_code"] == "01").sum() == 126
    assert ref.units["code"].is_unique
    assert set(ref.communes["province_code"]) == set(ref.provinces["code"])
    assert ref.units["approximate"].all()
    assert set(ref.communes["type"]) == {"Xã", "Phường", "Đặc khu"}


def test_every_centroid_lies_in_its_own_commune(ref: Reference) -> None:
    communes = ref.communes
    pts = shapely.points(communes["lon"].to_numpy(), communes["lat"].to_numpy())
    assert shapely.contains(communes["geometry"].to_numpy(), pts).all()
    codes, outcomes = index_from_reference().lookup(communes["lat"], communes["lon"])
    assert (codes == communes["code"].to_numpy()).all()
    assert set(outcomes) == {"contains"}


def test_polygons_tile_without_overlaps(ref: Reference) -> None:
    geoms = ref.communes["geometry"].to_numpy()
    assert shapely.is_valid(geoms).all()
    assert shapely.coverage_is_valid(shapely.GeometryCollection(list(geoms)))
    for code, group in ref.communes.groupby("province_code"):
        province = ref.provinces.loc[ref.provinces["code"] == code, "geometry"].iloc[0]
        union = shapely.union_all(group["geometry"].to_numpy())
        assert shapely.symmetric_difference(union, province).area < 1e-6 * province.area


def test_reads_fast_and_stays_small() -> None:
    start = time.perf_counter()
    index_from_reference()
    assert time.perf_counter() - start < 2.0
    size = sum(p.stat().st_size for p in DATA_DIR.iterdir())
    assert size < 10 * 1024 * 1024


def test_legacy_table() -> None:
    legacy = read_legacy(LEGACY_FILE)
    assert len(legacy) == 10035  # pre-2025 communes with a code
    assert legacy["old_code"].is_unique
    split = legacy["new_codes"].str.contains(" ")
    assert 0 < split.sum() < len(legacy)
    assert (legacy["new_codes"] != "").all()
    row = legacy.set_index("old_code").loc["00007"]
    assert (row["new_codes"], row["default_code"]) == ("00008 00025", "00008")
    assert np.isin(legacy["default_code"], read_reference().communes["code"]).all()
