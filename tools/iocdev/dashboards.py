#!/usr/bin/env python3
"""Generate the provisioned Grafana dashboards (config/grafana/dashboards/*.json) with
Grafana's official grafana-foundation-sdk (its builders, pinned to the 11.6 build).

    python tools/iocdev/dashboards.py          # write the JSON files
    python tools/iocdev/dashboards.py --check  # exit 1 when a file is stale

The JSON is committed (Grafana reads it from the mounted folder); this script is the
source, so panels share datasources, variables, units and layout rules. Target:
Grafana 11.6 (docker-compose.yml pins grafana/grafana:11.6.0), dashboard
schemaVersion 41. Datasource uids match provisioning/datasources/ioc.yml.

SQL panels read the per-commune tables and views (rollup_1m, service_kpi_daily,
current_communes, alerts, kpi_targets) through Grafana's macros ($__timeFilter,
$__timeGroupAlias, $__timeFrom/$__timeTo, $__interval); PromQL panels use the metric
names of ioccore/metrics.py. tests/unit/observability/test_dashboards.py checks the model,
tests/integration/observability/test_panel_queries.py runs every query for real.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from grafana_foundation_sdk.builders import common as sdk_common
from grafana_foundation_sdk.builders import dashboard as sdk_dash
from grafana_foundation_sdk.builders import geomap as sdk_geomap
from grafana_foundation_sdk.builders import prometheus as sdk_prom
from grafana_foundation_sdk.builders import stat as sdk_stat
from grafana_foundation_sdk.builders import table as sdk_table
from grafana_foundation_sdk.builders import timeseries as sdk_ts
from grafana_foundation_sdk.cog import builder as cogbuilder
from grafana_foundation_sdk.cog import variants as cogvariants
from grafana_foundation_sdk.cog.encoder import JSONEncoder
from grafana_foundation_sdk.models import common as cm
from grafana_foundation_sdk.models import dashboard as dm
from grafana_foundation_sdk.models import geomap as geomap_models
from grafana_foundation_sdk.models import prometheus as prom_models

ROOT = Path(__file__).resolve().parents[2]
OUT = ROOT / "config" / "grafana" / "dashboards"
GRAFANA_VERSION = "11.6.0"
SCHEMA_VERSION = 41

TSDB_REF = dm.DataSourceRef(type_val="grafana-postgresql-datasource", uid="ioc-timescaledb")
PROM_REF = dm.DataSourceRef(type_val="prometheus", uid="ioc-prometheus")

ACTIVE = "('pending', 'firing', 'acknowledged')"
SEVERITY_RANK = ("CASE a.severity WHEN 'critical' THEN 3 WHEN 'warning' THEN 2 "
                 "WHEN 'info' THEN 1 ELSE 0 END")
APPROX_NOTE = ("Commune positions are the official centroids from vietnamadminunits; "
               "polygons loaded from the bundled reference are approximate (Voronoi cells, "
               "column `approximate`), not official boundaries.")

# Vietnam AQI (VN_AQI, Decision 1459/QĐ-TCMT of 2019) concentration breakpoints, µg/m3.
AQI_COLORS = ["green", "yellow", "orange", "red", "purple", "dark-red"]
PM25_BANDS = [None, 25, 50, 80, 150, 250]
PM10_BANDS = [None, 50, 150, 250, 350, 420]

Json = dict[str, Any]


# ---------------------------------------------------------------- building blocks
# Panels, queries, variables and the dashboard are grafana-foundation-sdk builders (the
# typed models of the pinned Grafana); a Spec carries a panel's builder with its size
# until layout() gives it a place. The PostgreSQL datasource has no SDK query type, so
# SqlQuery is one (a cog Dataquery variant serialised by the SDK's encoder).
class SqlQuery(cogvariants.Dataquery):
    """A raw-SQL query of Grafana's PostgreSQL datasource."""

    def __init__(self, raw: str, fmt: str, ref: str) -> None:
        self.raw, self.fmt, self.ref = raw, fmt, ref

    def to_json(self) -> Json:
        return {"refId": self.ref, "datasource": TSDB_REF.to_json(), "editorMode": "code",
                "format": self.fmt, "rawQuery": True, "rawSql": self.raw}


class Sql(cogbuilder.Builder[cogvariants.Dataquery]):
    def __init__(self, query: SqlQuery) -> None:
        self.query = query

    def build(self) -> cogvariants.Dataquery:
        return self.query


Query = Sql | sdk_prom.Dataquery


@dataclass
class Spec:
    """One panel (or row) to place: its SDK builder, kind and size."""

    builder: Any  # an SDK panel builder (table, stat, timeseries, geomap) or a Row
    kind: str
    w: int
    h: int


def steps(values: Sequence[float | None], colors: list[str]) -> Json:
    """Absolute thresholds (the JSON of an override's ``thresholds`` value)."""
    return {"mode": "absolute",
            "steps": [{"color": c, "value": v} for v, c in zip(values, colors, strict=True)]}


def _thresholds(t: Json) -> sdk_dash.ThresholdsConfig:
    return (sdk_dash.ThresholdsConfig().mode(dm.ThresholdsMode(t["mode"]))
            .steps([dm.Threshold(value=s["value"], color=s["color"]) for s in t["steps"]]))


def sql(raw: str, fmt: str = "time_series", ref: str = "A") -> Sql:
    return Sql(SqlQuery(" ".join(raw.split()), fmt, ref))


def prom(expr: str, legend: str = "__auto", ref: str = "A", instant: bool = False
         ) -> sdk_prom.Dataquery:
    q = (sdk_prom.Dataquery().ref_id(ref).datasource(PROM_REF)
         .editor_mode(prom_models.QueryEditorMode.CODE).expr(" ".join(expr.split()))
         .legend_format(legend))
    return q.instant() if instant else q.range()


def panel(builder: Any, kind: str, title: str, targets: Sequence[Query], *, w: int = 12,
          h: int = 8, description: str = "", unit: str | None = None,
          thresholds: Json | None = None, overrides: list[Json] | None = None,
          minmax: tuple[float, float] | None = None) -> Spec:
    """The settings every panel kind shares, set through the SDK builder."""
    ds = TSDB_REF if isinstance(targets[0], Sql) else PROM_REF
    b = (builder.title(title).description(description).datasource(ds).targets(list(targets))
         .overrides([]))  # fieldConfig present even when empty, as Grafana saves it
    if unit:
        b = b.unit(unit)
    if thresholds:
        b = b.thresholds(_thresholds(thresholds)).color_scheme(
            sdk_dash.FieldColor().mode(dm.FieldColorModeId.THRESHOLDS))
    if minmax:
        b = b.min(minmax[0]).max(minmax[1])
    for o in overrides or []:
        b = b.with_override(
            dm.MatcherConfig(id_val=o["matcher"]["id"], options=o["matcher"]["options"]),
            [dm.DynamicConfigValue(id_val=p["id"], value=p["value"])
             for p in o["properties"]])
    return Spec(b, kind, w, h)


def timeseries(title: str, targets: Sequence[Query], *, bars: bool = False,
               bars_unstacked: bool = False, threshold_style: str | None = None,
               fill: float | None = None, points: bool = False, **kw: Any) -> Spec:
    b = (sdk_ts.Panel()
         .legend(sdk_common.VizLegendOptions().display_mode(cm.LegendDisplayMode.LIST)
                 .placement(cm.LegendPlacement.BOTTOM).show_legend(True))
         .tooltip(sdk_common.VizTooltipOptions().mode(cm.TooltipDisplayMode.MULTI)
                  .sort(cm.SortOrder.DESCENDING)))
    if bars:
        b = (b.draw_style(cm.GraphDrawStyle.BARS).fill_opacity(60)
             .stacking(sdk_common.StackingConfig().mode(cm.StackingMode.NORMAL).group("A")))
    if bars_unstacked:
        b = b.draw_style(cm.GraphDrawStyle.BARS).fill_opacity(60)
    if threshold_style:
        b = b.thresholds_style(sdk_common.GraphThresholdsStyleConfig().mode(
            cm.GraphThresholdsStyleMode(threshold_style)))
    if fill is not None:
        b = b.fill_opacity(fill)
    if points:
        b = (b.draw_style(cm.GraphDrawStyle.LINE).show_points(cm.VisibilityMode.ALWAYS)
             .point_size(6))
    return panel(b, "timeseries", title, targets, **kw)


def bars(title: str, targets: Sequence[Query], **kw: Any) -> Spec:
    return timeseries(title, targets, bars=True, **kw)


def stat(title: str, targets: Sequence[Query], *, fields: str = "",
         color_mode: str = "background", vertical: bool = False, **kw: Any) -> Spec:
    """One value per field (``fields``: a regexp of the fields shown, each row's value
    when given)."""
    reduce = (sdk_common.ReduceDataOptions().calcs(["lastNotNull"]).fields(fields)
              .values(bool(fields)))
    b = (sdk_stat.Panel().reduce_options(reduce)
         .color_mode(cm.BigValueColorMode(color_mode)).graph_mode(cm.BigValueGraphMode.NONE)
         .text_mode(cm.BigValueTextMode.VALUE_AND_NAME))
    if vertical:
        b = b.orientation(cm.VizOrientation.VERTICAL)
    kw.setdefault("w", 4)
    kw.setdefault("h", 5)
    return panel(b, "stat", title, targets, **kw)


def table(title: str, targets: Sequence[Query], **kw: Any) -> Spec:
    b = (sdk_table.Panel().show_header(True).cell_height(cm.TableCellHeight.SM)
         .footer(sdk_common.TableFooterOptions().show(False).reducer(["sum"]).fields([])))
    return panel(b, "table", title, targets, **kw)


