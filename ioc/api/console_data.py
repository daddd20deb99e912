"""Read endpoints the operator console needs beyond the operator API (``/v1/console/...``).

* ``me`` — who the key is (role, department, feeds): the page shows or hides controls
  from it (the server refuses actions anyway).
* ``board`` — every active alert (and those resolved in the last hour) in one answer,
  with the database clock it was read at: the page starts the live stream from that
  clock (``Last-Event-ID``), so nothing between the snapshot and the stream is lost.
* ``alerts/{fp}/series`` — the rule's metric over its window from ``rollup_1m``, with
  the threshold and clear level in effect for the alert's scope.
* ``silences/preview`` — the active alerts a set of matchers would silence.
* ``audit`` — audit entries of one alert or silence, so an operator sees the entry their
  action wrote (the full log stays admin-only at ``/v1/audit``).
* ``communes/{code}`` — a commune's drill-down: active alerts, latest reading of each
  metric, today's service KPIs against ``kpi_targets``.
* ``kpis`` — the province's headline service KPIs of today against targets.

Every answer is bounded (row limits below); every query is parameterised.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Annotated, Any, Final

from fastapi import APIRouter, Path, Query, Request
from psycopg.rows import dict_row
from pydantic import BaseModel, Field

from alerts.ruleload import load_rules_dir
from alerts.rules import KpiRule, RuleSet, ThresholdRule
from alerts.silences import MAX_MATCHERS, Matcher
from ioc.api.console_auth import AnyKey
from ioc.api.deps import OperatorKey, Resources, ResourcesDep, ViewerKey
from ioc.api.errors import BadRequestError, NotFoundError
from ioc.api.inputs import read_model
from ioc.api.silences import MatcherIn, MatcherText, parse_matchers

BOARD_MAX: Final = 20_000
"""Most alerts one board answer carries (the answer says when it was cut)."""
RESOLVED_RECENT: Final = timedelta(hours=1)
SERIES_MAX_POINTS: Final = 1440
PREVIEW_SAMPLE: Final = 50
ACTIVE: Final = ("pending", "firing", "acknowledged")
KPI_NAMES: Final = ("online_share", "on_time_share", "resolved_online_share",
                    "paid_online_share", "digitised_share")
_CODE = re.compile(r"^\d{2,5}$")

router = APIRouter(prefix="/v1/console", tags=["console"])


def _jsonable(row: dict[str, Any]) -> dict[str, Any]:
    return {k: (v.isoformat() if isinstance(v, datetime) else v) for k, v in row.items()
            if k not in ("clear_since", "last_notified_at")}


# --------------------------------------------------------------------------- me
class Me(BaseModel):
    name: str
    role: str
    department: str | None
    feeds: list[str]
    can_act: bool = Field(description="operator or admin: may acknowledge, resolve, silence")
    is_admin: bool
    tile_url: str | None = Field(description="api.console_tile_url: map tiles, if any")


@router.get("/me", response_model=Me, summary="The calling key's identity and rights")
async def me(key: AnyKey, res: ResourcesDep) -> Me:
    return Me(name=key.name, role=key.role, department=key.department,
              feeds=sorted(key.feeds), can_act=key.at_least("operator"),
              is_admin=key.at_least("admin"), tile_url=res.settings.api.console_tile_url)


# --------------------------------------------------------------------------- board
# ``backfilled``: whether the alert's latest transition was already in the past when it
# was evaluated (the event-time work's ``alert_transitions.backfilled``; read through
# to_jsonb so the query also runs on a database without that column).
_BOARD: Final = """
SELECT a.*, coalesce(b.backfilled, false) AS backfilled
FROM alerts a
LEFT JOIN LATERAL (
    SELECT (to_jsonb(t) ->> 'backfilled')::boolean AS backfilled FROM alert_transitions t
    WHERE t.fingerprint = a.fingerprint AND t.seq = a.seq LIMIT 1) b ON true
WHERE a.state = ANY(%s)
   OR (a.state = 'resolved' AND a.resolved_at > %s::timestamptz - %s::interval)
