// The commune map: the API's GeoJSON layer drawn with Leaflet (SVG, no WebGL, no tiles
// unless a tile URL is configured), coloured by the worst active alert of each commune
// from the live board state; dashed outlines where the polygon is approximate.
import L from "leaflet";
import { api } from "./api.js";
import { h, modal } from "./dom.js";
import { t, fmtTime, fmtNum, fmtPct } from "./i18n.js";
import { state, ACTIVE, SEV_RANK, communeName, labelOf } from "./state.js";

export const COLOURS = { critical: "#b3001b", warning: "#c25e00", info: "#1f5fbf", pending: "#8a7300", none: "#5f8f6a" };

let map = null;
let layer = null;
let loadedProvince = undefined;
let container = null;
let geo = null;

export async function loadCommunes(province) {
  const q = province ? `?province=${encodeURIComponent(province)}` : "";
  const r = await fetch(`/v1/geo/communes${q}`, { headers: { Authorization: `Bearer ${sessionStorage.getItem("ioc.console.key")}` } });
  if (!r.ok) throw new Error(`HTTP ${r.status}`);
  geo = await r.json();
  for (const f of geo.features) {
    const p = f.properties;
    state.communes.set(p.code, { name: p.name, province_code: p.province_code, province_name: p.province_name, approximate: p.approximate });
  }
  loadedProvince = province;
  return geo;
}

export function worstByCommune() {
  const worst = new Map();
  for (const a of state.alerts.values()) {
    if (!ACTIVE.has(a.state)) continue;
    const c = labelOf(a, "commune_code");
    if (!c) continue;
    const level = a.state === "pending" ? 0.5 : SEV_RANK[a.severity] || 0;
    if ((worst.get(c) ?? -1) < level) worst.set(c, level);
  }
  return worst;
}

function levelName(level) {
  return level === undefined ? "none" : level === 0.5 ? "pending" : ["none", "info", "warning", "critical"][level];
}

export function pickProvince(v) {
  if (v.province.length === 1) return v.province[0];
  const counts = new Map();
  for (const a of state.alerts.values()) {
    if (!ACTIVE.has(a.state)) continue;
    const p = labelOf(a, "province_code");
    if (p) counts.set(p, (counts.get(p) || 0) + 1);
  }
  let best = null, n = 0;
  for (const [p, c] of counts) if (c > n) { best = p; n = c; }
  return best || "01";
}

function style(feature, worst) {
  const lvl = levelName(worst.get(feature.properties.code));
  return { color: "#333", weight: 0.8, dashArray: feature.properties.approximate ? "4 3" : null,
    fillColor: COLOURS[lvl], fillOpacity: lvl === "none" ? 0.25 : 0.7 };
}

export function recolour() {
  if (!layer) return;
  const worst = worstByCommune();
  layer.eachLayer((l) => {
    const s = style(l.feature, worst);
    l.setStyle(s);
    const el = l.getElement?.();
    if (el) { el.dataset.level = levelName(worst.get(l.feature.properties.code)); }
  });
  const list = document.getElementById("alerting-communes");
  if (list) list.replaceChildren(...alertingItems(worst));
}

function alertingItems(worst) {
  return [...worst.entries()].sort((x, y) => y[1] - x[1]).slice(0, 200).map(([code, lvl]) =>
    h("li", {}, h("button", { class: `btn ghost lvl-${levelName(lvl)}`, type: "button", dataset: { commune: code },
      onclick: () => openCommune(code) }, h("span", { class: `swatch lvl-${levelName(lvl)}`, "aria-hidden": "true" }),
    `${communeName(code)} — ${t(levelName(lvl) === "none" ? "none" : levelName(lvl))}`)));
}