def geomap(title: str, targets: Sequence[Query], *, size_field: str, color_field: str,
           thresholds: Json, **kw: Any) -> Spec:
    """Markers at latitude/longitude columns of a table-format query."""
    markers = (sdk_common.MapLayerOptions().type("markers").name("Communes").tooltip(True)
               .location(sdk_common.FrameGeometrySource().mode(
                   cm.FrameGeometrySourceMode.COORDS).latitude("latitude")
                   .longitude("longitude"))
               .config({"showLegend": True, "style": {
                   "size": {"field": size_field, "fixed": 5, "min": 3, "max": 18},
                   "color": {"field": color_field, "fixed": "green"},
                   "opacity": 0.7,
                   "symbol": {"mode": "fixed", "fixed": "img/icons/marker/circle.svg"}}}))
    b = (sdk_geomap.Panel()
         # whole degrees and zoom levels: the 11.6 schema types them as integers
         .view(sdk_geomap.MapViewConfig().id("coords").lat(16).lon(106).zoom(6)
               .all_layers(True))
         .controls(sdk_geomap.ControlsOptions().show_zoom(True).mouse_wheel_zoom(True)
                   .show_attribution(True))
         .basemap(sdk_common.MapLayerOptions().type("default").name("Basemap").config({}))
         .tooltip(sdk_geomap.TooltipOptions().mode(geomap_models.TooltipMode.DETAILS))
         .layers([markers]))
    return panel(b, "geomap", title, targets, thresholds=thresholds, **kw)


def row(title: str) -> Spec:
    return Spec(sdk_dash.Row(title).collapsed(False), "row", 24, 1)


def layout(panels: list[Spec]) -> list[Spec]:
    """Place panels left to right, wrapping at 24 columns; number them from 1."""
    x = y = line_h = 0
    for pid, p in enumerate(panels, start=1):
        if p.kind == "row" or x + p.w > 24:
            x, y, line_h = 0, y + line_h, 0
        p.builder = p.builder.id(pid).grid_pos(dm.GridPos(x=x, y=y, w=p.w, h=p.h))
        x += p.w
        line_h = max(line_h, p.h)
        if p.kind == "row":
            x, y, line_h = 0, y + p.h, 0
    return panels


# ---------------------------------------------------------------- template variables
def _query_var(name: str, label: str, query: str, *, multi: bool,
               refresh: dm.VariableRefresh = dm.VariableRefresh.ON_DASHBOARD_LOAD,
               sort: dm.VariableSort = dm.VariableSort.DISABLED) -> sdk_dash.QueryVariable:
    return (sdk_dash.QueryVariable(name).label(label).datasource(TSDB_REF).query(query)
            .refresh(refresh).sort(sort).multi(multi).include_all(multi)
            .allow_custom_value(False))


def var_province(multi: bool = False) -> sdk_dash.QueryVariable:
    return _query_var("province", "Province",
                      "SELECT province_code AS __value, province_name AS __text "
                      "FROM current_provinces ORDER BY province_name", multi=multi)


def var_commune(multi: bool) -> sdk_dash.QueryVariable:
    return _query_var("commune", "Commune",
                      "SELECT commune_code AS __value, commune_name AS __text "
                      "FROM current_communes WHERE province_code = '$province' "
                      "ORDER BY commune_name", multi=multi)


def var_metric() -> sdk_dash.QueryVariable:
    return _query_var("metric", "Metric",
                      "SELECT DISTINCT metric FROM rollup_1m WHERE commune_code = '$commune' "
                      "AND bucket > now() - interval '7 days' ORDER BY 1", multi=True,
                      refresh=dm.VariableRefresh.ON_TIME_RANGE_CHANGED,
                      sort=dm.VariableSort.ALPHABETICAL_ASC)


Variable = sdk_dash.QueryVariable | sdk_dash.CustomVariable


def dashboard(uid: str, title: str, description: str, panels: list[Spec], *,
              variables: list[Variable], tags: list[str], time_from: str = "now-6h",
              refresh: str = "1m") -> Json:
    d = (sdk_dash.Dashboard(title).uid(uid).description(description).tags(["ioc", *tags])
         .timezone("browser").readonly().tooltip(dm.DashboardCursorSync.CROSSHAIR)
         .time(time_from, "now").refresh(refresh).version(1).live_now(False).week_start("")
         .link(sdk_dash.DashboardLink("IOC").type(dm.DashboardLinkType.DASHBOARDS)
               .tags(["ioc"]).as_dropdown(True).include_vars(True).keep_time(True)
               .icon("external link").target_blank(False).tooltip("").url(""))
         .annotation(sdk_dash.AnnotationQuery().name("Annotations & Alerts").built_in(1)
                     .datasource(dm.DataSourceRef(type_val="grafana", uid="-- Grafana --"))
                     .enable(True).hide(True).icon_color("rgba(0, 211, 255, 1)")
                     .type("dashboard"))
         .variables(list(variables)))
    for p in layout(panels):
        d = d.with_row(p.builder) if p.kind == "row" else d.with_panel(p.builder)
    model: Json = json.loads(json.dumps(d.build(), cls=JSONEncoder))
    model["schemaVersion"] = SCHEMA_VERSION  # the SDK's is the same; said here, checked
    return model


# ---------------------------------------------------------------- SQL fragments
def avg_series(metric: str) -> str:
    """Window average per commune and interval (sum/count of the one-minute rollups)."""
    return f"""
        SELECT $__timeGroupAlias(r.bucket, $__interval), c.commune_name AS metric,
               sum(r.sum) / nullif(sum(r.count), 0) AS value
        FROM rollup_1m r JOIN current_communes c USING (commune_code)
        WHERE $__timeFilter(r.bucket) AND r.metric = '{metric}'
          AND r.province_code = '$province' AND r.commune_code IN ($commune)
        GROUP BY 1, 2 ORDER BY 1"""


def total_series(metric: str, column: str = "sum") -> str:
    """Window total per commune and interval (sum of sums, or of counts)."""
    return f"""
        SELECT $__timeGroupAlias(r.bucket, $__interval), c.commune_name AS metric,
               sum(r.{column}) AS value
        FROM rollup_1m r JOIN current_communes c USING (commune_code)
        WHERE $__timeFilter(r.bucket) AND r.metric = '{metric}'
          AND r.province_code = '$province' AND r.commune_code IN ($commune)
        GROUP BY 1, 2 ORDER BY 1"""


def share(metric: str, where: str = "") -> str:
    return (f"sum(r.sum) FILTER (WHERE r.metric = '{metric}'{where}) / nullif(sum(r.count) "
            f"FILTER (WHERE r.metric = '{metric}'{where}), 0)")


KPIS = [  # (kpi_targets.kpi = service_kpi_daily column, rollup metric, title)
    ("online_share", "service.received.online", "Dossiers submitted online"),
    ("resolved_online_share", "service.resolved.online", "Dossiers resolved online"),
    ("on_time_share", "service.resolved.on_time", "Dossiers resolved on time"),
    ("paid_online_share", "service.paid.online", "Fee-bearing dossiers paid online"),
    ("digitised_share", "service.received.digitised", "Dossier records digitised"),
]
SHARE_STEPS = steps([None, 0.6, 0.8], ["red", "orange", "green"])


