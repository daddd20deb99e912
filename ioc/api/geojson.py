"""``GET /v1/geo/communes``: a GeoJSON FeatureCollection of current communes for maps.

One SQL query builds the whole document in PostGIS (``ST_AsGeoJSON``): every commune
of ``current_communes`` (optionally of one province) with its name, province, whether
its polygon is approximate (derived from centroids, not an official boundary), its
active alerts by severity and its KPIs of the latest day in ``service_kpi_daily``.
Answers are cached per province for :data:`CACHE_S` seconds.
"""

from __future__ import annotations

import asyncio
import time
from typing import Annotated, Final

from fastapi import APIRouter, Query
from fastapi.responses import Response

from ioc.api.deps import Resources, ResourcesDep, ViewerKey

CACHE_S: Final = 5.0
GEOJSON: Final = "application/geo+json"

_QUERY: Final = """
WITH c AS (
    SELECT commune_code, commune_name, province_code, province_name, approximate, geom
    FROM current_communes
    WHERE %(province)s::text IS NULL OR province_code = %(province)s::text
), a AS (
    SELECT commune_code,
           count(*) FILTER (WHERE severity = 'critical' AND state <> 'pending') AS critical,
           count(*) FILTER (WHERE severity = 'warning' AND state <> 'pending') AS warning,
           count(*) FILTER (WHERE severity = 'info' AND state <> 'pending') AS info,
           count(*) FILTER (WHERE state = 'pending') AS pending
    FROM alerts
    WHERE state IN ('pending', 'firing', 'acknowledged')
      AND commune_code IN (SELECT commune_code FROM c)
    GROUP BY commune_code
), k AS (
    SELECT DISTINCT ON (commune_code)
           commune_code, day, online_share, on_time_share, paid_online_share,
           digitised_share, dossiers_received
    FROM service_kpi_daily
    WHERE commune_code IN (SELECT commune_code FROM c)
    ORDER BY commune_code, day DESC
)
SELECT json_build_object(
    'type', 'FeatureCollection',
    'features', coalesce(json_agg(json_build_object(
        'type', 'Feature',
        'id', c.commune_code,
        'geometry', ST_AsGeoJSON(c.geom, 6)::json,
        'properties', json_build_object(
            'code', c.commune_code,
            'name', c.commune_name,
            'province_code', c.province_code,
            'province_name', c.province_name,
            'approximate', c.approximate,
            'alerts', json_build_object(
                'critical', coalesce(a.critical, 0),
                'warning', coalesce(a.warning, 0),
                'info', coalesce(a.info, 0),
                'pending', coalesce(a.pending, 0)),
            'kpi', json_build_object(
                'day', k.day,
                'online_share', k.online_share,
                'on_time_share', k.on_time_share,
                'paid_online_share', k.paid_online_share,
                'digitised_share', k.digitised_share,
                'dossiers_received', k.dossiers_received))
    ) ORDER BY c.commune_code), '[]'::json)
)::text
FROM c
LEFT JOIN a ON a.commune_code = c.commune_code
LEFT JOIN k ON k.commune_code = c.commune_code
"""


class CommuneLayer:
    """The per-province cache in front of the query (one query at a time per key)."""

    def __init__(self, ttl_s: float = CACHE_S) -> None:
        self.ttl = ttl_s
        self._cache: dict[str | None, tuple[float, bytes]] = {}
        self._locks: dict[str | None, asyncio.Lock] = {}

    async def get(self, res: Resources, province: str | None) -> bytes:
        hit = self._cache.get(province)
        if hit is not None and hit[0] > time.monotonic():
            return hit[1]
        lock = self._locks.setdefault(province, asyncio.Lock())
        async with lock:
            hit = self._cache.get(province)
            if hit is not None and hit[0] > time.monotonic():
                return hit[1]
            async with res.pool.connection() as conn:
                cur = await conn.execute(_QUERY, {"province": province})
                row = await cur.fetchone()
            doc = str(row[0]).encode() if row else b'{"type":"FeatureCollection","features":[]}'
            self._cache[province] = (time.monotonic() + self.ttl, doc)
            return doc


def _layer(res: Resources) -> CommuneLayer:
    layer = res.extras.get("geojson")
    if not isinstance(layer, CommuneLayer):
        layer = res.extras["geojson"] = CommuneLayer()
    return layer


router = APIRouter(tags=["map"])


@router.get(
    "/v1/geo/communes",
    summary="Communes as GeoJSON with active alerts and latest KPIs",
    response_class=Response,
    responses={200: {"content": {GEOJSON: {}},
                     "description": "A FeatureCollection; one Feature per commune."}},
)
async def communes(
    _key: ViewerKey, res: ResourcesDep,
    province: Annotated[str | None, Query(pattern=r"^\d{2}$",
                                          description="Two-digit province code, e.g. 01")]
    = None,
) -> Response:
    doc = await _layer(res).get(res, province)
    return Response(doc, media_type=GEOJSON,
                    headers={"Cache-Control": f"max-age={int(CACHE_S)}"})
