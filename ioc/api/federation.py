"""``GET /v1/federation/provinces``: the nation's view of each province's summaries.

Per province: how fresh its figures are (the province's clock of its newest record and
when the nation stored it), its alert summary and its feed health, as the province
last published them (docs/federation.md). Viewer keys and above.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import orjson
from fastapi import APIRouter

from ioc.api.deps import ResourcesDep, ViewerKey

router = APIRouter(tags=["federation"])

_PROVINCES = """
SELECT o.origin, p.province_name, o.last_as_of, o.last_stored, o.records,
       a.body::text, f.body::text
FROM fed_origins o
LEFT JOIN current_provinces p ON p.province_code = o.origin
LEFT JOIN fed_snapshots a ON a.origin = o.origin AND a.kind = 'alert_summary'
LEFT JOIN fed_snapshots f ON f.origin = o.origin AND f.kind = 'feed_health'
ORDER BY o.origin
"""


def _iso(t: datetime | None) -> str | None:
    return None if t is None else t.astimezone(UTC).isoformat().replace("+00:00", "Z")


@router.get("/v1/federation/provinces",
            summary="Each province's freshness, alert summary and feed health")
async def provinces(_key: ViewerKey, res: ResourcesDep) -> dict[str, Any]:
    async with res.pool.connection() as conn:
        now_row = await (await conn.execute("SELECT now()")).fetchone()
        rows = await (await conn.execute(_PROVINCES)).fetchall()
    now = now_row[0] if now_row else datetime.now(UTC)
    out = []
    for code, name, as_of, stored, n, alerts, feeds in rows:
        summary = orjson.loads(alerts) if alerts else None
        firing = None if summary is None else sum(
            a["count"] for a in summary["alerts"] if a["state"] in ("firing", "acknowledged"))
        out.append({
            "province_code": code, "province_name": name, "as_of": _iso(as_of),
            "stored_at": _iso(stored), "lag_s": round((now - as_of).total_seconds(), 1),
            "records": int(n), "alerts_active": firing, "alert_summary": summary,
            "feed_health": orjson.loads(feeds) if feeds else None})
    return {"role": res.settings.federation.role, "as_of": _iso(now), "provinces": out}