# ---------------------------------------------------------------- dashboards
def overview() -> Json:
    prov = "IN ($province)"
    kpi_stats = [
        stat(title, [sql(f"""
            SELECT {share(metric)} AS "{title}" FROM rollup_1m r
            WHERE $__timeFilter(r.bucket) AND r.metric = '{metric}'
              AND r.province_code {prov}""", "table")],
             unit="percentunit", thresholds=SHARE_STEPS, minmax=(0, 1),
             description=f"{title}: share over the selected time range, all communes of "
                         f"the selected provinces (from rollup_1m). Target: kpi_targets.{kpi}.")
        for kpi, metric, title in KPIS
    ]
    return dashboard("ioc-overview", "IOC overview",
                     "Active alerts, the commune map and the headline service KPIs.", [
        row("Alerts"),
        stat("Active alerts by severity", [sql(f"""
            SELECT s.severity AS "Severity", count(a.fingerprint) AS "Active alerts"
            FROM (VALUES ('critical', 3), ('warning', 2), ('info', 1)) AS s(severity, rank)
            LEFT JOIN alerts a ON a.severity = s.severity AND a.state IN {ACTIVE}
                              AND a.province_code {prov}
            GROUP BY s.severity, s.rank ORDER BY s.rank DESC""", "table")],
             w=8, h=8, thresholds=steps([None, 1], ["green", "red"]),
             fields="/Active alerts/", vertical=True,
             description="Alerts pending, firing or acknowledged (table alerts), "
                         "by severity."),
        stat("Alerts by state", [sql(f"""
            SELECT a.state AS "State", count(*) AS "Alerts" FROM alerts a
            WHERE a.state IN {ACTIVE} AND a.province_code {prov}
            GROUP BY a.state ORDER BY a.state""", "table")],
             w=6, h=8, thresholds=steps([None], ["blue"]),
             fields="/Alerts/", color_mode="value", vertical=True),
        bars("Alerts started", [sql(f"""
            SELECT $__timeGroupAlias(a.started_at, '15m'), a.severity AS metric,
                   count(*) AS value
            FROM alerts a
            WHERE $__timeFilter(a.started_at) AND a.province_code {prov}
            GROUP BY 1, 2 ORDER BY 1""")], w=10, h=8,
             description="Alert episodes by start time and severity (alerts.started_at)."),
        geomap("Communes with active alerts", [sql(f"""
            SELECT c.commune_code, c.commune_name, c.province_name,
                   c.latitude, c.longitude, c.approximate,
                   count(a.fingerprint) AS active_alerts,
                   coalesce(max({SEVERITY_RANK}), 0) AS max_severity
            FROM current_communes c
            LEFT JOIN alerts a ON a.commune_code = c.commune_code AND a.state IN {ACTIVE}
            WHERE c.province_code {prov}
            GROUP BY c.commune_code, c.commune_name, c.province_name, c.latitude,
                     c.longitude, c.approximate""", "table")],
               size_field="active_alerts", color_field="max_severity",
               thresholds=steps([None, 1, 2, 3], ["green", "blue", "orange", "red"]),
               w=14, h=16,
               description="One marker per commune at its centroid; size = active alerts, "
                           "colour = highest severity (0 none, 1 info, 2 warning, "
                           "3 critical). " + APPROX_NOTE),
        table("Active alerts", [sql(f"""
            SELECT a.started_at AS "Started", a.severity AS "Severity", a.state AS "State",
                   a.rule_id AS "Rule", c.commune_name AS "Commune",
                   a.commune_code AS "Code", c.province_name AS "Province",
                   a.last_value AS "Value", a.acknowledged_by AS "Acknowledged by"
            FROM alerts a LEFT JOIN current_communes c USING (commune_code)
            WHERE a.state IN {ACTIVE} AND a.province_code {prov}
            ORDER BY {SEVERITY_RANK} DESC, a.started_at DESC LIMIT 200""", "table")],
              w=10, h=16, overrides=[{
                  "matcher": {"id": "byName", "options": "Severity"},
                  "properties": [{"id": "custom.cellOptions",
                                  "value": {"type": "color-background"}},
                                 {"id": "mappings", "value": [{"type": "value", "options": {
                                     "critical": {"color": "red", "index": 0},
                                     "warning": {"color": "orange", "index": 1},
                                     "info": {"color": "blue", "index": 2}}}]}]}],
              description="The newest 200 active alerts, most severe first."),
        row("Headline KPIs (selected time range)"),
        *kpi_stats,
        stat("Dossiers received", [sql(f"""
            SELECT sum(r.count) AS "Dossiers received" FROM rollup_1m r
            WHERE $__timeFilter(r.bucket) AND r.metric = 'service.received'
              AND r.province_code {prov}""", "table")],
             thresholds=steps([None], ["blue"])),
        stat("PM2.5 (province mean)", [sql(f"""
            SELECT sum(r.sum) / nullif(sum(r.count), 0) AS "PM2.5" FROM rollup_1m r
            WHERE r.bucket > $__timeTo()::timestamptz - interval '1 hour'
              AND r.bucket <= $__timeTo()::timestamptz
              AND r.metric = 'pm25' AND r.province_code {prov}""", "table")],
             unit="conµgm3", thresholds=steps(PM25_BANDS, AQI_COLORS),
             description="Mean PM2.5 over the last hour of the range, all sensors. "
                         "Colours: VN_AQI bands."),
        stat("Traffic incidents", [sql(f"""
            SELECT coalesce(sum(r.sum), 0) AS "Incidents" FROM rollup_1m r
            WHERE $__timeFilter(r.bucket) AND r.metric = 'traffic.incident'
              AND r.province_code {prov}""", "table")],
             thresholds=steps([None, 1], ["green", "orange"])),
    ], variables=[var_province(multi=True)], tags=["overview"], time_from="now-24h")


def commune() -> Json:
    c = "r.commune_code = '$commune'"
    return dashboard("ioc-commune", "Commune drill-down",
                     "Every metric of one commune: rollups, alerts and service KPIs.", [
        table("Commune", [sql("""
            SELECT commune_code AS "Code", commune_name AS "Commune",
                   commune_type AS "Type", province_name AS "Province",
                   round(area_km2::numeric, 2) AS "Area (km²)", latitude, longitude,
                   approximate AS "Approximate polygon", source AS "Boundary source"
            FROM current_communes WHERE commune_code = '$commune'""", "table")],
              w=24, h=4, description=APPROX_NOTE),
        timeseries("Metrics (window average)", [sql(f"""
            SELECT $__timeGroupAlias(r.bucket, $__interval), r.metric AS metric,
                   sum(r.sum) / nullif(sum(r.count), 0) AS value
            FROM rollup_1m r
            WHERE $__timeFilter(r.bucket) AND {c} AND r.metric IN ($metric)
            GROUP BY 1, 2 ORDER BY 1""")], w=24, h=10,
                   description="Average per interval: sum / count of the one-minute "
                               "rollups (rollup_1m) of the commune, metrics as selected."),
        timeseries("Metric maxima", [sql(f"""
            SELECT $__timeGroupAlias(r.bucket, $__interval), r.metric AS metric,
                   max(r.max) AS value
            FROM rollup_1m r
            WHERE $__timeFilter(r.bucket) AND {c} AND r.metric IN ($metric)
            GROUP BY 1, 2 ORDER BY 1""")], w=12, h=8),
        bars("Events per interval", [sql(f"""
            SELECT $__timeGroupAlias(r.bucket, $__interval), r.metric AS metric,
                   sum(r.count) AS value
            FROM rollup_1m r
            WHERE $__timeFilter(r.bucket) AND {c} AND r.metric IN ($metric)
            GROUP BY 1, 2 ORDER BY 1""")], w=12, h=8),
        table("Latest values", [sql(f"""
            SELECT DISTINCT ON (r.metric) r.metric AS "Metric", r.last AS "Last value",
                   r.last_at AS "At", r.min AS "Minute min", r.max AS "Minute max"
            FROM rollup_1m r
            WHERE $__timeFilter(r.bucket) AND {c}
            ORDER BY r.metric, r.bucket DESC""", "table")], w=12, h=9),
        table("Alerts", [sql("""
            SELECT a.started_at AS "Started", a.severity AS "Severity", a.state AS "State",
                   a.rule_id AS "Rule", a.last_value AS "Value",
                   a.resolved_at AS "Resolved"
            FROM alerts a
            WHERE a.commune_code = '$commune'
              AND (a.state IN ('pending', 'firing', 'acknowledged')
                   OR $__timeFilter(a.resolved_at))
            ORDER BY a.started_at DESC NULLS LAST LIMIT 100""", "table")], w=12, h=9),
        timeseries("Service KPIs per day", [sql("""
            SELECT (k.day::timestamp AT TIME ZONE 'Asia/Ho_Chi_Minh') AS time,
                   k.online_share, k.resolved_online_share, k.on_time_share,
                   k.paid_online_share, k.digitised_share
            FROM service_kpi_daily k
            WHERE k.commune_code = '$commune'
              AND k.day BETWEEN ($__timeFrom()::timestamptz AT TIME ZONE 'Asia/Ho_Chi_Minh')::date
                            AND ($__timeTo()::timestamptz AT TIME ZONE 'Asia/Ho_Chi_Minh')::date
            ORDER BY 1""")], w=24, h=8, unit="percentunit", minmax=(0, 1),
                   description="Daily shares from the service_kpi_daily view (days in "
                               "Vietnam time)."),
    ], variables=[var_province(), var_commune(multi=False), var_metric()],
        tags=["commune"], time_from="now-24h")


def environment() -> Json:
    aqi = ("Colour bands: VN_AQI breakpoints (Decision 1459/QĐ-TCMT): good, moderate, "
           "poor, bad, very bad, hazardous.")
    return dashboard("ioc-environment", "Environment",
                     "Air quality and flood indicators per commune.", [
        timeseries("PM2.5", [sql(avg_series("pm25"))], unit="conµgm3",
                   thresholds=steps(PM25_BANDS, AQI_COLORS),
                   threshold_style="area", fill=0,
                   description="Mean PM2.5 (µg/m³) per interval and commune. " + aqi),
        timeseries("PM10", [sql(avg_series("pm10"))], unit="conµgm3",
                   thresholds=steps(PM10_BANDS, AQI_COLORS),
                   threshold_style="area", fill=0,
                   description="Mean PM10 (µg/m³) per interval and commune. " + aqi),
        geomap("PM2.5 by commune (last hour of the range)", [sql("""
            SELECT c.commune_code, c.commune_name, c.latitude, c.longitude, c.approximate,
                   sum(r.sum) / nullif(sum(r.count), 0) AS pm25
            FROM rollup_1m r JOIN current_communes c USING (commune_code)
            WHERE r.metric = 'pm25' AND r.province_code = '$province'
              AND r.bucket > $__timeTo()::timestamptz - interval '1 hour'
              AND r.bucket <= $__timeTo()::timestamptz
            GROUP BY c.commune_code, c.commune_name, c.latitude, c.longitude,
                     c.approximate""", "table")],
               size_field="pm25", color_field="pm25",
               thresholds=steps(PM25_BANDS, AQI_COLORS), unit="conµgm3", w=12, h=12,
               description="Communes with a PM2.5 sensor, at their centroid. " + aqi + " "
                           + APPROX_NOTE),
        table("Air quality now", [sql("""
            SELECT c.commune_name AS "Commune", r.commune_code AS "Code",
                   sum(r.sum) FILTER (WHERE r.metric = 'pm25')
                     / nullif(sum(r.count) FILTER (WHERE r.metric = 'pm25'), 0) AS "PM2.5",
                   sum(r.sum) FILTER (WHERE r.metric = 'pm10')
                     / nullif(sum(r.count) FILTER (WHERE r.metric = 'pm10'), 0) AS "PM10",
                   max(r.max) FILTER (WHERE r.metric = 'pm25') AS "PM2.5 max (1 min)"
            FROM rollup_1m r JOIN current_communes c USING (commune_code)
            WHERE r.metric IN ('pm25', 'pm10') AND r.province_code = '$province'
              AND r.commune_code IN ($commune)
              AND r.bucket > $__timeTo()::timestamptz - interval '1 hour'
              AND r.bucket <= $__timeTo()::timestamptz
            GROUP BY 1, 2 ORDER BY 3 DESC NULLS LAST""", "table")], w=12, h=12,
              unit="conµgm3", thresholds=steps(PM25_BANDS, AQI_COLORS),
              overrides=[{"matcher": {"id": "byName", "options": "PM2.5"},
                          "properties": [{"id": "custom.cellOptions",
                                          "value": {"type": "color-background"}}]}],
              description="Mean over the last hour of the range. " + aqi),
        timeseries("Water level", [sql(avg_series("water_level"))], unit="lengthm",
                   description="Mean water level (m) per interval and commune."),
        bars("Rainfall", [sql(total_series("rainfall"))], unit="lengthmm",
             description="Rain (mm) summed per interval over the commune's gauges."),
        timeseries("Temperature", [sql(avg_series("temperature"))], unit="celsius"),
        timeseries("Humidity", [sql(avg_series("humidity"))], unit="humidity"),
    ], variables=[var_province(), var_commune(multi=True)], tags=["environment"])


