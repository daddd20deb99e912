// The citizen reports view: the month's response KPIs, the reports as a list (status,
// category, commune, age, due, overdue, department) filtered by status and overdue, and
// the open reports on a commune map (a point per report, overdue ringed in red, the
// communes shaded by their open reports). A department key is shown what the API gives
// it: its own department's reports. Every text from the API reaches the page as text
// (`h`), commune names reach Leaflet as DOM nodes, never as HTML strings.
import L from "leaflet";
import { h, modal } from "./dom.js";
import { t, getLang, fmtNum, fmtPct, fmtTime } from "./i18n.js";
import { state } from "./state.js";
import { listQuery, loadContact, loadFeedbackKpis, loadReportMap, loadReports } from "./feedback_store.js";
import "./feedback_texts.js";

const STATUS_FILTERS = ["open", "all", "closed", "received", "assigned", "in_progress", "resolved", "rejected"];
const OVERDUE = "#ff5c6c";
const OPEN_FILL = "#ffb347";

let map = null;
let pointLayer = null;
let communeLayer = null;
let drawn = null;   // the reportMap the layers were drawn from

const hours = (x) => (x === null || x === undefined ? "—" : t("fb_hours", { n: fmtNum(x, 1) }));
const statusText = (s) => t(`fb_st_${s}`);
const serviceName = (r) => r.service?.[getLang()] || r.service_code;

function kpiCard(kpi, name, value, sub, cls = "") {
  return h("div", { class: `kpi-card fb-kpi ${cls}`, dataset: { kpi } },
    h("span", { class: "kpi-name", text: name }), h("span", { class: "kpi-value", text: value }),
    sub ? h("span", { class: "kpi-target", text: sub }) : null);
}

/** The response KPIs of the month as a strip of cards (null before the first answer). */
export function feedbackKpiStrip(k) {
  if (!k) return null;
  if (k.error) return h("p", { class: "error", text: k.error });
  return h("section", { class: "fb-kpis", "aria-labelledby": "fb-kpi-title", dataset: { scope: k.scope, code: k.code } },
    h("h3", { id: "fb-kpi-title", text: `${t("fb_kpis")} · ${k.code}` }),
    h("p", { class: "muted", text: t("fb_kpis_scope", { from: k.from, to: k.to }) }),
    h("div", { class: "kpi-strip" },
      kpiCard("received", t("fb_received"), fmtNum(k.received, 0), t("fb_resolved_n", { n: fmtNum(k.resolved, 0) })),
      kpiCard("share_resolved_in_sla", t("fb_in_sla"), fmtPct(k.share_resolved_in_sla), null),
      kpiCard("median_hours_to_resolve", t("fb_median"), hours(k.median_hours_to_resolve), null),
      kpiCard("p90_hours_to_resolve", t("fb_p90"), hours(k.p90_hours_to_resolve), null),
      kpiCard("overdue_now", t("fb_overdue_now"), fmtNum(k.overdue_now, 0), null, k.overdue_now ? "bad" : "ok"),
      kpiCard("satisfaction", t("fb_satisfaction"), fmtNum(k.satisfaction, 2), t("fb_rated", { n: fmtNum(k.rated, 0) }))));
}

async function showContact(r, slot) {
  slot.replaceChildren(h("p", { class: "muted", text: "…" }));
  try {
    const c = await loadContact(r.report_id);
    const name = [c.first_name, c.last_name].filter(Boolean).join(" ");
    const rows = [[t("fb_name"), name], [t("fb_email"), c.email], [t("fb_phone"), c.phone]].filter((x) => x[1]);
    slot.replaceChildren(rows.length ? h("dl", { class: "fb-contact" }, rows.map(([k, x]) => [h("dt", { text: k }), h("dd", { text: x })]))
      : h("p", { class: "muted", text: t("fb_contact_none") }));
  } catch (e) {
    slot.replaceChildren(h("p", { class: "muted", text: e.status === 404 ? t("fb_contact_none") : e.message }));
  }
}

/** One report's detail; the contact button only where the API would answer it. */
function openReport(r) {
  const mayContact = state.me?.role === "admin" || (state.me?.role === "department" && state.me.department === r.department);
  const slot = h("div", { class: "fb-contact-slot" });
  const rows = [[t("fb_id"), r.report_id], [t("fb_category"), serviceName(r)], [t("fb_status"), `${statusText(r.status)}${r.reason ? ` (${r.reason})` : ""}`],
    [t("fb_commune"), `${r.commune_name || r.commune_code}${r.located ? "" : ` (${t("fb_no_location")})`}`],
    [t("fb_dept"), r.department], [t("fb_received_at"), fmtTime(r.received_at)], [t("fb_due"), fmtTime(r.due_at)],
    [t("fb_rating"), r.rating ?? "—"], [t("fb_description"), r.description]];
  modal(`${t("fb_title")} · ${serviceName(r)}`, h("div", { class: "fb-detail", dataset: { report: r.report_id } },
    h("dl", {}, rows.map(([k, x]) => [h("dt", { text: k }), h("dd", { text: String(x ?? "") })])),
    mayContact ? [h("button", { class: "btn", type: "button", onclick: () => showContact(r, slot) }, t("fb_contact")), slot] : null));
}