export async function renderMap(root, v, tileUrl, side = null) {
  const province = pickProvince(v);
  const worst = worstByCommune();
  const approx = () => geo && geo.features.some((f) => f.properties.approximate);
  const mapEl = h("div", { id: "map", class: "map", role: "region", "aria-label": t("map_title") });
  const note = h("p", { class: "approx-note", id: "approx-note" });
  const legend = h("ul", { class: "legend", "aria-label": t("legend") },
    ["critical", "warning", "info", "pending", "none"].map((k) => h("li", {}, h("span", { class: `swatch lvl-${k}`, "aria-hidden": "true" }), t(k))));
  root.replaceChildren(h("div", { class: "map-view" },
    h("div", { class: "map-main" }, h("h2", { text: t("map_title") }), mapEl, note),
    h("aside", { class: "map-side", "aria-labelledby": "alerting-title" }, side ? side() : null, legend,
      h("h3", { id: "alerting-title", text: t("communes_alerting") }),
      h("ul", { class: "compact", id: "alerting-communes" }, alertingItems(worst)))));
  if (map) { map.remove(); map = null; layer = null; }
  container = mapEl;
  map = L.map(mapEl, { preferCanvas: false, zoomSnap: 0.25, attributionControl: !!tileUrl });
  if (tileUrl) L.tileLayer(tileUrl, { maxZoom: 18 }).addTo(map);
  if (loadedProvince !== province || !geo) await loadCommunes(province);
  if (container !== mapEl) return;
  layer = L.geoJSON(geo, {
    style: (f) => style(f, worst),
    onEachFeature: (f, l) => {
      l.bindTooltip(`${f.properties.name}${f.properties.approximate ? ` (${t("approximate")})` : ""}`);
      l.on("click", () => openCommune(f.properties.code));
      l.on("add", () => {
        const el = l.getElement();
        if (el) { el.dataset.commune = f.properties.code; el.dataset.level = levelName(worstByCommune().get(f.properties.code)); }
      });
    },
  }).addTo(map);
  recolour();
  try { map.fitBounds(layer.getBounds(), { padding: [8, 8] }); } catch { map.setView([21.03, 105.85], 10); }
  note.textContent = approx() ? t("approx_note") : "";
}

export async function openCommune(code) {
  const body = h("div", { class: "drill", "aria-busy": "true" }, h("p", { text: "…" }));
  modal(`${t("drill")}: ${communeName(code)}`, body, { wide: true });
  try {
    const d = await api(`/v1/console/communes/${encodeURIComponent(code)}`);
    body.replaceChildren(
      h("p", { class: "muted", text: `${d.commune.commune_name} · ${d.commune.province_name} · ${code}${d.commune.approximate ? ` · ${t("approximate")}` : ""}` }),
      h("h3", { text: `${t("active_alerts")} (${d.alerts.length})` }),
      d.alerts.length ? h("ul", { class: "compact" }, d.alerts.map((a) => h("li", {},
        h("span", { class: `sev sev-${a.severity}`, text: t(a.severity) }), " ", h("span", { class: `st st-${a.state}`, text: t(a.state) }), " ",
        a.annotations?.[`summary_${document.documentElement.lang}`] || a.rule_id))) : h("p", { class: "muted", text: t("none") }),
      h("h3", { text: t("latest_readings") }),
      d.readings.length ? h("table", { class: "table" },
        h("thead", {}, h("tr", {}, [t("metric"), t("last"), t("at")].map((x) => h("th", { scope: "col", text: x })))),
        h("tbody", {}, d.readings.map((r) => h("tr", {}, h("td", { text: r.metric }), h("td", { text: fmtNum(r.last, 2) }), h("td", { text: fmtTime(r.last_at) })))))
        : h("p", { class: "muted", text: t("no_data") }),
      h("h3", { text: `${t("kpis_today")}${d.dossiers_received ? ` · ${t("dossiers")}: ${d.dossiers_received}` : ""}` }),
      kpiTable(d.kpis));
    body.removeAttribute("aria-busy");
  } catch (e) { body.replaceChildren(h("p", { class: "error", text: `${t("failed")}: ${e.message}` })); }
}

export function kpiTable(kpis) {
  return h("table", { class: "table kpis" },
    h("thead", {}, h("tr", {}, ["KPI", t("value"), t("target"), ""].map((x) => h("th", { scope: "col", text: x })))),
    h("tbody", {}, kpis.map((k) => h("tr", { dataset: { kpi: k.kpi } },
      h("td", { text: t(k.kpi) }), h("td", { text: fmtPct(k.value) }), h("td", { text: fmtPct(k.target) }),
      h("td", { class: k.met === null ? "muted" : k.met ? "ok" : "bad", text: k.met === null ? t("no_data") : k.met ? `✓ ${t("met")}` : `✗ ${t("not_met")}` })))));
}

/** Per commune of the loaded province: its latest day's KPIs (the map layer's properties). */
export function communeKpis() {
  return geo ? geo.features.map((f) => ({ code: f.properties.code, name: f.properties.name, kpi: f.properties.kpi || {} })) : [];
}

export function mapActive() { return !!map; }
export function dropMap() { if (map) { map.remove(); map = null; layer = null; } }