def traffic() -> Json:
    return dashboard("ioc-traffic", "Traffic",
                     "Vehicle counts, speeds, occupancy and incidents per commune.", [
        bars("Vehicles per interval", [sql(total_series("traffic.vehicle_count"))],
             unit="short", description="Vehicles counted by every sensor of the commune."),
        timeseries("Average speed", [sql(avg_series("traffic.avg_speed_kmh"))],
                   unit="velocitykmh",
                   thresholds=steps([None, 15, 30], ["red", "orange", "green"]),
                   threshold_style="dashed"),
        timeseries("Occupancy", [sql(avg_series("traffic.occupancy"))],
                   unit="percentunit", minmax=(0, 1),
                   thresholds=steps([None, 0.5, 0.8], ["green", "orange", "red"]),
                   threshold_style="dashed"),
        bars("Incidents", [sql(total_series("traffic.incident"))], unit="short",
             description="Observations reporting an incident (traffic.incident is 0/1)."),
        stat("Incidents in range", [sql("""
            SELECT coalesce(sum(r.sum), 0) AS "Incidents" FROM rollup_1m r
            WHERE $__timeFilter(r.bucket) AND r.metric = 'traffic.incident'
              AND r.province_code = '$province' AND r.commune_code IN ($commune)""",
                                          "table")],
             w=6, h=8, thresholds=steps([None, 1], ["green", "orange"])),
        table("Segments with incidents", [sql("""
            SELECT t.segment_id AS "Segment", c.commune_name AS "Commune",
                   count(*) FILTER (WHERE t.incident IS NOT NULL) AS "Incidents",
                   avg(t.avg_speed_kmh) AS "Mean speed (km/h)",
                   avg(t.occupancy) AS "Mean occupancy", max(t.time) AS "Last seen"
            FROM traffic_observations t JOIN current_communes c USING (commune_code)
            WHERE $__timeFilter(t.time) AND t.province_code = '$province'
              AND t.commune_code IN ($commune)
            GROUP BY 1, 2 ORDER BY 3 DESC, 4 LIMIT 50""", "table")], w=18, h=8,
              description="Raw observations (traffic_observations) per road segment."),
    ], variables=[var_province(), var_commune(multi=True)], tags=["traffic"])


def services() -> Json:
    """One province's KPIs, exact per dossier (kpi_daily, docs/kpis.md), against targets."""
    gap_override = [{"matcher": {"id": "byRegexp", "options": "/gap|vs target/"},
                     "properties": [{"id": "thresholds",
                                     "value": steps([None, 0], ["red", "green"])},
                                    {"id": "custom.cellOptions",
                                     "value": {"type": "color-background"}}]}]
    cols = ",\n".join(
        f'{day_share(num, den)} AS "{k}", {day_share(num, den)} - '
        f'kpi_target(\'{k}\', \'$province\', NULL, {VN_FROM}) AS "{k} gap"'
        for k, num, den, _ in DAILY_KPIS)
    in_scope = ("k.province_code = '$province' AND k.commune_code IN ($commune) "
                f"AND k.{VN_RANGE}")
    per_kpi = [
        timeseries(f"{title} per day vs target", [sql(f"""
            SELECT (k.day::timestamp AT TIME ZONE 'Asia/Ho_Chi_Minh') AS time,
                   c.commune_name AS metric, {day_share(num, den)} AS value
            FROM kpi_daily k JOIN current_communes c USING (commune_code)
            WHERE {in_scope}
            GROUP BY 1, 2 HAVING sum({den}) > 0
            UNION ALL
            SELECT (d::date::timestamp AT TIME ZONE 'Asia/Ho_Chi_Minh'), 'target',
                   kpi_target('{k}', '$province', NULL, d::date)
            FROM generate_series({VN_FROM}::timestamp, {VN_TO}::timestamp,
                                 interval '1 day') AS d
            ORDER BY 1""")], w=12, h=8, unit="percentunit", minmax=(0, 1),
                   overrides=[{"matcher": {"id": "byName", "options": "target"},
                               "properties": [{"id": "custom.lineStyle",
                                               "value": {"fill": "dash", "dash": [10, 10]}},
                                              {"id": "color", "value": {
                                                  "mode": "fixed", "fixedColor": "red"}}]}],
                   description=f"{title}: daily share per commune, exact per dossier "
                               "(kpi_daily), and the province's target of the day "
                               "(kpi_target_values, dashed).")
        for k, num, den, title in DAILY_KPIS
    ]
    return dashboard("ioc-services", "Public-service KPIs",
                     "One province's KPIs by tier and commune, exact per dossier, against "
                     "targets (docs/kpis.md).", [
        *month_tables(gap_override),
        table("KPIs per commune over the range, against targets", [sql(f"""
            SELECT c.commune_name AS "Commune", k.commune_code AS "Code",
                   sum(k.received) AS "Received", sum(k.resolved) AS "Resolved",
                   {cols}
            FROM kpi_daily k JOIN current_communes c USING (commune_code)
            WHERE {in_scope}
            GROUP BY 1, 2 ORDER BY 1""", "table")], w=24, h=10,
              unit="percentunit", overrides=[
                  {"matcher": {"id": "byRegexp", "options": "/Received|Resolved/"},
                   "properties": [{"id": "unit", "value": "short"}]}, *gap_override],
              description="Shares over the days of the selected range (Vietnam time), all "
                          "tiers; 'gap' = share − the province's target, red when below. "
                          "Definitions: docs/kpis.md."),
        table("Targets in effect for the province", [sql("""
            SELECT t.kpi AS "KPI", t.province_code AS "Province", t.tier AS "Tier",
                   t.target AS "Target", t.valid_from AS "From", t.valid_to AS "Until",
                   k.description AS "Description"
            FROM kpi_target_values t JOIN kpi_targets k USING (kpi)
            WHERE t.province_code IN ('$province', '*')
              AND (t.valid_to IS NULL OR t.valid_to > now())
            ORDER BY 1, 2 DESC, 3, 5""", "table")], w=8, h=8,
              overrides=[{"matcher": {"id": "byName", "options": "Target"},
                          "properties": [{"id": "unit", "value": "percentunit"}]}],
              description="'*' = any province or tier; the most specific row wins "
                          "(province and tier, then province, then tier)."),
        bars("Dossiers received per day", [sql(f"""
            SELECT (k.day::timestamp AT TIME ZONE 'Asia/Ho_Chi_Minh') AS time,
                   c.commune_name AS metric, sum(k.received) AS value
            FROM kpi_daily k JOIN current_communes c USING (commune_code)
            WHERE {in_scope}
            GROUP BY 1, 2 ORDER BY 1""")], w=16, h=8),
        *per_kpi,
        bars("Dossier events by status", [sql("""
            SELECT $__timeGroupAlias(r.bucket, $__interval),
                   substr(r.metric, 9) AS metric, sum(r.count) AS value
            FROM rollup_1m r
            WHERE $__timeFilter(r.bucket) AND r.province_code = '$province'
              AND r.commune_code IN ($commune)
              AND r.metric IN ('service.received', 'service.in_progress',
                               'service.resolved', 'service.returned', 'service.paid')
            GROUP BY 1, 2 ORDER BY 1""")], w=12, h=8,
             description="Status changes (events, from rollup_1m), not dossiers."),
    ], variables=[var_province(), var_commune(multi=True)], tags=["services", "kpi"],
        time_from="now-7d", refresh="5m")


# KPIs exact per dossier (docs/kpis.md), from kpi_daily (counts per Vietnam-time day).
DAILY_KPIS = [  # (kpi id, numerator column, denominator column, title)
    ("online_share", "received_online", "received", "Submitted online"),
    ("resolved_online_share", "resolved_online", "resolved", "Resolved online"),
    ("on_time_share", "resolved_on_time", "resolved_with_due", "Resolved on time"),
    ("paid_online_share", "paid_online", "paid_fee_bearing", "Fee-bearing paid online"),
    ("digitised_share", "received_digitised", "received", "Records digitised"),
]
VN_FROM = "($__timeFrom()::timestamptz AT TIME ZONE 'Asia/Ho_Chi_Minh')::date"
VN_TO = "($__timeTo()::timestamptz AT TIME ZONE 'Asia/Ho_Chi_Minh')::date"
VN_RANGE = f"day BETWEEN {VN_FROM} AND {VN_TO}"
MONTH_NOW = "date_trunc('month', now() AT TIME ZONE 'Asia/Ho_Chi_Minh')::date"


def day_share(num: str, den: str, where: str = "") -> str:
    if where:
        return (f"sum({num}) FILTER (WHERE {where})::float8 / "
                f"nullif(sum({den}) FILTER (WHERE {where}), 0)")
    return f"sum({num})::float8 / nullif(sum({den}), 0)"


