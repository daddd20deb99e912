"""The join on polygons whose containment is known."""

from __future__ import annotations

import math

import numpy as np
import pytest
import shapely

from geo.errors import CommuneCodeError
from geo.index import CommuneIndex, index_from_reference
from geo.legacy import LegacyCodes
from ioccore.events.record import UNASSIGNED

# x = lon, y = lat. 00002 and 00001 share the edge x = 1; 00003 has a hole;
# 00009 sits at 60° N where a degree of longitude is half as long.
A = shapely.box(0, 0, 1, 1)
B = shapely.box(1, 0, 2, 1)
HOLED = shapely.Polygon([(3, 0), (5, 0), (5, 2), (3, 2)],
                        [[(3.5, 0.5), (4.5, 0.5), (4.5, 1.5), (3.5, 1.5)]])
NORTH = shapely.box(10, 60, 11, 61)
CODES = ["00002", "00001", "00003", "00009"]
PROVINCES = ["P1", "P2", "P2", "P3"]


@pytest.fixture(params=[0.05, None], ids=["grid", "tree"])
def index(request: pytest.FixtureRequest) -> CommuneIndex:
    return CommuneIndex(CODES, PROVINCES, [A, B, HOLED, NORTH], nearest_max_m=2000,
                        grid_deg=request.param)


def one(index: CommuneIndex, lat: float, lon: float) -> tuple[str, str]:
    codes, outcomes = index.lookup(np.array([lat]), np.array([lon]))
    return str(codes[0]), str(outcomes[0])


def test_inside(index: CommuneIndex) -> None:
    assert one(index, 0.5, 0.5) == ("00002", "contains")
    assert one(index, 0.5, 1.5) == ("00001", "contains")
    assert one(index, 1.0, 3.2) == ("00003", "contains")  # between outer ring and hole


def test_edges_resolve_to_lowest_code(index: CommuneIndex) -> None:
    assert one(index, 0.5, 1.0) == ("00001", "contains")  # shared edge
    assert one(index, 1.0, 1.0) == ("00001", "contains")  # shared vertex
    assert one(index, 0.5, 0.0) == ("00002", "contains")  # outer edge of 00002 only
    assert one(index, 1.0, 3.5) == ("00003", "contains")  # on the hole's ring


def test_points_in_hole(index: CommuneIndex) -> None:
    # (lat 1, lon 4) is the hole's centre: 55 km from the ring -> unassigned.
    assert one(index, 1.0, 4.0) == (UNASSIGNED, "unassigned")
    # 0.01° (1.1 km) inside the hole from its western ring -> nearest.
    assert one(index, 1.0, 3.51) == ("00003", "nearest")


def test_just_outside_uses_metric_distance(index: CommuneIndex) -> None:
    assert one(index, 0.5, -0.01) == ("00002", "nearest")  # 1.1 km
    assert one(index, 0.5, -0.03) == (UNASSIGNED, "unassigned")  # 3.3 km
    assert one(index, -0.015, 1.5) == ("00001", "nearest")  # 1.7 km south
    # At 60° N a degree of longitude is ~55.7 km: 0.03° is 1.67 km, 0.04° is 2.2 km.
    assert one(index, 60.5, 9.97) == ("00009", "nearest")
    assert one(index, 60.5, 9.96) == (UNASSIGNED, "unassigned")


def test_nearest_tie_goes_to_lowest_code(index: CommuneIndex) -> None:
    # Just beyond the shared corner (1, 1): equally near both squares.
    assert one(index, 1.005, 1.0) == ("00001", "nearest")


def test_bad_coordinates_are_unassigned_never_dropped(index: CommuneIndex) -> None:
    lat = np.array([np.nan, 95.0, 0.5, 0.5])
    lon = np.array([0.5, 0.5, np.inf, 0.5])
    codes, provinces, outcomes = index.assign(lat, lon)
    assert codes.tolist() == [UNASSIGNED] * 3 + ["00002"]
    assert provinces.tolist() == [UNASSIGNED] * 3 + ["P1"]
    assert outcomes.tolist() == ["unassigned"] * 3 + ["contains"]


def test_empty_batch(index: CommuneIndex) -> None:
    codes, outcomes = index.lookup(np.array([]), np.array([]), [])
    assert len(codes) == len(outcomes) == 0