function flagCell(r) {
  if (r.overdue) return h("td", { class: "bad", text: `⚠ ${t("fb_overdue")}` });
  if (r.late) return h("td", { class: "muted", text: t("fb_late") });
  return h("td", { text: "" });
}

function reportTable(list) {
  const head = [t("fb_category"), t("fb_status"), t("fb_commune"), t("fb_age"), t("fb_due"), t("fb_overdue"), t("fb_dept")];
  return h("div", { class: "table-wrap" }, h("table", { class: "table reports-list" },
    h("thead", {}, h("tr", {}, head.map((x) => h("th", { scope: "col", text: x })))),
    h("tbody", {}, list.map((r) => h("tr", { class: r.overdue ? "overdue" : "", dataset: { report: r.report_id, status: r.status, overdue: String(r.overdue), department: r.department } },
      h("td", {}, h("button", { class: "btn ghost", type: "button", onclick: () => openReport(r) }, serviceName(r))),
      h("td", { text: statusText(r.status) }),
      h("td", { text: r.commune_name || r.commune_code }),
      h("td", { text: hours(r.age_hours) }),
      h("td", { text: fmtTime(r.due_at) }),
      flagCell(r),
      h("td", { text: r.department }))))));
}

function listBody(v, province) {
  const data = state.reports;
  if (!data) return [h("p", { class: "loading", text: "…" })];
  if (data.error) return [h("p", { class: "error", text: data.error })];
  return [data.counts ? h("p", { class: "fb-counts", text: t("fb_counts", { open: fmtNum(data.counts.open, 0), overdue: fmtNum(data.counts.overdue, 0) }) }) : null,
    data.reports.length ? reportTable(data.reports) : h("p", { class: "muted", text: t("fb_none") }),
    data.next ? h("button", { class: "btn", type: "button", id: "fb-more", onclick: () => loadReports(v, province, true) }, t("fb_more")) : null];
}

function filters(v, ctx) {
  return h("div", { class: "filters", id: "filters" },
    h("label", {}, `${t("fb_status")} `, h("select", { id: "fb-status", onchange: (e) => { v.fstatus = e.target.value; ctx.settingsChanged(); } },
      STATUS_FILTERS.map((s) => h("option", { value: s, selected: (v.fstatus || "open") === s },
        ["open", "all", "closed"].includes(s) ? t(`fb_${s}`) : statusText(s))))),
    h("label", {}, h("input", { type: "checkbox", id: "fb-overdue", checked: v.foverdue,
      onchange: (e) => { v.foverdue = e.target.checked; ctx.settingsChanged(); } }), ` ${t("fb_overdue_only")}`));
}

function communeItems() {
  const feats = (state.reportMap?.features || []).filter((f) => f.properties.kind === "commune").slice(0, 100);
  return feats.map((f) => h("li", { dataset: { commune: f.properties.code, open: f.properties.open, overdue: f.properties.overdue } },
    `${f.properties.name || f.properties.code}: `, h("strong", { text: fmtNum(f.properties.open, 0) }),
    f.properties.overdue ? h("span", { class: "bad", text: ` · ${t("fb_overdue")} ${fmtNum(f.properties.overdue, 0)}` }) : null));
}

function mapNote() {
  const m = state.reportMap;
  if (!m) return "";
  if (m.error) return m.error;
  return m.truncated ? t("fb_map_truncated", { n: m.points, total: m.open }) : "";
}