def month_vs_last(where: str, province: str) -> str:
    """This calendar month so far vs last month (Vietnam time), per KPI and tier, with
    the target of ``province`` (an SQL expression) and tier; exact per dossier."""
    this_m = f"day >= {MONTH_NOW}"
    last_m = f"day < {MONTH_NOW}"
    parts = []
    for i, (k, num, den, title) in enumerate(DAILY_KPIS):
        this_v, last_v = day_share(num, den, this_m), day_share(num, den, last_m)
        target = f"kpi_target('{k}', {province}, tier, {MONTH_NOW})"
        parts.append(f"""
            SELECT {i} AS ord, '{title}' AS "KPI", coalesce(tier, 'all') AS "Tier",
                   {this_v} AS "This month", {last_v} AS "Last month",
                   {this_v} - {last_v} AS "Change",
                   {target} AS "Target", {this_v} - {target} AS "vs target"
            FROM kpi_daily
            WHERE day >= ({MONTH_NOW} - interval '1 month')::date AND {where}
            GROUP BY ROLLUP (tier)""")
    return ("SELECT \"KPI\", \"Tier\", \"This month\", \"Last month\", \"Change\", "
            "\"Target\", \"vs target\" FROM (" + " UNION ALL ".join(parts)
            + ") m ORDER BY ord, CASE \"Tier\" WHEN 'all' THEN 0 WHEN 'province' THEN 1 "
              "WHEN 'commune' THEN 2 ELSE 3 END")


def month_tables(gap: list[Json]) -> list[Spec]:
    return [
        table("Province: this month vs last month by tier, against target", [sql(
            month_vs_last("province_code = '$province'", "'$province'"), "table")],
              w=12, h=12, unit="percentunit", overrides=gap,
              description="Calendar months in Vietnam time, exact per dossier (kpi_daily, "
                          "docs/kpis.md); target from kpi_target_values for the province "
                          "and tier. Tier 'all' is every agency together."),
        table("Selected communes: this month vs last month by tier", [sql(
            month_vs_last("commune_code IN ($commune)", "'$province'"), "table")],
              w=12, h=12, unit="percentunit", overrides=gap,
              description="The dossiers of the selected communes (the applicant's commune)."),
    ]


def kpi_national() -> Json:
    shares = ",\n".join(f"{day_share(num, den)} AS {k}" for k, num, den, _ in DAILY_KPIS)
    per_province = f"""
        WITH f AS (
            SELECT province_code, tier, {shares}
            FROM kpi_daily WHERE {VN_RANGE}
            GROUP BY GROUPING SETS ((province_code, tier), (province_code)))"""
    gap = [{"matcher": {"id": "byRegexp", "options": "/gap|vs target/"},
            "properties": [{"id": "thresholds", "value": steps([None, 0], ["red", "green"])},
                           {"id": "custom.cellOptions", "value": {"type": "color-background"}}]}]
    ranked = [
        table(f"{title}: 34 provinces ranked, by tier", [sql(f"""
            {per_province}
            SELECT rank() OVER (ORDER BY a.{k} DESC NULLS LAST) AS "Rank",
                   p.province_name AS "Province", a.{k} AS "All tiers",
                   pt.{k} AS "Province tier", ct.{k} AS "Commune tier",
                   ct.{k} - pt.{k} AS "Tier gap (commune - province)",
                   kpi_target('{k}', p.province_code, NULL, {VN_FROM}) AS "Target",
                   a.{k} - kpi_target('{k}', p.province_code, NULL, {VN_FROM}) AS "vs target"
            FROM current_provinces p
            LEFT JOIN f a ON a.province_code = p.province_code AND a.tier IS NULL
            LEFT JOIN f pt ON pt.province_code = p.province_code AND pt.tier = 'province'
            LEFT JOIN f ct ON ct.province_code = p.province_code AND ct.tier = 'commune'
            ORDER BY 1, 2""", "table")], w=12, h=12, unit="percentunit",
              overrides=[{"matcher": {"id": "byName", "options": "Rank"},
                          "properties": [{"id": "unit", "value": "short"}]}, *gap],
              description=f"{title} over the days of the selected range (default: this "
                          "month so far, Vietnam time), per province: all tiers, provincial "
                          "agencies, commune one-stop shops, the gap between them and the "
                          "province's target (kpi_target_values). Definitions: docs/kpis.md.")
        for k, _num, _den, title in DAILY_KPIS
    ]
    nation_rows = "\nUNION ALL\n".join(f"""
            SELECT {i} AS ord, '{title}' AS "KPI", {day_share(num, den)} AS "Nation",
                   {day_share(num, den, "tier = 'province'")} AS "Province tier",
                   {day_share(num, den, "tier = 'commune'")} AS "Commune tier",
                   kpi_target('{k}', NULL, NULL, {VN_FROM}) AS "Target"
            FROM kpi_daily WHERE {VN_RANGE}"""
                                       for i, (k, num, den, title) in enumerate(DAILY_KPIS))
    monthly = [
        timeseries(f"{title} per month by tier (nation) vs target", [sql(f"""
            SELECT (date_trunc('month', day::timestamp) AT TIME ZONE 'Asia/Ho_Chi_Minh')
                       AS time, tier AS metric, {day_share(num, den)} AS value
            FROM kpi_daily
            WHERE day >= (date_trunc('month', {VN_TO}::timestamp) - interval '11 months')::date
              AND day <= {VN_TO}
            GROUP BY 1, 2
            UNION ALL
            SELECT (date_trunc('month', {VN_TO}::timestamp) AT TIME ZONE 'Asia/Ho_Chi_Minh'),
                   'target', kpi_target('{k}', NULL, NULL, {VN_TO})
            ORDER BY 1""")], w=12, h=8, unit="percentunit", minmax=(0, 1),
                   points=True,
                   description=f"{title}, nationally per calendar month (Vietnam time) and "
                               "tier over the last 12 months, with the national target.")
        for k, num, den, title in DAILY_KPIS[:1] + DAILY_KPIS[2:3]
    ]
    return dashboard("ioc-kpi-national", "Public-service KPIs: national view",
                     "All 34 provinces side by side on the same KPIs, by tier, against "
                     "targets (exact per dossier, docs/kpis.md).", [
        table("Nation: KPIs against target, by tier", [sql(f"""
            SELECT "KPI", "Nation", "Province tier", "Commune tier", "Target",
                   "Nation" - "Target" AS "vs target",
                   "Commune tier" - "Province tier" AS "Tier gap"
            FROM ({nation_rows}) n ORDER BY ord""", "table")], w=24, h=7,
              unit="percentunit", overrides=gap,
              description="Over the days of the selected range (default: this month so far)."),
        *ranked,
        *monthly,
        table("Overdue dossiers open now, per agency", [sql("""
            SELECT agency AS "Agency", min(agency_name) AS "Name", min(tier) AS "Tier",
                   min(province_code) AS "Province", count(*) AS "Overdue",
                   round((extract(epoch FROM max(overdue_by)) / 86400.0)::numeric, 1)
                       AS "Oldest (days)"
            FROM overdue_dossiers
            GROUP BY agency ORDER BY 5 DESC, 1 LIMIT 50""", "table")], w=12, h=10,
              description="Dossiers with no resolved or returned event whose due_at has "
                          "passed, now (not the selected range)."),
        table("Overdue dossiers open now, per province and tier", [sql("""
            SELECT p.province_name AS "Province",
                   count(o.dossier_id) FILTER (WHERE o.tier = 'province') AS "Province tier",
                   count(o.dossier_id) FILTER (WHERE o.tier = 'commune') AS "Commune tier",
                   count(o.dossier_id) AS "All"
            FROM current_provinces p
            LEFT JOIN overdue_dossiers o ON o.province_code = p.province_code
            GROUP BY 1 ORDER BY 4 DESC, 1""", "table")], w=12, h=10),
    ], variables=[], tags=["services", "kpi"], time_from="now/M", refresh="5m")