ORDER BY a.updated_at DESC LIMIT %s
"""


@router.get("/board", summary="Active alerts in one answer, with the clock to stream from")
async def board(_key: ViewerKey, res: ResourcesDep) -> dict[str, Any]:
    async with res.pool.connection() as conn, conn.cursor(row_factory=dict_row) as cur:
        await cur.execute("SELECT clock_timestamp() AS now")
        clock = await cur.fetchone()
        await cur.execute(_BOARD, (list(ACTIVE), clock["now"] if clock else None,
                                   RESOLVED_RECENT, BOARD_MAX + 1))
        rows = await cur.fetchall()
    as_of: datetime | None = clock["now"] if clock else None
    return {"as_of": as_of.isoformat() if as_of else None,
            "truncated": len(rows) > BOARD_MAX,
            "alerts": [_jsonable(dict(r)) for r in rows[:BOARD_MAX]]}


# --------------------------------------------------------------------------- rules
def _rules(res: Resources) -> RuleSet:
    rules = res.extras.get("console_rules")
    if not isinstance(rules, RuleSet):
        rules = res.extras["console_rules"] = load_rules_dir(
            res.settings.resolve(res.settings.alerts.rules_dir))
    return rules


@router.get("/alerts/{fingerprint}/series",
            summary="The rule's metric over its window, per minute, from rollup_1m")
async def series(fingerprint: Annotated[str, Path(max_length=200)], _key: ViewerKey,
                 res: ResourcesDep) -> dict[str, Any]:
    async with res.pool.connection() as conn, conn.cursor(row_factory=dict_row) as cur:
        await cur.execute("SELECT * FROM alerts WHERE fingerprint = %s", (fingerprint,))
        alert = await cur.fetchone()
        if alert is None:
            raise NotFoundError(f"no alert {fingerprint}")
        rule = _rules(res).get(str(alert["rule_id"]))
        out: dict[str, Any] = {"rule_id": alert["rule_id"], "metric": None, "points": []}
        if not isinstance(rule, ThresholdRule | KpiRule):
            out["reason"] = "this rule has no metric series (absence rule or unknown rule)"
            return out
        labels: dict[str, str] = alert["labels"]
        commune, province = labels.get("commune_code"), labels.get("province_code")
        limits = rule.limits(commune, province)
        metric = rule.metric if isinstance(rule, ThresholdRule) else rule.numerator
        end: datetime = (alert["resolved_at"] or alert["updated_at"]) + timedelta(minutes=5)
        span = max(rule.window * 3, timedelta(hours=1))
        where, params = ["metric = %s", "bucket > %s", "bucket <= %s"], [metric, end - span,
                                                                         end]
        if rule.scope == "commune" and commune:
            where.append("commune_code = %s")
            params.append(commune)
        elif province:
            where.append("province_code = %s")
            params.append(province)
        await cur.execute(
            "SELECT bucket, sum(count)::bigint AS count, sum(sum) AS sum, min(min) AS min,"
            " max(max) AS max FROM rollup_1m WHERE " + " AND ".join(where)
            + " GROUP BY bucket ORDER BY bucket LIMIT %s", [*params, SERIES_MAX_POINTS])
        points = await cur.fetchall()
    aggregate = rule.aggregate if isinstance(rule, ThresholdRule) else "share"
    out.update({
        "metric": metric, "aggregate": aggregate, "op": rule.op,
        "window_s": int(rule.window.total_seconds()), "scope": rule.scope,
        "threshold": limits.threshold if limits else None,
        "clear": limits.clear if limits else None,
        "value": alert["last_value"],
        "points": [{"t": p["bucket"].isoformat(), "count": p["count"], "sum": p["sum"],
                    "min": p["min"], "max": p["max"],
                    "avg": p["sum"] / p["count"] if p["count"] else None} for p in points]})
    return out


# --------------------------------------------------------------------------- silences
class PreviewIn(BaseModel):
    """The matchers of a silence about to be created, with the same bounds as
    ``SilenceIn`` (checked by pydantic before any matcher is parsed)."""

    matchers: list[MatcherText | MatcherIn] = Field(min_length=1, max_length=MAX_MATCHERS)


def _matching(rows: Sequence[dict[str, Any]], matchers: Sequence[Matcher]
              ) -> list[dict[str, Any]]:
    return [r for r in rows if all(m.matches(r["labels"]) for m in matchers)]


@router.post("/silences/preview", summary="Active alerts a silence with these matchers hits")
async def silence_preview(request: Request, _key: OperatorKey,
                          res: ResourcesDep) -> dict[str, Any]:
    """Operators only, like creating a silence (a viewer has no use for it)."""
    body = await read_model(request, PreviewIn)  # read after authentication, bounded
    if body is None:
        raise BadRequestError("send {\"matchers\": [...]}", code="missing_body")
    matchers = parse_matchers(body.matchers)
    async with res.pool.connection() as conn, conn.cursor(row_factory=dict_row) as cur:
        await cur.execute("SELECT fingerprint, rule_id, state, severity, labels FROM alerts"
                          " WHERE state = ANY(%s) LIMIT %s", (list(ACTIVE), BOARD_MAX))
        rows = await cur.fetchall()
    # up to BOARD_MAX alerts x MAX_MATCHERS RE2 matches: off the event loop
    hits = await asyncio.to_thread(_matching, rows, matchers)
    return {"count": len(hits), "sample": hits[:PREVIEW_SAMPLE],
            "matchers": [m.to_json() for m in matchers]}


# --------------------------------------------------------------------------- audit
@router.get("/audit", summary="Audit entries of one alert or silence")
async def audit(_key: ViewerKey, res: ResourcesDep,
                target: Annotated[str, Query(min_length=1, max_length=200)],
                limit: Annotated[int, Query(ge=1, le=200)] = 50) -> list[dict[str, Any]]:
    async with res.pool.connection() as conn, conn.cursor(row_factory=dict_row) as cur:
        await cur.execute("SELECT at, actor, action, target, detail FROM audit_log"
                          " WHERE target = %s ORDER BY id DESC LIMIT %s", (target, limit))
        return [_jsonable(dict(r)) for r in await cur.fetchall()]


# --------------------------------------------------------------------------- KPIs
_TODAY = "(now() AT TIME ZONE 'Asia/Ho_Chi_Minh')::date"


async def _targets(cur: Any) -> dict[str, dict[str, Any]]:
    await cur.execute("SELECT kpi, target, description FROM kpi_targets")
    return {r["kpi"]: {"target": r["target"], "description": r["description"]}
            for r in await cur.fetchall()}


def _against(values: dict[str, Any], targets: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    out = []
    for name in KPI_NAMES:
        value, target = values.get(name), targets.get(name, {}).get("target")
        out.append({"kpi": name, "value": value, "target": target,
                    "description": targets.get(name, {}).get("description"),
                    "met": None if value is None or target is None else value >= target})
    return out


_SHARES = """
    sum(count) FILTER (WHERE metric = 'service.received') AS dossiers_received,
    sum(sum) FILTER (WHERE metric = 'service.received.online')
      / nullif(sum(count) FILTER (WHERE metric = 'service.received.online'), 0) AS online_share,
    sum(sum) FILTER (WHERE metric = 'service.resolved.on_time')
      / nullif(sum(count) FILTER (WHERE metric = 'service.resolved.on_time'), 0) AS on_time_share,
    sum(sum) FILTER (WHERE metric = 'service.resolved.online')
      / nullif(sum(count) FILTER (WHERE metric = 'service.resolved.online'), 0)
      AS resolved_online_share,
    sum(sum) FILTER (WHERE metric = 'service.paid.online')
      / nullif(sum(count) FILTER (WHERE metric = 'service.paid.online'), 0) AS paid_online_share,
    sum(sum) FILTER (WHERE metric = 'service.received.digitised')
      / nullif(sum(count) FILTER (WHERE metric = 'service.received.digitised'), 0)
      AS digitised_share
