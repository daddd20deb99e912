"""The demo report: one self-contained HTML page (images inline as base64 PNG) and a
PNG of the commune map.

:func:`build_report` takes plain data (:class:`ReportData`) and writes files; it does
not touch the database (:func:`collect` does, through :mod:`iocdev.demo.queries`), so it
is tested on small synthetic data. Charts are drawn with matplotlib's object API
(``Figure`` + Agg), never pyplot, so nothing global changes.
"""

from __future__ import annotations

import base64
import html
import io
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from iocdev.demo import queries
from iocdev.demo.queries import KPIS, AlertRow, CommuneKpi, Point, TrafficHour, Window

SEVERITY_COLOURS = {"none": "#dfe8d8", "info": "#5b8fd6", "warning": "#f2a33a",
                    "critical": "#d6322b"}
KPI_LABELS = {"online_share": "Submitted online", "on_time_share": "Resolved on time",
              "paid_online_share": "Fees paid online", "digitised_share": "Records digitised"}
APPROXIMATE_NOTE = ("Commune polygons are approximate: Voronoi cells of the official commune "
                    "centroids, clipped to the province. They are not official boundaries.")


@dataclass(frozen=True, slots=True)
class CommuneShape:
    code: str
    name: str
    geometry: Any  # shapely geometry, EPSG:4326
    approximate: bool


@dataclass(frozen=True, slots=True)
class Named:
    """A labelled time series."""

    label: str
    points: list[Point]


@dataclass
class ReportData:
    """Everything the report shows; built by :func:`collect` or by hand in tests."""

    province: str
    province_name: str
    sim_start: datetime
    sim_end: datetime
    generated_at: datetime
    facts: dict[str, str] = field(default_factory=dict)
    shapes: list[CommuneShape] = field(default_factory=list)
    alerts: list[AlertRow] = field(default_factory=list)
    pm25_average: list[Point] = field(default_factory=list)
    pm25_worst: list[Named] = field(default_factory=list)
    water_average: list[Point] = field(default_factory=list)
    water_worst: list[Named] = field(default_factory=list)
    traffic: list[TrafficHour] = field(default_factory=list)
    kpis: list[CommuneKpi] = field(default_factory=list)
    kpi_targets: dict[str, float] = field(default_factory=dict)
    province_kpis: dict[str, float | None] = field(default_factory=dict)
    tier_kpis: dict[str, dict[str, float | None]] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)

    def worst_severity(self) -> dict[str, str]:
        """Worst active alert severity per commune code."""
        worst: dict[str, str] = {}
        for a in self.alerts:
            if a.commune_code is None:
                continue
            old = worst.get(a.commune_code)
            if old is None or queries.SEVERITY_RANK[a.severity] > queries.SEVERITY_RANK[old]:
                worst[a.commune_code] = a.severity
        return worst

    @property
    def approximate(self) -> bool:
        return any(s.approximate for s in self.shapes)


@dataclass(frozen=True, slots=True)
class ReportFiles:
    html: Path
    map_png: Path


# ------------------------------------------------------------------ collect
def collect(conn: queries.Conn, w: Window, *, facts: dict[str, str],
            problems: Sequence[str] = ()) -> ReportData:
    """Read everything the report shows for this run."""
    from datetime import UTC

    from shapely import wkb

    shapes = [CommuneShape(s.code, s.name, wkb.loads(s.wkb), s.approximate)
              for s in queries.commune_shapes(conn, w.province)]
    return ReportData(
        province=w.province,
        province_name=queries.province_name(conn, w.province) or w.province,
        sim_start=w.sim_start, sim_end=w.sim_end, generated_at=datetime.now(UTC),
        facts=dict(facts), shapes=shapes, alerts=queries.active_alerts(conn, w),
        pm25_average=queries.metric_average(conn, w, "pm25"),
        pm25_worst=[Named(f"{name} ({code})", pts)
                    for code, name, pts in queries.worst_communes(conn, w, "pm25")],
        water_average=queries.metric_average(conn, w, "water_level"),
        water_worst=[Named(f"{name} ({code})", pts)
                     for code, name, pts in queries.worst_communes(conn, w, "water_level")],
        traffic=queries.traffic_by_hour(conn, w),
        kpis=queries.commune_kpis(conn, w),
        kpi_targets=queries.kpi_targets(conn),
        province_kpis=queries.province_kpis(conn, w),
        tier_kpis=queries.tier_kpis(conn, w),
        problems=list(problems),
    )