def pipeline() -> Json:
    ri = "$__rate_interval"
    return dashboard("ioc-pipeline", "Pipeline health",
                     "The ioc processes themselves (Prometheus; names from ioccore/metrics.py).", [
        row("Ingest"),
        stat("Targets up", [prom('sum by (job) (up{job=~"ioc-.*"})', "{{job}}",
                                 instant=True)],
             w=4, h=8, thresholds=steps([None, 1], ["red", "green"])),
        timeseries("Events received by feed", [
            prom(f"sum by (feed) (rate(ioc_ingest_events_received_total[{ri}]))",
                 "{{feed}} received"),
            prom(f"sum by (feed) (rate(ioc_ingest_events_valid_total[{ri}]))",
                 "{{feed}} valid", "B")], w=10, unit="suffix: events/s"),
        timeseries("Rejected by reason", [
            prom(f"sum by (feed, reason) (rate(ioc_ingest_events_rejected_total[{ri}]))",
                 "{{feed}} {{reason}}")], w=10, unit="suffix: events/s",
                   description="Events sent to ioc.deadletter.v1, by reason code."),
        timeseries("Dead-letter share", [prom(f"""
            sum by (feed) (rate(ioc_ingest_events_rejected_total[{ri}]))
            / sum by (feed) (rate(ioc_ingest_events_received_total[{ri}]))""",
                                              "{{feed}}")],
                   w=8, unit="percentunit",
                   thresholds=steps([None, 0.05], ["green", "red"]),
                   threshold_style="dashed",
                   description="Alert IocDeadLetterRateHigh fires above 5% for 10 minutes."),
        timeseries("Geo lookups by outcome", [
            prom(f"sum by (outcome) (rate(ioc_geo_lookups_total[{ri}]))", "{{outcome}}")],
                   w=8, unit="suffix: events/s"),
        timeseries("Consumer lag", [
            prom("sum by (topic) (ioc_kafka_consumer_lag_messages)", "{{topic}}")],
                   w=8, unit="short",
                   description="Messages behind the high watermark, summed over partitions."),
        row("Latency"),
        timeseries("Occurred → stored (p50, p99)", [
            prom(f"histogram_quantile(0.5, sum by (feed, le) "
                 f"(rate(ioc_latency_occurred_to_stored_seconds_bucket[{ri}])))",
                 "p50 {{feed}}"),
            prom(f"histogram_quantile(0.99, sum by (feed, le) "
                 f"(rate(ioc_latency_occurred_to_stored_seconds_bucket[{ri}])))",
                 "p99 {{feed}}", "B")], w=8, unit="s"),
        timeseries("Occurred → processed (p50, p99)", [
            prom(f"histogram_quantile(0.5, sum by (feed, le) "
                 f"(rate(ioc_latency_occurred_to_processed_seconds_bucket[{ri}])))",
                 "p50 {{feed}}"),
            prom(f"histogram_quantile(0.99, sum by (feed, le) "
                 f"(rate(ioc_latency_occurred_to_processed_seconds_bucket[{ri}])))",
                 "p99 {{feed}}", "B")], w=8, unit="s"),
        timeseries("Occurred → alert (p50, p99)", [
            prom(f"histogram_quantile(0.5, sum by (le) "
                 f"(rate(ioc_latency_occurred_to_alert_seconds_bucket[{ri}])))", "p50"),
            prom(f"histogram_quantile(0.99, sum by (le) "
                 f"(rate(ioc_latency_occurred_to_alert_seconds_bucket[{ri}])))", "p99",
                 "B")], w=8, unit="s"),
        row("Sinks"),
        timeseries("Rows stored", [
            prom(f"sum by (feed) (rate(ioc_sink_rows_inserted_total[{ri}]))",
                 "{{feed}} inserted"),
            prom(f"sum by (feed) (rate(ioc_sink_rows_duplicate_total[{ri}]))",
                 "{{feed}} duplicate", "B"),
            prom(f"sum by (feed) (rate(ioc_stream_events_late_total[{ri}]))",
                 "{{feed}} late", "C"),
            prom(f"sum(rate(ioc_rollup_windows_upserted_total[{ri}]))",
                 "rollup windows", "D")], w=8, unit="suffix: rows/s"),
        timeseries("Sink flush time (p50, p99)", [
            prom(f"histogram_quantile(0.5, sum by (le) "
                 f"(rate(ioc_sink_flush_seconds_bucket[{ri}])))", "p50"),
            prom(f"histogram_quantile(0.99, sum by (le) "
                 f"(rate(ioc_sink_flush_seconds_bucket[{ri}])))", "p99", "B"),
            prom(f"histogram_quantile(0.5, sum by (le) "
                 f"(rate(ioc_sink_batch_rows_bucket[{ri}])))", "batch rows p50", "C")],
                   w=8, unit="s", overrides=[{
                       "matcher": {"id": "byName", "options": "batch rows p50"},
                       "properties": [{"id": "unit", "value": "short"},
                                      {"id": "custom.axisPlacement", "value": "right"}]}]),
        timeseries("Batch retries, buffer", [
            prom(f"sum by (stage, cause) (rate(ioc_stream_batch_retries_total[{ri}]))",
                 "{{stage}} {{cause}} retries/s"),
            prom("min by (dependency) (ioc_stream_dependency_up)", "{{dependency}} up", "B"),
            prom("sum by (instance) (ioc_sink_buffer_rows)", "buffer {{instance}}", "C")],
                   w=8, unit="short",
                   description="Failed batch attempts (retried whole, never acknowledged); "
                               "dependency up = 1 while the workers reach it; buffer = "
                               "rows taken from Kafka, not yet durable."),
        row("Alerts"),
        timeseries("Alerts by state", [
            prom("sum by (state) (ioc_alerts_active)", "{{state}}")], w=8, unit="short"),
        timeseries("Alerts by severity", [
            prom("sum by (severity) (ioc_alerts_active)", "{{severity}}")], w=8,
                   unit="short"),
        timeseries("Notifications", [
            prom(f"sum by (receiver) (rate(ioc_alerts_outbox_delivered_total[{ri}]))",
                 "{{receiver}} delivered"),
            prom(f"sum by (receiver) (rate(ioc_alerts_outbox_failures_total[{ri}]))",
                 "{{receiver}} failed", "B"),
            prom("sum by (receiver) (ioc_alerts_outbox_pending)", "{{receiver}} pending",
                 "C")], w=8, unit="short"),
        timeseries("Alert transitions", [
            prom(f"sum by (to_state, severity) (rate(ioc_alerts_transitions_total[{ri}]))",
                 "{{to_state}} {{severity}}")], w=12, unit="ops"),
        timeseries("API requests", [
            prom(f"sum by (route, status) (rate(ioc_api_requests_total[{ri}]))",
                 "{{route}} {{status}}")], w=12, unit="reqps"),
        table("Active alerts in the database", [sql("""
            SELECT state AS "State", severity AS "Severity", count(*) AS "Alerts"
            FROM alerts WHERE state IN ('pending', 'firing', 'acknowledged')
            GROUP BY 1, 2 ORDER BY 1, 2""", "table")], w=8, h=7,
              description="From the alerts table, to compare with ioc_alerts_active."),
        table("Freshest data per feed", [sql("""
            SELECT 'sensor' AS "Feed", max(time) AS "Newest event",
                   max(stored_at) AS "Newest row" FROM sensor_readings
            WHERE $__timeFilter(time)
            UNION ALL
            SELECT 'traffic', max(time), max(stored_at) FROM traffic_observations
            WHERE $__timeFilter(time)
            UNION ALL
            SELECT 'service', max(time), max(stored_at) FROM service_events
            WHERE $__timeFilter(time)""", "table")], w=16, h=7),
    ], variables=[], tags=["pipeline"], time_from="now-1h", refresh="30s")


INCIDENT_RANGE = "f.opened_at >= $__timeFrom() AND f.opened_at < $__timeTo()"
RESPONSE_KPIS = """count(*) AS "Responses",
                   percentile_cont(0.5) WITHIN GROUP (ORDER BY f.tta_s) / 60 AS "TTA median (min)",
                   percentile_cont(0.9) WITHIN GROUP (ORDER BY f.tta_s) / 60 AS "TTA p90 (min)",
                   percentile_cont(0.5) WITHIN GROUP (ORDER BY f.ttr_s) / 60 AS "TTR median (min)",
                   percentile_cont(0.9) WITHIN GROUP (ORDER BY f.ttr_s) / 60 AS "TTR p90 (min)",
                   avg(f.ack_in_sla::int)::float8 AS "Ack within SLA",
                   avg(f.resolve_in_sla::int)::float8 AS "Resolve within SLA\""""


def incidents() -> Json:
    """Response KPIs (docs/incidents.md): one fact per response in
    incident_response_facts; incident_kpis() gives the same figures per period."""
    share = steps([None, 0.8, 0.95], ["red", "orange", "green"])
    return dashboard("ioc-incidents", "Incident response",
                     "How fast departments acknowledge and resolve incidents, against "
                     "their SLAs, per department and province (definitions: "
                     "docs/incidents.md). Openings in the selected range; 'now' panels "
                     "ignore the range.", [
        stat("Incidents active now", [sql("""
            SELECT count(*) AS "Active" FROM incidents
            WHERE state IN ('open', 'acknowledged', 'in_progress') AND merged_into IS NULL""",
                                          "table")]),
        stat("Past a deadline now", [sql("""
            SELECT count(*) AS "Overdue" FROM incidents_overdue""", "table")],
             thresholds=steps([None, 1], ["green", "red"])),
        stat("Acknowledged within SLA", [sql(f"""
            SELECT avg(f.ack_in_sla::int)::float8 AS "Ack within SLA"
            FROM incident_response_facts f WHERE {INCIDENT_RANGE}""", "table")],
             unit="percentunit", thresholds=share),
        stat("Resolved within SLA", [sql(f"""
            SELECT avg(f.resolve_in_sla::int)::float8 AS "Resolve within SLA"
            FROM incident_response_facts f WHERE {INCIDENT_RANGE}""", "table")],
             unit="percentunit", thresholds=share),
        stat("Responses opened", [sql(f"""
            SELECT count(*) AS "Responses" FROM incident_response_facts f
            WHERE {INCIDENT_RANGE}""", "table")]),
        stat("Reopened", [sql(f"""
            SELECT count(*) FILTER (WHERE f.cycle > 1) AS "Reopenings"
            FROM incident_response_facts f WHERE {INCIDENT_RANGE}""", "table")]),
        timeseries("Time to acknowledge per Vietnam day (median, minutes) by department", [
            sql(f"""
            SELECT date_trunc('day', f.opened_at AT TIME ZONE 'Asia/Ho_Chi_Minh')
                       AT TIME ZONE 'Asia/Ho_Chi_Minh' AS time,
                   f.department AS metric,
                   percentile_cont(0.5) WITHIN GROUP (ORDER BY f.tta_s) / 60 AS value
            FROM incident_response_facts f WHERE {INCIDENT_RANGE} AND f.tta_s IS NOT NULL
            GROUP BY 1, 2 ORDER BY 1""")], unit="m",
                   bars_unstacked=True,
                   description="Median of acknowledged_at - opened_at of the responses "
                               "opened that day (Asia/Ho_Chi_Minh)."),
        timeseries("Time to resolve per Vietnam day (p90, minutes) by department", [sql(f"""
            SELECT date_trunc('day', f.opened_at AT TIME ZONE 'Asia/Ho_Chi_Minh')
                       AT TIME ZONE 'Asia/Ho_Chi_Minh' AS time,
                   f.department AS metric,
                   percentile_cont(0.9) WITHIN GROUP (ORDER BY f.ttr_s) / 60 AS value
            FROM incident_response_facts f WHERE {INCIDENT_RANGE} AND f.ttr_s IS NOT NULL
            GROUP BY 1, 2 ORDER BY 1""")], unit="m",
                   bars_unstacked=True,
                   description="90th percentile of resolved_at - opened_at of the responses "
                               "opened that day."),
        table("Per department and province (openings in the range)", [sql(f"""
            SELECT f.department AS "Department", f.province_code AS "Province",
                   {RESPONSE_KPIS}
            FROM incident_response_facts f WHERE {INCIDENT_RANGE}
            GROUP BY 1, 2 ORDER BY 1, 2""", "table")], w=24, h=9,
              overrides=[{"matcher": {"id": "byRegexp", "options": "/within SLA/"},
                          "properties": [{"id": "unit", "value": "percentunit"}]}]),
        table("Per department and ISO week (Vietnam time)", [sql("""
            SELECT k.bucket AS "Week", k.department AS "Department",
                   sum(k.responses) AS "Responses",
                   max(k.tta_median_s) / 60 AS "TTA median (min, worst province)",
                   max(k.ttr_p90_s) / 60 AS "TTR p90 (min, worst province)",
                   min(k.ack_within_sla) AS "Ack within SLA (worst province)",
                   min(k.resolve_within_sla) AS "Resolve within SLA (worst province)"
            FROM incident_kpis('week', $__timeFrom(), $__timeTo()) k
            GROUP BY 1, 2 ORDER BY 1 DESC, 2""", "table")], w=12, h=9,
              description="incident_kpis(period, since, until): the API's figures "
                          "(GET /v1/incidents/kpis?period=week)."),
        table("Past a deadline now", [sql("""
            SELECT o.id AS "Incident", o.department AS "Department",
                   o.province_code AS "Province", o.severity AS "Severity",
                   o.state AS "State", o.deadline AS "Missed", o.due_at AS "Due",
                   o.title AS "Title"
            FROM incidents_overdue o ORDER BY o.due_at LIMIT 100""", "table")], w=12, h=9),
    ], variables=[], tags=["incidents"], time_from="now-30d", refresh="1m")


