"""The SQL the demo reads: live counters while it runs, report data at the end.

Every function takes an open psycopg connection and a :class:`Window`; every query is
parameterised. "This run" means raw rows whose event time lies in the simulated span
and that a worker received after the demo started, and rollup buckets of the province
inside the simulated span.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import psycopg

RAW_TABLES = {"sensor": "sensor_readings", "traffic": "traffic_observations",
              "service": "service_events"}
"""Raw hypertable per feed."""

ACTIVE_STATES = ("pending", "firing", "acknowledged")
SEVERITY_RANK = {"info": 1, "warning": 2, "critical": 3}
KPIS = ("online_share", "on_time_share", "paid_online_share", "digitised_share")
"""Headline KPIs, as named in service_kpi_daily and kpi_targets."""

_SLACK = timedelta(minutes=10)

Conn = psycopg.Connection[Any]


@dataclass(frozen=True, slots=True)
class Window:
    """What the demo simulates: a province over [sim_start, sim_end), run from ``since``."""

    province: str
    sim_start: datetime
    sim_end: datetime
    since: datetime

    def params(self) -> dict[str, Any]:
        return {"p": self.province, "start": self.sim_start, "end": self.sim_end,
                "lo": self.sim_start - _SLACK, "hi": self.sim_end + _SLACK,
                "since": self.since}


# ------------------------------------------------------------------ setup checks
def boundaries_loaded(conn: Conn, province: str) -> int:
    """Current communes of the province in current_admin_units (0: not loaded)."""
    row = conn.execute(
        "SELECT count(*) FROM current_admin_units WHERE level = 'commune'"
        " AND parent_code = %s", (province,)).fetchone()
    return int(row[0]) if row else 0


# ------------------------------------------------------------------ live view
def raw_counts(conn: Conn, w: Window) -> dict[str, int]:
    """Raw rows stored by feed during this run."""
    counts = {}
    for feed, table in RAW_TABLES.items():
        row = conn.execute(
            f"SELECT count(*) FROM {table} WHERE time >= %(lo)s AND time < %(hi)s"
            " AND received_at >= %(since)s", w.params()).fetchone()
        counts[feed] = int(row[0]) if row else 0
    return counts


def sim_clock(conn: Conn, w: Window) -> datetime | None:
    """The newest event time this run stored in the simulated span (how far it got)."""
    row = conn.execute(
        "SELECT greatest((SELECT max(time) FROM sensor_readings"
        "                  WHERE time >= %(start)s AND time < %(hi)s"
        "                    AND received_at >= %(since)s),"
        "                (SELECT max(time) FROM traffic_observations"
        "                  WHERE time >= %(start)s AND time < %(hi)s"
        "                    AND received_at >= %(since)s))",
        w.params()).fetchone()
    return row[0] if row else None


@dataclass(frozen=True, slots=True)
class AlertRow:
    commune_code: str | None
    commune_name: str | None
    rule_id: str
    severity: str
    state: str
    value: float | None


def active_alerts(conn: Conn, w: Window) -> list[AlertRow]:
    """Alerts pending, firing or acknowledged in the province, worst first."""
    rows = conn.execute(
        "SELECT a.commune_code, c.name, a.rule_id, a.severity, a.state, a.last_value"
        " FROM alerts a LEFT JOIN current_admin_units c ON c.code = a.commune_code"
        " WHERE a.state = ANY(%(states)s) AND (a.province_code = %(p)s"
        "       OR a.commune_code IN (SELECT code FROM current_admin_units"
        "                             WHERE parent_code = %(p)s))"
        " ORDER BY CASE a.severity WHEN 'critical' THEN 0 WHEN 'warning' THEN 1 ELSE 2 END,"
        "          a.commune_code NULLS FIRST, a.rule_id",
        {**w.params(), "states": list(ACTIVE_STATES)}).fetchall()
    return [AlertRow(*r) for r in rows]


def alerts_seen(conn: Conn, w: Window) -> dict[str, int]:
    """Alerts of the province that changed during the run, by severity."""
    rows = conn.execute(
        "SELECT severity, count(*) FROM alerts WHERE updated_at >= %(lo)s"
        " AND (province_code = %(p)s OR province_code IS NULL) GROUP BY 1",
        w.params()).fetchall()
    return {str(s): int(n) for s, n in rows}


def province_kpis(conn: Conn, w: Window) -> dict[str, float | None]:
    """Province-level headline KPIs over the simulated days, from service_kpi_daily.

    Shares are weighted by their base: dossiers received (online, digitised), resolved
    (on time) and paid (paid online), so the result equals the share over all dossiers.
    """
    row = conn.execute(
        "SELECT sum(online_share * dossiers_received) / nullif(sum(dossiers_received)"
        "            FILTER (WHERE online_share IS NOT NULL), 0),"
        "       sum(on_time_share * dossiers_resolved) / nullif(sum(dossiers_resolved)"
        "            FILTER (WHERE on_time_share IS NOT NULL), 0),"
        "       sum(paid_online_share * dossiers_paid) / nullif(sum(dossiers_paid)"
        "            FILTER (WHERE paid_online_share IS NOT NULL), 0),"
        "       sum(digitised_share * dossiers_received) / nullif(sum(dossiers_received)"
        "            FILTER (WHERE digitised_share IS NOT NULL), 0),"
        "       sum(dossiers_received)"
        " FROM service_kpi_daily WHERE province_code = %(p)s"
        "  AND day >= (%(start)s AT TIME ZONE 'Asia/Ho_Chi_Minh')::date"
        "  AND day <= (%(end)s AT TIME ZONE 'Asia/Ho_Chi_Minh')::date",
        w.params()).fetchone()
    if row is None:
        return dict.fromkeys((*KPIS, "dossiers_received"))
    values = [None if v is None else float(v) for v in row]
    return dict(zip((*KPIS, "dossiers_received"), values, strict=True))


def rollup_rows(conn: Conn, w: Window) -> int:
    """One-minute rollup rows of the province inside the simulated span."""
    row = conn.execute(
        "SELECT count(*) FROM rollup_1m WHERE province_code = %(p)s"
        " AND bucket >= %(start)s AND bucket < %(hi)s", w.params()).fetchone()
    return int(row[0]) if row else 0


# ------------------------------------------------------------------ report
@dataclass(frozen=True, slots=True)
class Shape:
    code: str
    name: str
    wkb: bytes
    approximate: bool


def commune_shapes(conn: Conn, province: str) -> list[Shape]:
    """Current commune polygons of the province as WKB (EPSG:4326)."""
    rows = conn.execute(
        "SELECT code, name, ST_AsBinary(geom), approximate FROM current_admin_units"
        " WHERE level = 'commune' AND parent_code = %s ORDER BY code", (province,)).fetchall()
    return [Shape(str(c), str(n), bytes(g), bool(a)) for c, n, g, a in rows]


def province_name(conn: Conn, province: str) -> str | None:
    row = conn.execute("SELECT name FROM current_admin_units WHERE code = %s"
                       " AND level = 'province'", (province,)).fetchone()
    return str(row[0]) if row else None


Point = tuple[datetime, float]


def metric_average(conn: Conn, w: Window, metric: str) -> list[Point]:
    """Province average of ``metric`` per minute (sum of sums / sum of counts)."""
    rows = conn.execute(
        "SELECT bucket, sum(sum) / nullif(sum(count), 0) FROM rollup_1m"
        " WHERE province_code = %(p)s AND metric = %(m)s"
        "   AND bucket >= %(start)s AND bucket < %(hi)s"
        " GROUP BY bucket ORDER BY bucket", {**w.params(), "m": metric}).fetchall()
    return [(b, float(v)) for b, v in rows if v is not None]


def worst_communes(conn: Conn, w: Window, metric: str, n: int = 5
                   ) -> list[tuple[str, str, list[Point]]]:
    """The ``n`` communes with the highest peak of ``metric``, with their per-minute means."""
    top = conn.execute(
        "SELECT r.commune_code, coalesce(c.name, r.commune_code), max(r.max) AS peak"
        " FROM rollup_1m r LEFT JOIN current_admin_units c ON c.code = r.commune_code"
        " WHERE r.province_code = %(p)s AND r.metric = %(m)s"
        "   AND r.bucket >= %(start)s AND r.bucket < %(hi)s"
        " GROUP BY 1, 2 ORDER BY peak DESC, 1 LIMIT %(n)s",
        {**w.params(), "m": metric, "n": n}).fetchall()
    result = []
    for code, name, _ in top:
        rows = conn.execute(
            "SELECT bucket, sum / nullif(count, 0) FROM rollup_1m"
            " WHERE commune_code = %(c)s AND metric = %(m)s"
            "   AND bucket >= %(start)s AND bucket < %(hi)s ORDER BY bucket",
            {**w.params(), "m": metric, "c": code}).fetchall()
        result.append((str(code), str(name), [(b, float(v)) for b, v in rows
                                              if v is not None]))
    return result


@dataclass(frozen=True, slots=True)
class TrafficHour:
    hour: datetime  # local (Asia/Ho_Chi_Minh) hour, naive
    vehicles: float
    avg_speed_kmh: float | None
    incidents: float


def traffic_by_hour(conn: Conn, w: Window) -> list[TrafficHour]:
    """Vehicles counted, mean speed and incidents per local hour across the province."""
    rows = conn.execute(
        "SELECT date_trunc('hour', bucket AT TIME ZONE 'Asia/Ho_Chi_Minh') AS h,"
        "  sum(sum) FILTER (WHERE metric = 'traffic.vehicle_count'),"
        "  sum(sum) FILTER (WHERE metric = 'traffic.avg_speed_kmh')"
        "    / nullif(sum(count) FILTER (WHERE metric = 'traffic.avg_speed_kmh'), 0),"
        "  sum(sum) FILTER (WHERE metric = 'traffic.incident')"
        " FROM rollup_1m WHERE province_code = %(p)s AND metric LIKE 'traffic.%%'"
        "   AND bucket >= %(start)s AND bucket < %(hi)s GROUP BY 1 ORDER BY 1",
        w.params()).fetchall()
    return [TrafficHour(h, float(v or 0.0), None if s is None else float(s), float(i or 0.0))
            for h, v, s, i in rows]


@dataclass(frozen=True, slots=True)
class CommuneKpi:
    code: str
    name: str
    received: int
    shares: dict[str, float | None]


def commune_kpis(conn: Conn, w: Window) -> list[CommuneKpi]:
    """Each commune's KPI shares over the simulated days (service_kpi_daily)."""
    rows = conn.execute(
        "SELECT k.commune_code, coalesce(c.name, k.commune_code),"
        "  sum(k.dossiers_received),"
        "  sum(k.online_share * k.dossiers_received) / nullif(sum(k.dossiers_received)"
        "       FILTER (WHERE k.online_share IS NOT NULL), 0),"
        "  sum(k.on_time_share * k.dossiers_resolved) / nullif(sum(k.dossiers_resolved)"
        "       FILTER (WHERE k.on_time_share IS NOT NULL), 0),"
        "  sum(k.paid_online_share * k.dossiers_paid) / nullif(sum(k.dossiers_paid)"
        "       FILTER (WHERE k.paid_online_share IS NOT NULL), 0),"
        "  sum(k.digitised_share * k.dossiers_received) / nullif(sum(k.dossiers_received)"
        "       FILTER (WHERE k.digitised_share IS NOT NULL), 0)"
        " FROM service_kpi_daily k LEFT JOIN current_admin_units c ON c.code = k.commune_code"
        " WHERE k.province_code = %(p)s"
        "   AND k.day >= (%(start)s AT TIME ZONE 'Asia/Ho_Chi_Minh')::date"
        "   AND k.day <= (%(end)s AT TIME ZONE 'Asia/Ho_Chi_Minh')::date"
        " GROUP BY 1, 2 ORDER BY 1", w.params()).fetchall()
    return [CommuneKpi(str(code), str(name), int(n or 0),
                       {k: None if v is None else float(v)
                        for k, v in zip(KPIS, vals, strict=True)})
            for code, name, n, *vals in rows]


