"""Write administrative units to ``admin_units`` (PostGIS) without rewriting history.

One transaction per load:

* units whose open version is identical (name, type, parent, geometry, flags) are
  left alone (``unchanged``);
* a changed unit's open version is closed (``valid_to = valid_from`` of the load) and
  a new version inserted (``changed``); when the open version starts the same day it
  is replaced instead (a same-day correction);
* a unit not in the file is closed (``closed``) when its province is in the file
  (loading one province's file leaves the other provinces alone);
* new codes are inserted (``inserted``).

A load dated before an open version's ``valid_from`` is refused.
"""

from __future__ import annotations

from datetime import date
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd  # type: ignore[import-untyped]
import shapely

from ioccore.db.versioned import LoadReport, Versioned, apply_versions
from ioccore.errors import GeoError

if TYPE_CHECKING:
    import psycopg

_STAGE = """
CREATE TEMP TABLE geo_staged ON COMMIT DROP AS
SELECT code, name, name_en, level, type, parent_code, geom, centroid, area_km2,
       approximate, source, valid_from
FROM admin_units WITH NO DATA
"""
_COPY = ("COPY geo_staged (code, name, name_en, level, type, parent_code, geom, centroid, "
         "area_km2, approximate, source, valid_from) FROM STDIN")
_TABLE = Versioned(
    table="admin_units", staged="geo_staged",
    compared=("name", "name_en", "level", "type", "parent_code", "geom", "approximate"),
    covers="coalesce({row}.parent_code, {row}.code)",
    insert="code, name, name_en, level, type, parent_code, geom, centroid, area_km2, "
           "approximate, source, valid_from",
    select="s.code, s.name, s.name_en, s.level, s.type, s.parent_code, s.geom, s.centroid, "
           "s.area_km2, s.approximate, s.source, s.valid_from")


def _ewkb(geoms: Any) -> list[str]:
    arr = shapely.set_srid(np.asarray(geoms, dtype=object), 4326)
    return [str(h) for h in shapely.to_wkb(arr, hex=True, include_srid=True)]


def _rows(units: pd.DataFrame, source: str, valid_from: date) -> list[tuple[Any, ...]]:
    geoms = np.asarray(units["geometry"].to_numpy(), dtype=object)
    if "lat" in units.columns and "lon" in units.columns:
        lat = units["lat"].to_numpy(dtype=np.float64)
        lon = units["lon"].to_numpy(dtype=np.float64)
        pts = shapely.points(lon, lat)
        pts[~(np.isfinite(lat) & np.isfinite(lon))] = None
    else:
        pts = np.full(len(units), None, dtype=object)
    centroid = np.full(len(units), None, dtype=object)
    have = np.array([p is not None for p in pts])
    if have.any():
        centroid[have] = _ewkb(pts[have])
    nothing = pd.Series(np.nan, index=units.index)
    area = units["area_km2"] if "area_km2" in units.columns else nothing
    approx = units["approximate"] if "approximate" in units.columns else nothing.notna()

    def opt(col: str) -> list[Any]:
        if col not in units.columns:
            return [None] * len(units)
        return [None if v is None or (isinstance(v, float) and np.isnan(v)) or v == "" else v
                for v in units[col].tolist()]

    return list(zip(
        units["code"].astype(str).tolist(), units["name"].astype(str).tolist(), opt("name_en"),
        units["level"].tolist(), opt("type"), opt("parent_code"), _ewkb(geoms),
        centroid.tolist(), [None if np.isnan(a) else float(a) for a in area.astype(float)],
        [bool(a) for a in approx], [source] * len(units), [valid_from] * len(units),
        strict=True,
    ))


def write_units(conn: psycopg.Connection[Any], units: pd.DataFrame, *, source: str,
                valid_from: date) -> LoadReport:
    """Load ``units`` (columns as from :mod:`geo.loader` or the reference) in one
    transaction on ``conn``; commits on success."""
    rows = _rows(units, source, valid_from)
    with conn.transaction():
        conn.execute("LOCK TABLE admin_units IN SHARE ROW EXCLUSIVE MODE")
        conn.execute(_STAGE)
        with conn.cursor() as cur, cur.copy(_COPY) as copy:
            for row in rows:
                copy.write_row(row)
        conn.execute("UPDATE geo_staged SET centroid = ST_PointOnSurface(geom) "
                     "WHERE centroid IS NULL")
        conn.execute("UPDATE geo_staged SET area_km2 = ST_Area(geom::geography) / 1e6 "
                     "WHERE area_km2 IS NULL AND NOT approximate")
        return apply_versions(
            conn, _TABLE, rows=len(rows), source=source, valid_from=valid_from,
            refuse=lambda later: GeoError(f"cannot load boundaries valid from {valid_from}: "
                                          f"newer versions exist, e.g. {later}"))