"""


@router.get("/kpis", summary="Headline service KPIs of today (Vietnam time) against targets")
async def kpis(_key: ViewerKey, res: ResourcesDep,
               province: Annotated[str | None, Query(pattern=r"^\d{2}$")] = None
               ) -> dict[str, Any]:
    """Today's shares over the province (or everything), weighted by dossiers: computed
    from the minute rollups like ``service_kpi_daily``, not averaged over communes."""
    async with res.pool.connection() as conn, conn.cursor(row_factory=dict_row) as cur:
        targets = await _targets(cur)
        await cur.execute(
            f"SELECT {_TODAY} AS day, {_SHARES} FROM rollup_1m"
            " WHERE metric LIKE 'service.%%'"
            f" AND bucket >= ({_TODAY})::timestamp AT TIME ZONE 'Asia/Ho_Chi_Minh'"
            " AND (%s::text IS NULL OR province_code = %s::text)", (province, province))
        row = await cur.fetchone() or {}
    return {"province": province, "day": str(row.get("day")) if row.get("day") else None,
            "dossiers_received": row.get("dossiers_received"),
            "kpis": _against(dict(row), targets)}


# --------------------------------------------------------------------------- commune
@router.get("/communes/{code}", summary="A commune's drill-down")
async def commune(code: Annotated[str, Path(pattern=r"^\d{5}$")], _key: ViewerKey,
                  res: ResourcesDep) -> dict[str, Any]:
    if not _CODE.match(code):
        raise BadRequestError("commune codes are 5 digits")
    async with res.pool.connection() as conn, conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(
            "SELECT commune_code, commune_name, province_code, province_name, approximate"
            " FROM current_communes WHERE commune_code = %s", (code,))
        info = await cur.fetchone()
        if info is None:
            raise NotFoundError(f"no commune {code}")
        await cur.execute(
            "SELECT * FROM alerts WHERE commune_code = %s AND state = ANY(%s)"
            " ORDER BY updated_at DESC LIMIT 200", (code, list(ACTIVE)))
        alerts = [_jsonable(dict(r)) for r in await cur.fetchall()]
        await cur.execute(
            "SELECT DISTINCT ON (metric) metric, last, last_at, bucket, count, sum"
            " FROM rollup_1m WHERE commune_code = %s AND bucket > now() - interval '7 days'"
            " ORDER BY metric, bucket DESC LIMIT 200", (code,))
        readings = [{"metric": r["metric"], "last": r["last"],
                     "last_at": r["last_at"].isoformat(),
                     "minute_avg": r["sum"] / r["count"] if r["count"] else None,
                     "minute_count": r["count"]}
                    for r in await cur.fetchall() if not str(r["metric"]).startswith("service.")]
        targets = await _targets(cur)
        await cur.execute(
            f"SELECT * FROM service_kpi_daily WHERE commune_code = %s AND day = {_TODAY}",
            (code,))
        kpi = await cur.fetchone() or {}
    return {"commune": dict(info), "alerts": alerts, "readings": readings,
            "kpi_day": str(kpi["day"]) if kpi.get("day") else None,
            "dossiers_received": kpi.get("dossiers_received"),
            "kpis": _against(dict(kpi), targets)}