def tier_kpis(conn: Conn, w: Window) -> dict[str, dict[str, float | None]]:
    """The province's headline KPIs over the simulated span per agency tier (exact, per
    dossier: kpi_facts, docs/kpis.md); the tier gap is commune minus province."""
    rows = conn.execute(
        "SELECT tier,"
        " count(*) FILTER (WHERE kind = 'received' AND online)::float8"
        "   / nullif(count(*) FILTER (WHERE kind = 'received'), 0),"
        " count(*) FILTER (WHERE kind = 'resolved' AND on_time)::float8"
        "   / nullif(count(*) FILTER (WHERE kind = 'resolved' AND on_time IS NOT NULL), 0),"
        " count(*) FILTER (WHERE kind = 'paid' AND online)::float8"
        "   / nullif(count(*) FILTER (WHERE kind = 'paid'), 0),"
        " count(*) FILTER (WHERE kind = 'received' AND digitised)::float8"
        "   / nullif(count(*) FILTER (WHERE kind = 'received'), 0)"
        " FROM kpi_facts WHERE province_code = %(p)s AND time >= %(start)s AND time < %(end)s"
        " GROUP BY tier ORDER BY tier", w.params()).fetchall()
    return {str(r[0]): dict(zip(KPIS, r[1:], strict=True)) for r in rows}


def kpi_targets(conn: Conn) -> dict[str, float]:
    return {str(k): float(t) for k, t in conn.execute("SELECT kpi, target FROM kpi_targets")}