# ------------------------------------------------------------------ charts
def _figure(width: float, height: float) -> Any:
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height), dpi=100, layout="constrained")


def _png(fig: Any) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    return buf.getvalue()


def _empty(ax: Any, text: str) -> None:
    ax.text(0.5, 0.5, text, ha="center", va="center", transform=ax.transAxes, color="#777")
    ax.set_xticks([])
    ax.set_yticks([])


def map_png(data: ReportData) -> bytes:
    """The commune map coloured by the worst active alert severity."""
    import geopandas as gpd
    from matplotlib.patches import Patch

    fig = _figure(9, 9)
    ax = fig.add_subplot()
    worst = data.worst_severity()
    if data.shapes:
        frame = gpd.GeoDataFrame(
            {"code": [s.code for s in data.shapes],
             "colour": [SEVERITY_COLOURS[worst.get(s.code, "none")] for s in data.shapes]},
            geometry=[s.geometry for s in data.shapes], crs="EPSG:4326")
        frame.plot(ax=ax, color=frame["colour"], edgecolor="#555", linewidth=0.3)
        ax.set_aspect("equal")
        ax.set_xlabel("longitude")
        ax.set_ylabel("latitude")
    else:
        _empty(ax, "no commune boundaries loaded")
    counts = {sev: sum(1 for v in worst.values() if v == sev) for sev in SEVERITY_COLOURS}
    counts["none"] = len(data.shapes) - sum(counts[s] for s in ("info", "warning", "critical"))
    handles = [Patch(facecolor=colour, edgecolor="#555",
                     label=f"{'no active alert' if sev == 'none' else sev} ({counts[sev]})")
               for sev, colour in SEVERITY_COLOURS.items()]
    ax.legend(handles=handles, loc="lower left", title="worst active alert", fontsize=8)
    ax.set_title(f"{data.province_name}: communes by worst active alert severity")
    if data.approximate:
        ax.annotate("Approximate polygons (Voronoi cells of commune centroids), "
                    "not official boundaries", xy=(0.5, 1.0), xycoords="axes fraction",
                    xytext=(0, -12), textcoords="offset points", ha="center", va="top",
                    fontsize=8, color="#a33")
    return _png(fig)


def _series_png(title: str, unit: str, average: list[Point], worst: list[Named]) -> bytes:
    fig = _figure(10, 4)
    ax = fig.add_subplot()
    if not average and not worst:
        _empty(ax, "no data")
    for series in worst:
        if series.points:
            ax.plot([p[0] for p in series.points], [p[1] for p in series.points],
                    linewidth=0.9, alpha=0.8, label=series.label)
    if average:
        ax.plot([p[0] for p in average], [p[1] for p in average], color="black",
                linewidth=2.2, label="province average")
    ax.set_title(title)
    ax.set_ylabel(unit)
    ax.set_xlabel("event time (UTC)")
    ax.grid(alpha=0.3)
    if average or worst:
        ax.legend(fontsize=7, loc="upper left")
    return _png(fig)


def traffic_png(hours: list[TrafficHour]) -> bytes:
    fig = _figure(10, 4)
    ax = fig.add_subplot()
    if not hours:
        _empty(ax, "no traffic data")
        return _png(fig)
    labels = [h.hour.strftime("%d/%m %H:00") for h in hours]
    xs = list(range(len(hours)))
    ax.bar(xs, [h.vehicles for h in hours], color="#7aa6c2", label="vehicles counted")
    ax.set_ylabel("vehicles per hour (all cameras)")
    ax.set_xticks(xs, labels, rotation=45 if len(xs) > 6 else 0, fontsize=8)
    ax2 = ax.twinx()
    ax2.plot(xs, [h.avg_speed_kmh if h.avg_speed_kmh is not None else float("nan")
                  for h in hours], color="#c0392b", marker="o", label="average speed")
    ax2.set_ylabel("km/h")
    ax.set_title("Traffic by hour (local time): vehicles and average speed")
    lines = ax.get_legend_handles_labels()
    lines2 = ax2.get_legend_handles_labels()
    ax.legend(lines[0] + lines2[0], lines[1] + lines2[1], fontsize=8, loc="upper left")
    return _png(fig)