def test_source_cache(index: CommuneIndex) -> None:
    lat = np.array([0.5, 0.5])
    lon = np.array([0.5, 1.5])
    ids = ["s1", "s2"]
    assert index.lookup(lat, lon, ids)[1].tolist() == ["contains", "contains"]
    codes, outcomes = index.lookup(lat, lon, ids)
    assert codes.tolist() == ["00002", "00001"]
    assert outcomes.tolist() == ["cache", "cache"]
    # s2 moved into 00002: looked up again, not served stale.
    codes, outcomes = index.lookup(lat, np.array([0.5, 0.6]), ids)
    assert codes.tolist() == ["00002", "00002"]
    assert outcomes.tolist() == ["cache", "contains"]
    index.invalidate()
    assert index.lookup(lat, lon, ids)[1].tolist() == ["contains", "contains"]
    counts = index.take_counts()
    assert counts["cache"] == 3 and counts["contains"] == 5
    assert index.take_counts()["contains"] == 0


def test_province_of(index: CommuneIndex) -> None:
    got = index.province_of(["00001", "00009", UNASSIGNED, "nope"])
    assert got.tolist() == ["P2", "P3", UNASSIGNED, UNASSIGNED]


def test_grid_and_tree_agree() -> None:
    rng = np.random.default_rng(3)
    lat = rng.uniform(-0.2, 2.2, 20_000)
    lon = rng.uniform(-0.2, 5.2, 20_000)
    lat[:100] = 1.0  # exactly on edges and vertices
    lon[:100] = np.round(rng.uniform(0, 5, 100))
    geoms = [A, B, HOLED, NORTH]
    with_grid = CommuneIndex(CODES, PROVINCES, geoms, grid_deg=0.01)
    tree_only = CommuneIndex(CODES, PROVINCES, geoms, grid_deg=None)
    a, b = with_grid.lookup(lat, lon), tree_only.lookup(lat, lon)
    assert (a[0] == b[0]).all()
    assert (a[1] == b[1]).all()


def test_bow_tie_is_repaired() -> None:
    bow_tie = shapely.Polygon([(0, 0), (1, 1), (1, 0), (0, 1), (0, 0)])
    assert not bow_tie.is_valid
    idx = CommuneIndex(["00005"], ["P1"], [bow_tie], nearest_max_m=0)
    assert one(idx, 0.5, 0.1) == ("00005", "contains")  # left triangle
    assert one(idx, 0.5, 0.9) == ("00005", "contains")  # right triangle
    assert one(idx, 0.9, 0.5) == (UNASSIGNED, "unassigned")  # top notch


def test_check_code_current_legacy_and_errors() -> None:
    legacy = LegacyCodes({"10001": ("00001",), "10002": ("00001", "00002"),
                          "10003": ("99999",)})
    idx = CommuneIndex(CODES, PROVINCES, [A, B, HOLED, NORTH], legacy=legacy)
    assert idx.check_code("00002") == ("00002", "code")
    assert idx.check_code("10001") == ("00001", "legacy_code")
    with pytest.raises(CommuneCodeError) as err:
        idx.check_code("10002")
    assert err.value.reason == "ambiguous_legacy_code"
    for code in ("10003", "55555", ""):
        with pytest.raises(CommuneCodeError) as err:
            idx.check_code(code)
        assert err.value.reason == "unknown_commune_code"


def test_lengths_must_match(index: CommuneIndex) -> None:
    with pytest.raises(ValueError):
        index.lookup(np.array([1.0]), np.array([1.0, 2.0]))
    with pytest.raises(ValueError):
        index.lookup(np.array([1.0]), np.array([1.0]), ["a", "b"])


def test_reference_index_centroids_and_legacy() -> None:
    index = index_from_reference()
    assert len(index) == 3321
    # Checked by hand in vietnamadminunits' converter_2025.json (Hà Nội, Ba Đình):
    # Phúc Xá (00001) went whole into Hồng Hà (00097); Vĩnh Phúc (00006) into Ngọc Hà
    # (00008); Cống Vị (00007) was split between Ngọc Hà and Giảng Võ (00025).
    assert index.check_code("00001") == ("00097", "legacy_code")
    assert index.check_code("00006") == ("00008", "legacy_code")
    with pytest.raises(CommuneCodeError) as err:
        index.check_code("00007")
    assert err.value.reason == "ambiguous_legacy_code"
    # Old Trúc Bạch (00004) merged into the new Ba Đình, which kept code 00004.
    assert index.check_code("00004") == ("00004", "code")
    # Hoàn Kiếm ward (new) by its centroid; a point in the sea far offshore.
    codes, provinces, outcomes = index.assign([21.0286, 15.0], [105.8521, 111.0])
    assert (codes[0], provinces[0]) == ("00070", "01")  # Phường Hoàn Kiếm, Hà Nội
    assert outcomes.tolist() == ["contains", "unassigned"]
    assert math.isclose(index.nearest_max_m, 2000.0)
