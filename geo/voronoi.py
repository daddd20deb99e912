"""Approximate commune polygons from commune centroids.

No official boundaries ship with the project, so the bundled reference derives
*approximate* polygons, always labelled ``approximate=True``:

1. Coordinates are scaled to a locally isotropic plane, ``x = lon * cos(16°)``,
   ``y = lat`` (16° N is the middle of Vietnam's latitude range). The scaling is
   affine, so containment computed there holds unchanged in lon/lat.
2. One Voronoi diagram over *all* centroids of the country: cells never overlap,
   across provinces too, and every centroid lies strictly inside its own cell.
3. Each province gets an outline: the union of discs around its centroids with radius
   ``1.5 * sqrt(area / pi)`` (clamped to 1–25 km), closed by a 3 km buffer/unbuffer so
   neighbouring discs merge. Outlines of neighbouring provinces may overlap.
4. A commune's polygon is its Voronoi cell clipped to its own province's outline. Since
   the cells are disjoint, the polygons tile each province (the province polygon is
   the union of its communes) without overlaps, and each centroid stays inside.
"""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt
import shapely

KM_PER_DEG_LAT = 111.32
X_SCALE = math.cos(math.radians(16.0))
"""Longitude scale of the working plane (cos of Vietnam's middle latitude)."""

MIN_RADIUS_KM = 1.0
MAX_RADIUS_KM = 25.0
RADIUS_FACTOR = 1.5
CLOSING_KM = 3.0
GRID = 1e-5
"""Output precision in degrees (about 1 m)."""

Geoms = npt.NDArray[np.object_]


def _radius_deg(area_km2: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    area = np.where(np.isfinite(area_km2) & (area_km2 > 0), area_km2, np.nan)
    fallback = float(np.nanmedian(area)) if np.isfinite(area).any() else 50.0
    area = np.where(np.isnan(area), fallback, area)
    radius_km = np.clip(RADIUS_FACTOR * np.sqrt(area / math.pi), MIN_RADIUS_KM, MAX_RADIUS_KM)
    return np.asarray(radius_km / KM_PER_DEG_LAT, dtype=np.float64)


def _to_plane(geoms: Geoms) -> Geoms:
    return np.asarray(shapely.transform(geoms, lambda c: c * np.array([X_SCALE, 1.0])))


def _from_plane(geoms: Geoms) -> Geoms:
    return np.asarray(shapely.transform(geoms, lambda c: c / np.array([X_SCALE, 1.0])))


def approximate_polygons(
    province_codes: npt.ArrayLike,
    lat: npt.ArrayLike,
    lon: npt.ArrayLike,
    area_km2: npt.ArrayLike,
) -> Geoms:
    """Approximate commune MultiPolygons (EPSG:4326), one per input centroid.

    ``area_km2`` may hold NaN (a median stands in for the disc radius). Centroids must
    be distinct.
    """
    prov = np.asarray(province_codes, dtype=object)
    lat_a = np.asarray(lat, dtype=np.float64)
    lon_a = np.asarray(lon, dtype=np.float64)
    radius = _radius_deg(np.asarray(area_km2, dtype=np.float64))
    x = lon_a * X_SCALE
    pts = shapely.points(x, lat_a)
    extent = shapely.box(x.min() - 2, lat_a.min() - 2, x.max() + 2, lat_a.max() + 2)
    cells = np.asarray(
        shapely.get_parts(shapely.voronoi_polygons(shapely.multipoints(pts), extend_to=extent,
                                                   ordered=True))
    )
    if len(cells) != len(pts):
        raise ValueError("Voronoi diagram lost cells: are the centroids distinct?")
    closing = CLOSING_KM / KM_PER_DEG_LAT
    discs = shapely.buffer(pts, radius, quad_segs=4)
    out = np.empty(len(pts), dtype=object)
    for code in np.unique(prov):
        members = np.flatnonzero(prov == code)
        outline = shapely.union_all(discs[members])
        outline = shapely.buffer(shapely.buffer(outline, closing, quad_segs=4), -closing,
                                 quad_segs=4)
        outline = shapely.union(outline, shapely.union_all(discs[members]))
        out[members] = shapely.intersection(cells[members], outline)
    result = _from_plane(out)
    result = shapely.set_precision(result, GRID)
    return np.asarray([_as_multipolygon(g) for g in result], dtype=object)


def _as_multipolygon(geom: shapely.Geometry) -> shapely.MultiPolygon:
    parts = [p for p in shapely.get_parts(geom)
             if isinstance(p, shapely.Polygon) and not p.is_empty]
    return shapely.MultiPolygon(parts)


def union_by(groups: npt.ArrayLike, geoms: Geoms) -> dict[str, shapely.MultiPolygon]:
    """Union of ``geoms`` per group key (province polygons from their communes)."""
    keys = np.asarray(groups, dtype=object)
    return {
        str(k): _as_multipolygon(shapely.set_precision(shapely.union_all(geoms[keys == k]), GRID))
        for k in np.unique(keys)
    }