def kpi_png(kpis: list[CommuneKpi], targets: dict[str, float]) -> bytes:
    fig = _figure(14, 10)
    axes = fig.subplots(len(KPIS), 1, sharex=True)
    xs = list(range(len(kpis)))
    for ax, kpi in zip(axes, KPIS, strict=True):
        values = [k.shares.get(kpi) for k in kpis]
        target = targets.get(kpi)
        shown = [100.0 * v if v is not None else 0.0 for v in values]
        colours = ["#bbbbbb" if v is None else
                   ("#3b8b4b" if target is None or v >= target else "#d6322b") for v in values]
        ax.bar(xs, shown, color=colours, width=0.85)
        below = sum(1 for v in values if v is not None and target is not None and v < target)
        title = KPI_LABELS[kpi]
        if target is not None:
            ax.axhline(100.0 * target, color="black", linestyle="--", linewidth=1)
            title += f" (target {100.0 * target:.0f}%: {below} of {len(kpis)} communes below)"
        ax.set_title(title, fontsize=10, loc="left")
        ax.set_ylim(0, 105)
        ax.set_ylabel("%")
        if not kpis:
            _empty(ax, "no service events")
    if kpis:
        axes[-1].set_xticks(xs, [k.name for k in kpis], rotation=90, fontsize=5)
    fig.suptitle("Public-service KPIs per commune against kpi_targets (red: below target)")
    return _png(fig)


# ------------------------------------------------------------------ html
def _img(png: bytes, alt: str) -> str:
    return (f'<img alt="{html.escape(alt)}" src="data:image/png;base64,'
            f'{base64.b64encode(png).decode()}">')


def _pct(v: float | None) -> str:
    return "–" if v is None else f"{100.0 * v:.1f}%"


_CSS = """
body { font-family: system-ui, sans-serif; margin: 2em auto; max-width: 1200px; color: #222; }
h1 { margin-bottom: 0.2em; } img { max-width: 100%; border: 1px solid #ddd; }
table { border-collapse: collapse; margin: 0.5em 0 1.5em; font-size: 0.9em; }
td, th { border: 1px solid #ccc; padding: 0.25em 0.6em; text-align: left; }
.note { background: #fff4e5; border-left: 4px solid #f2a33a; padding: 0.5em 1em; }
.problem { background: #fdecea; border-left: 4px solid #d6322b; padding: 0.5em 1em; }
.sev-critical { color: #d6322b; font-weight: bold; } .sev-warning { color: #c77700; }
"""


def _tier_table(data: ReportData) -> list[str]:
    """KPIs by agency tier and the gap between them (commune minus province)."""
    if not data.tier_kpis:
        return []
    out = ["<h2>KPIs by tier: provincial agencies vs commune one-stop shops</h2>",
           "<table><tr><th>tier</th>", *[f"<th>{html.escape(KPI_LABELS[k])}</th>"
                                          for k in KPIS], "</tr>"]
    for tier, shares in sorted(data.tier_kpis.items()):
        out.append(f"<tr><td>{html.escape(tier)}</td>"
                   + "".join(f"<td>{_pct(shares.get(k))}</td>" for k in KPIS) + "</tr>")
    p, c = data.tier_kpis.get("province", {}), data.tier_kpis.get("commune", {})
    gaps = []
    for k in KPIS:
        pv, cv = p.get(k), c.get(k)
        gaps.append("n/a" if pv is None or cv is None else f"{100.0 * (cv - pv):+.1f} pts")
    out.append("<tr><th>tier gap (commune − province)</th>"
               + "".join(f"<td>{g}</td>" for g in gaps) + "</tr></table>")
    return out