# ---------------------------------------------------------------- scorecards
def var_kpi() -> sdk_dash.CustomVariable:
    ids = ",".join(k for k, *_ in DAILY_KPIS)
    return (sdk_dash.CustomVariable("kpi").label("KPI").values(ids).multi(False)
            .include_all(False).allow_custom_value(False)
            .current(dm.VariableOption(text="online_share", value="online_share",
                                       selected=True)))


def kpi_case(part: int) -> str:
    """The selected KPI's numerator (``part`` 1) or denominator (2) column."""
    whens = " ".join(f"WHEN '{d[0]}' THEN {d[part]}" for d in DAILY_KPIS)
    return f"CASE '$kpi' {whens} END"


def scorecard_sql(level: str, unit: str, names: str, where: str, province: str,
                  tier: str = "NULL", source: str = "kpi_daily") -> str:
    """Units of ``level`` for the selected KPI over the range: value, own target
    (kpi_unit_target), status and competition rank (units without a denominator: no
    rank, listed last; docs/kpis.md "Scorecards")."""
    return f"""
        WITH c AS (
            SELECT {unit} AS code, min(province_code) AS province_code, min(tier) AS tier,
                   sum({kpi_case(1)})::bigint AS num, sum({kpi_case(2)})::bigint AS den
            FROM {source}
            WHERE {VN_RANGE} AND {where} AND {unit} <> 'unassigned'
            GROUP BY 1),
        u AS (SELECT c.*, n.name, c.num::float8 / nullif(c.den, 0) AS value,
                     kpi_unit_target('$kpi', '{level}', c.code, {province}, {tier},
                                     {VN_FROM}) AS target
              FROM c LEFT JOIN ({names}) n ON n.code = c.code)
        SELECT CASE WHEN den > 0 THEN rank() OVER (ORDER BY value DESC NULLS LAST) END
                   AS "Rank",
               code AS "Code", name AS "Name", num AS "Numerator", den AS "Denominator",
               value AS "Value", target AS "Target", value - target AS "vs target",
               CASE WHEN den = 0 THEN 'no data' WHEN target IS NULL THEN 'no target'
                    WHEN value >= target THEN 'met' ELSE 'below' END AS "Status"
        FROM u ORDER BY 1 NULLS LAST, 2"""


def scorecards() -> Json:
    gap = [{"matcher": {"id": "byName", "options": "vs target"},
            "properties": [{"id": "thresholds", "value": steps([None, 0], ["red", "green"])},
                           {"id": "custom.cellOptions", "value": {"type": "color-background"}}]},
           *[{"matcher": {"id": "byName", "options": n},
              "properties": [{"id": "unit", "value": "short"}]}
             for n in ("Rank", "Numerator", "Denominator")]]
    note = ("Over the days of the selected range (Vietnam time), exact per dossier "
            "(docs/kpis.md). Target: the unit's own (kpi_unit_targets), else its "
            "province's (and tier's, for an agency). Ties share a rank; a unit with no "
            "denominator has no rank. The API (/v1/scorecards) ranks on exact fractions.")
    return dashboard("ioc-scorecards", "Scorecards: units against their targets",
                     "For leaders: each commune and agency of a province, and each "
                     "province of the nation, on one KPI against its own target, ranked "
                     "among its peers.", [
        row("Communes of the province"),
        table("Communes: $kpi against target, ranked", [sql(scorecard_sql(
            "commune", "commune_code",
            "SELECT commune_code AS code, commune_name AS name FROM current_communes",
            "province_code = '$province'", "'$province'"), "table")],
              w=24, h=12, unit="percentunit", overrides=gap, description=note),
        row("Agencies of the province"),
        table("Agencies: $kpi against target, ranked", [sql(scorecard_sql(
            "agency", "agency",
            "SELECT DISTINCT ON (code) code, name FROM agencies ORDER BY code, "
            "valid_from DESC", "province_code = '$province'", "'$province'",
            tier="c.tier"), "table")],
              w=24, h=12, unit="percentunit", overrides=gap, description=note),
        row("Provinces of the nation"),
        table("Provinces: $kpi against target, ranked", [sql(scorecard_sql(
            "province", "province_code",
            "SELECT province_code AS code, province_name AS name FROM current_provinces",
            "true", "c.code"), "table")],
              w=24, h=12, unit="percentunit", overrides=gap, description=note),
    ], variables=[var_province(), var_kpi()], tags=["kpi", "scorecards"],
                     time_from="now/M", refresh="15m")


# ---------------------------------------------------------------- national federation
FRESH_S = 600  # a province silent for longer is shown stale (docs/federation.md)


def federation() -> Json:
    shares = ",\n".join(f"{day_share(num, den)} AS {k}" for k, num, den, _ in DAILY_KPIS)
    fresh = steps([None, 120, FRESH_S], ["green", "orange", "red"])
    return dashboard("ioc-federation", "National: provinces' federation",
                     "At the national ioc: how fresh each province's published summaries "
                     "are (fed_origins), the KPIs from what they published (fed_kpi_daily) "
                     "and their alert summaries (fed_snapshots). docs/federation.md.", [
        stat("Provinces reporting (last 10 min)", [sql(f"""
            SELECT count(*) FILTER (WHERE last_as_of > now() - interval '{FRESH_S} seconds')
                   AS "reporting"
            FROM fed_origins""", "table")], w=6, h=5),
        stat("Oldest province summary (s)", [sql("""
            SELECT coalesce(extract(epoch FROM now() - min(last_as_of)), 0)::float8
                   AS "seconds" FROM fed_origins""", "table")], w=6, h=5, unit="s",
             thresholds=fresh),
        stat("Alerts firing (all provinces)", [sql("""
            SELECT coalesce(sum((a->>'count')::bigint), 0) AS "firing"
            FROM fed_snapshots s, jsonb_array_elements(s.body->'alerts') a
            WHERE s.kind = 'alert_summary' AND a->>'state' = 'firing'""", "table")],
             w=6, h=5),
        stat("Records received", [sql(
            'SELECT coalesce(sum(records), 0) AS "records" FROM fed_origins', "table")],
             w=6, h=5),
        table("Freshness per province", [sql("""
            SELECT o.origin AS "Province code", p.province_name AS "Province",
                   o.last_as_of AS "Province clock (last record)",
                   extract(epoch FROM now() - o.last_as_of)::float8 AS "Age (s)",
                   o.last_stored AS "Stored at", o.records AS "Records"
            FROM fed_origins o LEFT JOIN current_provinces p ON p.province_code = o.origin
            ORDER BY 4 DESC""", "table")], w=12, h=10,
              overrides=[{"matcher": {"id": "byName", "options": "Age (s)"},
                          "properties": [{"id": "unit", "value": "s"},
                                         {"id": "thresholds", "value": fresh},
                                         {"id": "custom.cellOptions",
                                          "value": {"type": "color-background"}}]}],
              description="A province whose newest record is older than 10 minutes is "
                          "offline or its MirrorMaker flow is stopped; its figures below "
                          "are as of that time."),
        table("Alert summaries per province", [sql("""
            SELECT s.origin AS "Province code", p.province_name AS "Province",
                   coalesce(sum((a->>'count')::bigint) FILTER (
                       WHERE a->>'state' = 'firing' AND a->>'severity' = 'critical'), 0)
                       AS "Critical firing",
                   coalesce(sum((a->>'count')::bigint) FILTER (
                       WHERE a->>'state' = 'firing'), 0) AS "Firing",
                   coalesce(sum((a->>'count')::bigint) FILTER (
                       WHERE a->>'state' = 'acknowledged'), 0) AS "Acknowledged",
                   max((s.body->>'incidents_open')::bigint) AS "Incidents open",
                   max((s.body->>'incidents_open_past_sla')::bigint) AS "Past SLA",
                   max(s.as_of) AS "As of"
            FROM fed_snapshots s
            LEFT JOIN LATERAL jsonb_array_elements(s.body->'alerts') a ON true
            LEFT JOIN current_provinces p ON p.province_code = s.origin
            WHERE s.kind = 'alert_summary'
            GROUP BY 1, 2 ORDER BY 3 DESC, 4 DESC, 1""", "table")], w=12, h=10),
        table("KPIs per province (published), ranked by online share", [sql(f"""
            WITH f AS (SELECT province_code, {shares}
                       FROM fed_kpi_daily WHERE {VN_RANGE} GROUP BY province_code)
            SELECT rank() OVER (ORDER BY f.online_share DESC NULLS LAST) AS "Rank",
                   f.province_code AS "Code", p.province_name AS "Province",
                   {", ".join(f'f.{k} AS "{t}"' for k, _n, _d, t in DAILY_KPIS)},
                   kpi_target('online_share', f.province_code, NULL, {VN_FROM})
                       AS "Online target"
            FROM f LEFT JOIN current_provinces p ON p.province_code = f.province_code
            ORDER BY 1, 2""", "table")], w=24, h=12, unit="percentunit",
              overrides=[{"matcher": {"id": "byName", "options": "Rank"},
                          "properties": [{"id": "unit", "value": "short"}]}],
              description="What the provinces published (fed_kpi_daily, the same columns "
                          "as a province's kpi_daily), over the days of the range."),
        timeseries("Dossiers received per day, per province (published)", [sql(f"""
            SELECT day::timestamp AT TIME ZONE 'Asia/Ho_Chi_Minh' AS time,
                   province_code AS metric, sum(received)::float8 AS value
            FROM fed_kpi_daily WHERE {VN_RANGE}
            GROUP BY 1, 2 ORDER BY 1""", "time_series")], w=24, h=8),
    ], variables=[], tags=["federation", "kpi"], time_from="now/M", refresh="1m")

