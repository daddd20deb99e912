"""Load administrative units from a user's boundary file.

GeoJSON, GeoPackage or Shapefile, read with geopandas + pyogrio. The result is a
GeoDataFrame in EPSG:4326 with the standard columns::

    code, name, name_en, level ('province' | 'commune'), type, parent_code,
    province_code, area_km2, approximate (False), geometry (MultiPolygon)

Unusable files raise :class:`geo.errors.BoundaryFileError` whose ``reason`` is:

``unreadable``            the file cannot be opened or parsed
``missing_columns``       a mapped column is absent (the message lists what exists)
``no_crs``                the file declares no CRS and none was given (``assume_crs``)
``non_polygon``           some geometries are points or lines
``empty_geometry``        some geometries are missing/empty (also after repair)
``duplicate_codes``       a code occurs twice
``bad_level``             a level value is not province/commune
``unknown_parent``        a commune names a province that is not in the file
``child_outside_parent``  more than ``outside_tolerance`` of a commune's area lies
                          outside its province
``empty``                 the file has no features

Invalid geometries (self-intersections such as a bow-tie) are repaired with
``make_valid``; only their polygonal parts are kept. When the file holds communes only,
provinces are derived as the union of their communes.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd  # type: ignore[import-untyped]
import shapely

from geo.errors import BoundaryFileError

if TYPE_CHECKING:
    import geopandas as gpd

FIELDS = ("code", "name", "level", "parent_code", "name_en", "type")
REQUIRED = ("code", "name")
LEVELS = {"province": "province", "commune": "commune", "tinh": "province",
          "xa": "commune", "1": "province", "2": "commune"}
CODE_WIDTH = {"province": 2, "commune": 5}
OUTSIDE_TOLERANCE = 0.01


@dataclass(frozen=True, slots=True)
class ColumnMapping:
    """Which source column holds each standard field (``None``: not in the file).

    Without ``level``, a row with a parent code is a commune and one without is a
    province.
    """

    code: str = "code"
    name: str = "name"
    level: str | None = "level"
    parent_code: str | None = "parent_code"
    name_en: str | None = None
    type: str | None = None

    @classmethod
    def parse(cls, spec: str | None) -> ColumnMapping:
        """From ``"code=ma_xa,name=ten_xa,parent_code=ma_tinh,level="`` (empty: absent)."""
        if not spec:
            return cls()
        values: dict[str, str | None] = {}
        for item in spec.split(","):
            key, sep, value = item.partition("=")
            key = key.strip()
            if not sep or key not in FIELDS:
                raise BoundaryFileError(
                    "missing_columns",
                    f"bad mapping item {item!r}: use field=column with field in {FIELDS}")
            values[key] = value.strip() or None
        for req in REQUIRED:
            if req in values and values[req] is None:
                raise BoundaryFileError("missing_columns", f"{req} must map to a column")
        return cls(**values)  # type: ignore[arg-type]


def read_units(
    path: Path,
    mapping: ColumnMapping | None = None,
    *,
    layer: str | None = None,
    assume_crs: str | None = None,
    outside_tolerance: float = OUTSIDE_TOLERANCE,
) -> gpd.GeoDataFrame:
    """Read, check and normalise a boundary file (see the module docstring)."""
    import geopandas as gpd

    mapping = mapping or ColumnMapping()
    try:
        raw = gpd.read_file(path, layer=layer, engine="pyogrio")
    except Exception as exc:  # pyogrio raises several unrelated types
        raise BoundaryFileError("unreadable", f"cannot read {path}: {exc}") from exc
    return normalise(raw, mapping, source=str(path), assume_crs=assume_crs,
                     outside_tolerance=outside_tolerance)


def normalise(
    raw: gpd.GeoDataFrame,
    mapping: ColumnMapping,
    *,
    source: str = "<frame>",
    assume_crs: str | None = None,
    outside_tolerance: float = OUTSIDE_TOLERANCE,
) -> gpd.GeoDataFrame:
    """Check and normalise an already-read GeoDataFrame."""
    import geopandas as gpd

    if len(raw) == 0:
        raise BoundaryFileError("empty", f"{source} has no features")
    wanted = {f: getattr(mapping, f) for f in FIELDS if getattr(mapping, f)}
    missing = sorted(f"{f} (column {c!r})" for f, c in wanted.items() if c not in raw.columns)
    # level/parent_code default to columns that may simply not exist: then they are absent.
    optional_defaults = {"level": "level", "parent_code": "parent_code"}
    missing = [m for m in missing
               if not any(m.startswith(f"{f} ") and wanted[f] == d
                          for f, d in optional_defaults.items())]
    if missing:
        have = [c for c in raw.columns if c != raw.geometry.name]
        raise BoundaryFileError(
            "missing_columns",
            f"{source}: missing {', '.join(missing)}; columns present: {have}; "
            "set the mapping (--mapping code=...,name=...)")
    if raw.crs is None:
        if assume_crs is None:
            raise BoundaryFileError(
                "no_crs", f"{source} declares no coordinate reference system; "
                "fix the file or pass the CRS explicitly (--crs EPSG:4326)")
        raw = raw.set_crs(assume_crs)

    def column(f: str) -> pd.Series[Any] | None:
        c = wanted.get(f)
        return raw[c] if c and c in raw.columns else None

    parent = column("parent_code")
    level_col = column("level")
    if level_col is not None:
        keys = level_col.astype(str).str.strip().str.lower()
        level = keys.map(LEVELS)
        bad = sorted(set(keys[level.isna()]))
        if bad:
            raise BoundaryFileError(
                "bad_level", f"{source}: level values {bad[:5]} are not province/commune")
    elif parent is not None:
        level = pd.Series(np.where(_blank(parent), "province", "commune"), index=raw.index)
    else:
        level = pd.Series("commune", index=raw.index)
    code = _codes(raw[wanted["code"]], level)
    parent_code = (_codes(parent, pd.Series("province", index=raw.index))
                   if parent is not None else pd.Series(None, index=raw.index, dtype=object))
    units = gpd.GeoDataFrame({
        "code": code,
        "name": raw[wanted["name"]].astype(str),
        "name_en": column("name_en"),
        "level": level,
        "type": column("type"),
        "parent_code": parent_code.where(level == "commune", None),
        "geometry": raw.geometry.values,
    }, geometry="geometry", crs=raw.crs)
    units = units.to_crs(4326) if not units.crs.equals("EPSG:4326") else units
    _check_geometries(units, source)
    units["geometry"] = _repair(units.geometry.values, source, units["code"])
    dup = units["code"][units["code"].duplicated()].unique().tolist()
    if dup:
        raise BoundaryFileError("duplicate_codes", f"{source}: duplicate codes {dup[:10]}")
    units = _with_provinces(units, source)
    _check_parents(units, source, outside_tolerance)
    units["province_code"] = np.where(units["level"] == "province", units["code"],
                                      units["parent_code"])
    geod_area = units.to_crs("+proj=cea +datum=WGS84").area / 1e6
    units["area_km2"] = geod_area.round(3).to_numpy()
    units["approximate"] = False
    return units


def _blank(s: pd.Series[Any]) -> pd.Series[bool]:
    return s.isna() | (s.astype(str).str.strip() == "")


def _codes(s: pd.Series[Any], level: pd.Series[Any]) -> pd.Series[Any]:
    """Codes as strings; numeric columns get their leading zeros back (01, 00004)."""
    if pd.api.types.is_numeric_dtype(s):
        width = level.map(CODE_WIDTH).fillna(0).astype(int)
        out = [None if pd.isna(v) else str(int(v)).zfill(w) for v, w in zip(s, width, strict=True)]
        return pd.Series(out, index=s.index, dtype=object)
    return s.where(~_blank(s), None).map(lambda v: None if v is None else str(v).strip())


def _check_geometries(units: gpd.GeoDataFrame, source: str) -> None:
    geoms = units.geometry.values
    empty = units.geometry.isna().to_numpy() | shapely.is_empty(np.asarray(geoms))
    if empty.any():
        raise BoundaryFileError(
            "empty_geometry",
            f"{source}: {int(empty.sum())} units have no geometry, e.g. "
            f"{units.loc[empty, 'code'].head(5).tolist()}")
    kinds = units.geometry.geom_type
    bad = ~kinds.isin(["Polygon", "MultiPolygon"])
    if bad.any():
        raise BoundaryFileError(
            "non_polygon",
            f"{source}: {int(bad.sum())} geometries are not polygons "
            f"({sorted(set(kinds[bad]))}), e.g. {units.loc[bad, 'code'].head(5).tolist()}")


def _repair(geoms: Any, source: str, codes: pd.Series[Any]) -> Any:
    arr = np.asarray(geoms, dtype=object)
    invalid = ~shapely.is_valid(arr)
    if invalid.any():
        arr = arr.copy()
        arr[invalid] = shapely.make_valid(arr[invalid])
    out = np.array([_polygonal(g) for g in arr], dtype=object)
    empty = shapely.is_empty(out)
    if empty.any():
        raise BoundaryFileError(
            "empty_geometry",
            f"{source}: no area left after repairing {codes[empty].head(5).tolist()}")
    return out


def _polygonal(geom: Any) -> shapely.MultiPolygon:
    parts = [p for p in shapely.get_parts(geom)
             if isinstance(p, shapely.Polygon | shapely.MultiPolygon) and p.area > 0]
    polys: list[shapely.Polygon] = []
    for p in parts:
        polys.extend(shapely.get_parts(p).tolist())
    return shapely.MultiPolygon(polys)


def _with_provinces(units: gpd.GeoDataFrame, source: str) -> gpd.GeoDataFrame:
    """Derive provinces from their communes when the file holds none at all."""
    import geopandas as gpd

    communes = units[units["level"] == "commune"]
    if communes["parent_code"].isna().any():
        bad = communes.loc[communes["parent_code"].isna(), "code"].head(5).tolist()
        raise BoundaryFileError("unknown_parent", f"{source}: communes without parent {bad}")
    if (units["level"] == "province").any() or communes.empty:
        return units
    groups = communes.groupby("parent_code")
    derived = gpd.GeoDataFrame({
        "code": list(groups.groups),
        "name": list(groups.groups),
        "name_en": None, "level": "province", "type": None, "parent_code": None,
        "geometry": [_polygonal(shapely.union_all(np.asarray(g.geometry.values)))
                     for _, g in groups],
    }, geometry="geometry", crs=units.crs)
    return gpd.GeoDataFrame(pd.concat([derived, units], ignore_index=True),
                            geometry="geometry", crs=units.crs)


def _check_parents(units: gpd.GeoDataFrame, source: str, tolerance: float) -> None:
    provinces = units[units["level"] == "province"].set_index("code")
    communes = units[units["level"] == "commune"]
    unknown = communes.loc[~communes["parent_code"].isin(provinces.index)]
    if len(unknown):
        raise BoundaryFileError(
            "unknown_parent",
            f"{source}: communes {unknown['code'].head(5).tolist()} name provinces "
            f"{sorted(set(unknown['parent_code']))[:5]} that are not in the file")
    child = np.asarray(communes.geometry.values, dtype=object)
    parent = np.asarray(provinces.geometry.loc[communes["parent_code"]].values, dtype=object)
    outside = shapely.area(shapely.difference(child, parent))
    share = outside / np.maximum(shapely.area(child), 1e-30)
    bad = share > tolerance
    if bad.any():
        sample = [f"{c} ({s:.0%} outside {p})" for c, s, p in zip(
            communes["code"][bad], share[bad], communes["parent_code"][bad], strict=True)][:5]
        raise BoundaryFileError("child_outside_parent",
                                f"{source}: communes outside their province: {sample}")