def render_html(data: ReportData, images: dict[str, bytes]) -> str:
    """The page; ``images`` are PNG bytes by name (map, pm25, water, traffic, kpi)."""
    esc = html.escape
    parts = [
        "<!doctype html>", '<html lang="en"><head><meta charset="utf-8">',
        f"<title>IOC demo: {esc(data.province_name)}</title>",
        f"<style>{_CSS}</style></head><body>",
        f"<h1>IOC demo report: {esc(data.province_name)} ({esc(data.province)})</h1>",
        f"<p>Simulated span {data.sim_start:%Y-%m-%d %H:%M} to {data.sim_end:%H:%M} UTC; "
        f"report generated {data.generated_at:%Y-%m-%d %H:%M:%S} UTC.</p>",
    ]
    for problem in data.problems:
        parts.append(f'<p class="problem">Failed: {esc(problem)}</p>')
    parts.append("<h2>Run</h2><table>")
    parts += [f"<tr><th>{esc(k)}</th><td>{esc(v)}</td></tr>" for k, v in data.facts.items()]
    parts.append("</table><h2>Headline KPIs (province)</h2><table><tr>")
    parts += [f"<th>{esc(KPI_LABELS[k])}</th>" for k in KPIS]
    parts.append("</tr><tr>")
    for k in KPIS:
        target = data.kpi_targets.get(k)
        suffix = f" (target {_pct(target)})" if target is not None else ""
        parts.append(f"<td>{_pct(data.province_kpis.get(k))}{esc(suffix)}</td>")
    parts.append("</tr></table>")
    parts += _tier_table(data)
    parts.append("<h2>Communes by worst active alert severity</h2>")
    if data.approximate:
        parts.append(f'<p class="note">{esc(APPROXIMATE_NOTE)}</p>')
    parts.append(_img(images["map"], "commune map coloured by worst active alert severity"))
    parts.append(f"<h3>Active alerts ({len(data.alerts)})</h3>")
    if data.alerts:
        parts.append("<table><tr><th>severity</th><th>state</th><th>commune</th>"
                     "<th>rule</th><th>value</th></tr>")
        for a in data.alerts[:200]:
            where = f"{a.commune_name or ''} ({a.commune_code})" if a.commune_code else "province"
            value = "" if a.value is None else f"{a.value:.2f}"
            parts.append(f'<tr><td class="sev-{esc(a.severity)}">{esc(a.severity)}</td>'
                         f"<td>{esc(a.state)}</td><td>{esc(where)}</td>"
                         f"<td>{esc(a.rule_id)}</td><td>{value}</td></tr>")
        parts.append("</table>")
    else:
        parts.append("<p>No alert is active.</p>")
    parts.append("<h2>PM2.5</h2>" + _img(images["pm25"], "PM2.5 per minute"))
    parts.append("<h2>Water level</h2>" + _img(images["water"], "water level per minute"))
    parts.append("<h2>Traffic by hour</h2>" + _img(images["traffic"], "traffic by hour"))
    parts.append("<h2>Public-service KPIs per commune</h2>"
                 + _img(images["kpi"], "KPI bars per commune"))
    parts.append("<p>Source: rollup_1m, service_kpi_daily, alerts and current_admin_units of "
                 "the ioc database; see docs/demo.md.</p></body></html>")
    return "\n".join(parts)


def build_report(data: ReportData, out_dir: Path) -> ReportFiles:
    """Write ``report.html`` (self-contained) and ``map.png`` into ``out_dir``."""
    out_dir.mkdir(parents=True, exist_ok=True)
    images = {
        "map": map_png(data),
        "pm25": _series_png("PM2.5 per minute: province average and the 5 worst communes",
                            "µg/m³", data.pm25_average, data.pm25_worst),
        "water": _series_png("Water level per minute: province average and the 5 highest "
                             "gauges", "m", data.water_average, data.water_worst),
        "traffic": traffic_png(data.traffic),
        "kpi": kpi_png(data.kpis, data.kpi_targets),
    }
    files = ReportFiles(html=out_dir / "report.html", map_png=out_dir / "map.png")
    files.map_png.write_bytes(images["map"])
    files.html.write_text(render_html(data, images), encoding="utf-8")
    return files