# ---------------------------------------------------------------- citizen reports
FB_RANGE = ("s.received_at >= $__timeFrom() AND s.received_at < $__timeTo() "
            "AND s.province_code = '$province'")
FB_RESOLVE_S = "extract(epoch FROM s.closed_at - s.received_at)"
FB_COLUMNS = {  # docs/kpis.md, "Citizen reports" (ioccore/feedback/kpis.py)
    "Received": "count(*)",
    "Resolved within SLA": (
        "(count(*) FILTER (WHERE s.status = 'resolved' AND s.closed_at <= s.due_at))::float8"
        " / nullif(count(*) FILTER (WHERE s.status = 'resolved'), 0)"),
    "Median hours to resolve": (
        f"percentile_cont(0.5) WITHIN GROUP (ORDER BY {FB_RESOLVE_S})"
        " FILTER (WHERE s.status = 'resolved') / 3600"),
    "p90 hours to resolve": (
        f"percentile_cont(0.9) WITHIN GROUP (ORDER BY {FB_RESOLVE_S})"
        " FILTER (WHERE s.status = 'resolved') / 3600"),
    "Overdue now": ("count(*) FILTER (WHERE s.status NOT IN ('resolved', 'rejected')"
                    " AND s.due_at < now())"),
    "Satisfaction (1-5)": "avg(s.rating)::float8",
}
FB_KPIS = ", ".join(f'{expr} AS "{name}"' for name, expr in FB_COLUMNS.items())
FB_TABLE_UNITS = [
    {"matcher": {"id": "byName", "options": "Resolved within SLA"},
     "properties": [{"id": "unit", "value": "percentunit"}]},
    {"matcher": {"id": "byRegexp", "options": "/hours to resolve/"},
     "properties": [{"id": "unit", "value": "h"}, {"id": "decimals", "value": 1}]},
    {"matcher": {"id": "byName", "options": "Satisfaction (1-5)"},
     "properties": [{"id": "decimals", "value": 2}]}]


def fb_stat(title: str, column: str, **kw: Any) -> Spec:
    """One KPI of the reports received in the range in the province (FB_COLUMNS)."""
    return stat(title, [sql(f"""
        SELECT {FB_COLUMNS[column]} AS "{column}" FROM feedback_state s
        WHERE {FB_RANGE}""", "table")], **kw)


def feedback() -> Json:
    """Citizen reports (docs/feedback.md): the response KPIs of docs/kpis.md ("Citizen
    reports") from feedback_state, reports by category from rollup_1m, surge alerts."""
    share = steps([None, 0.8, 0.95], ["red", "orange", "green"])
    return dashboard("ioc-feedback", "Citizen reports",
                     "Reports citizens sent (Open311), how departments answer them against "
                     "each category's SLA, and surges (definitions: docs/kpis.md, "
                     "\"Citizen reports\"). KPIs count the reports received in the selected "
                     "range; 'now' panels ignore it.", [
        fb_stat("Reports received", "Received", color_mode="none"),
        fb_stat("Resolved within SLA", "Resolved within SLA", unit="percentunit",
                thresholds=share),
        fb_stat("Median time to resolve", "Median hours to resolve", unit="h",
                color_mode="none"),
        fb_stat("p90 time to resolve", "p90 hours to resolve", unit="h", color_mode="none"),
        stat("Overdue now", [sql("""
            SELECT count(*) AS "Overdue now" FROM feedback_state s
            WHERE s.province_code = '$province' AND s.status NOT IN ('resolved', 'rejected')
              AND s.due_at < now()""", "table")],
             thresholds=steps([None, 1], ["green", "red"]),
             description="Reports of any age neither resolved nor rejected whose due time "
                         "(receipt + the category's SLA) has passed."),
        fb_stat("Satisfaction (1-5)", "Satisfaction (1-5)",
                thresholds=steps([None, 3, 4], ["red", "orange", "green"]),
                description="Mean of the latest rating of each rated report."),
        bars("Reports received by category", [sql("""
            SELECT $__timeGroupAlias(r.bucket, $__interval),
                   substr(r.metric, length('feedback.received.') + 1) AS metric,
                   sum(r.count)::float8 AS value
            FROM rollup_1m r
            WHERE $__timeFilter(r.bucket) AND r.metric LIKE 'feedback.received.%'
              AND r.province_code = '$province'
            GROUP BY 1, 2 ORDER BY 1""")], w=16,
             description="feedback.received.<category> in rollup_1m: what surge rules "
                         "count (config/rules/feedback.yaml)."),
        table("Surge alerts active now", [sql("""
            SELECT a.rule_id AS "Rule", c.commune_name AS "Commune",
                   a.labels ->> 'department' AS "Department", a.state AS "State",
                   a.last_value AS "Reports in window", a.firing_at AS "Since"
            FROM alerts a JOIN current_communes c USING (commune_code)
            WHERE a.labels ->> 'feed' = 'feedback' AND a.province_code = '$province'
              AND a.state IN ('pending', 'firing', 'acknowledged')
            ORDER BY a.firing_at DESC LIMIT 50""", "table")], w=8,
              description="Alerts of the surge rules (feed feedback), per commune."),
        table("Per department and province", [sql(f"""
            SELECT s.department AS "Department", s.province_code AS "Province", {FB_KPIS}
            FROM feedback_state s WHERE {FB_RANGE}
            GROUP BY 1, 2 ORDER BY 1, 2""", "table")], w=12, h=9,
              overrides=FB_TABLE_UNITS),
        table("Per category", [sql(f"""
            SELECT s.service_code AS "Category", {FB_KPIS}
            FROM feedback_state s WHERE {FB_RANGE}
            GROUP BY 1 ORDER BY 2 DESC""", "table")], w=12, h=9, overrides=FB_TABLE_UNITS),
        table("Overdue now, oldest due first", [sql("""
            SELECT s.report_id AS "Report", s.service_code AS "Category",
                   s.department AS "Department", c.commune_name AS "Commune",
                   s.status AS "Status", s.received_at AS "Received", s.due_at AS "Due"
            FROM feedback_state s LEFT JOIN current_communes c USING (commune_code)
            WHERE s.province_code = '$province' AND s.status NOT IN ('resolved', 'rejected')
              AND s.due_at < now()
            ORDER BY s.due_at LIMIT 100""", "table")], w=24, h=8),
    ], variables=[var_province()], tags=["feedback", "kpi"], time_from="now-7d",
                     refresh="1m")


BUILDERS = [overview, commune, environment, traffic, services, kpi_national, pipeline,
            incidents, scorecards, federation, feedback]


# ---------------------------------------------------------------- helpers for tests
def build_all() -> dict[str, Json]:
    """File name -> dashboard model."""
    return {f"{d['uid']}.json": d for d in (b() for b in BUILDERS)}


def render(model: Json) -> str:
    return json.dumps(model, indent=2, ensure_ascii=False, sort_keys=False) + "\n"


def iter_panels(model: Json) -> Iterator[Json]:
    """Every panel, rows' nested panels included, rows themselves excluded."""
    for p in model["panels"]:
        if p["type"] == "row":
            yield from p.get("panels", [])
        else:
            yield p


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--check", action="store_true", help="fail when a file is stale")
    args = ap.parse_args(argv)
    stale = []
    for name, model in build_all().items():
        path = OUT / name
        text = render(model)
        if args.check:
            if not path.exists() or path.read_text(encoding="utf-8") != text:
                stale.append(name)
        else:
            path.write_text(text, encoding="utf-8")
            print(f"wrote {path.relative_to(ROOT)}")
    if stale:
        print("stale (run tools/iocdev/dashboards.py):", *stale, file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