function drawLayers() {
  const m = state.reportMap;
  if (!map || !m || drawn === m) return;
  drawn = m;
  if (pointLayer) pointLayer.remove();
  if (communeLayer) communeLayer.remove();
  const communes = m.features.filter((f) => f.properties.kind === "commune");
  const most = Math.max(1, ...communes.map((f) => f.properties.open));
  communeLayer = L.geoJSON({ type: "FeatureCollection", features: communes }, {
    style: (f) => ({ color: f.properties.overdue ? OVERDUE : "#333", weight: f.properties.overdue ? 1.5 : 0.8,
      fillColor: OPEN_FILL, fillOpacity: 0.15 + 0.5 * (f.properties.open / most) }),
    onEachFeature: (f, l) => {
      l.bindTooltip(h("span", { class: "commune-tip", text: `${f.properties.name || f.properties.code}: ${t("fb_counts", { open: f.properties.open, overdue: f.properties.overdue })}` }));
      l.on("add", () => { const el = l.getElement(); if (el) el.dataset.commune = f.properties.code; });
    },
  }).addTo(map);
  pointLayer = L.layerGroup().addTo(map);
  for (const f of m.features.filter((x) => x.properties.kind === "report")) {
    const p = f.properties;
    const [lon, lat] = f.geometry.coordinates;
    const marker = L.circleMarker([lat, lon], { radius: p.overdue ? 8 : 6, color: p.overdue ? OVERDUE : "#fff", weight: p.overdue ? 3 : 1.5,
      fillColor: p.overdue ? OVERDUE : OPEN_FILL, fillOpacity: 0.9 });
    const name = p.commune_name || p.commune_code;
    marker.bindTooltip(h("span", { class: "report-tip", text: `${t(`fb_st_${p.status}`)} · ${p.service?.[getLang()] || p.service_code} · ${name}${p.overdue ? ` · ${t("fb_overdue")}` : ""}${p.located ? "" : ` (${t("fb_no_location")})`}` }));
    marker.on("add", () => { const el = marker.getElement(); if (el) { el.dataset.report = p.report_id; el.dataset.overdue = String(p.overdue); } });
    marker.addTo(pointLayer);
  }
  const bounds = L.featureGroup([communeLayer, ...pointLayer.getLayers()]).getBounds();
  if (bounds.isValid()) map.fitBounds(bounds, { padding: [12, 12], maxZoom: 15 });
  else map.setView([21.03, 105.85], 10);
}

/** The reports view into `root` for `province` (null for a department key's own scope). */
export function renderFeedback(root, v, ctx, province) {
  const mapEl = h("div", { id: "fb-map", class: "map fb-map", role: "region", "aria-label": t("fb_map") });
  const dept = state.me?.department;
  root.replaceChildren(h("div", { class: "fb-view" },
    h("h2", { text: `${t("fb_title")}${province ? ` · ${province}` : ""}` }),
    dept ? h("p", { class: "note", text: t("fb_scope_dept", { d: dept }) }) : null,
    h("div", { id: "fb-kpi-slot" }, feedbackKpiStrip(state.feedbackKpis)),
    h("div", { class: "fb-columns" },
      h("section", { class: "fb-list", "aria-labelledby": "fb-list-title" }, h("h3", { id: "fb-list-title", class: "sr-only", text: t("fb_title") }),
        filters(v, ctx), h("div", { id: "fb-list-slot" }, listBody(v, province))),
      h("section", { class: "fb-side", "aria-labelledby": "fb-map-title" }, h("h3", { id: "fb-map-title", text: t("fb_map") }), mapEl,
        h("p", { class: "muted", id: "fb-map-note", text: mapNote() }), h("p", { class: "muted", text: t("fb_map_note") }),
        h("h4", { id: "fb-communes-title", text: t("fb_communes") }),
        // scrollable: focusable, so keyboard users can scroll it
        h("ul", { class: "compact", id: "fb-communes", tabindex: "0", "aria-labelledby": "fb-communes-title" }, communeItems())))));
  dropFeedbackMap();
  map = L.map(mapEl, { preferCanvas: false, zoomSnap: 0.25, attributionControl: !!state.me?.tile_url });
  if (state.me?.tile_url) L.tileLayer(state.me.tile_url, { maxZoom: 18 }).addTo(map);
  map.setView([21.03, 105.85], 10);
  drawLayers();
}

/** The store's `feedback` topic changed while the view is shown: redraw the parts. */
export function updateFeedback(v, province) {
  document.getElementById("fb-kpi-slot")?.replaceChildren(...[feedbackKpiStrip(state.feedbackKpis)].filter(Boolean));
  document.getElementById("fb-list-slot")?.replaceChildren(...listBody(v, province).filter(Boolean));
  document.getElementById("fb-communes")?.replaceChildren(...communeItems());
  const note = document.getElementById("fb-map-note");
  if (note) note.textContent = mapNote();
  drawLayers();
}

/** Asks the store for what the view shows (the list again only when its filters changed). */
export function loadFeedback(v, province, { all = false } = {}) {
  if (all || state.reports?.key !== listQuery(v, province).toString()) loadReports(v, province);
  if (all || state.reportMap?.province !== province) loadReportMap(province);
  if (all || state.feedbackKpis?.code !== (state.me?.department || province)) loadFeedbackKpis(province);
}

export function dropFeedbackMap() {
  if (map) { map.remove(); map = null; pointLayer = null; communeLayer = null; drawn = null; }
}
