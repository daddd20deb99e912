// The commune map: the store's GeoJSON layer drawn with Leaflet (SVG, no WebGL, no tiles
// unless a tile URL is configured), coloured by the worst active alert of each commune
// from the live board state; dashed outlines where the polygon is approximate. Commune
// names reach Leaflet as DOM text, never as a string (Leaflet inserts strings as HTML).
import L from "leaflet";
import { h } from "./dom.js";
import { t } from "./i18n.js";
import { state, ACTIVE, communeName, labelOf, pickProvince } from "./state.js";
import { LEVELS, alertLevel, colourOf, levelName } from "./severity.js";
import { loadCommunes } from "./store.js";
import { openCommune } from "./commune.js";

let map = null;
let layer = null;
let drawn = null;     // the GeoJSON the layer was drawn from (redrawing resets the zoom)
let container = null;

export function worstByCommune() {
  const worst = new Map();
  for (const a of state.alerts.values()) {
    if (!ACTIVE.has(a.state)) continue;
    const c = labelOf(a, "commune_code");
    if (!c) continue;
    const level = alertLevel(a);
    if ((worst.get(c) ?? -1) < level) worst.set(c, level);
  }
  return worst;
}

function style(feature, worst) {
  const lvl = levelName(worst.get(feature.properties.code));
  return { color: "#333", weight: 0.8, dashArray: feature.properties.approximate ? "4 3" : null,
    fillColor: colourOf(lvl), fillOpacity: lvl === "none" ? 0.25 : 0.7 };
}

function swatch(level) {
  return h("span", { class: "swatch", "aria-hidden": "true", style: { background: colourOf(level) } });
}

/** The tooltip of a commune: a DOM node, so a name is shown as text whatever it holds. */
export function tooltipOf(properties) {
  return h("span", { class: "commune-tip", text: `${properties.name}${properties.approximate ? ` (${t("approximate")})` : ""}` });
}

function alertingItems(worst) {
  return [...worst.entries()].sort((x, y) => y[1] - x[1]).slice(0, 200).map(([code, lvl]) =>
    h("li", {}, h("button", { class: "btn ghost", type: "button", dataset: { commune: code, level: levelName(lvl) },
      onclick: () => openCommune(code) }, swatch(levelName(lvl)), `${communeName(code)} — ${t(levelName(lvl))}`)));
}

function recolour() {
  const worst = worstByCommune();
  if (layer) {
    layer.eachLayer((l) => {
      l.setStyle(style(l.feature, worst));
      const el = l.getElement?.();
      if (el) el.dataset.level = levelName(worst.get(l.feature.properties.code));
    });
  }
  const list = document.getElementById("alerting-communes");
  if (list) list.replaceChildren(...alertingItems(worst));
}

function drawLayer(province) {
  if (!map || !state.geo || state.geoProvince !== province || (layer && drawn === state.geo)) return;
  if (layer) { layer.remove(); layer = null; }
  drawn = state.geo;
  const worst = worstByCommune();
  layer = L.geoJSON(state.geo, {
    style: (f) => style(f, worst),
    onEachFeature: (f, l) => {
      l.bindTooltip(tooltipOf(f.properties));
      l.on("click", () => openCommune(f.properties.code));
      l.on("add", () => {
        const el = l.getElement();
        if (el) { el.dataset.commune = f.properties.code; el.dataset.level = levelName(worstByCommune().get(f.properties.code)); }
      });
    },
  }).addTo(map);
  recolour();
  try { map.fitBounds(layer.getBounds(), { padding: [8, 8] }); } catch { map.setView([21.03, 105.85], 10); }
  const note = document.getElementById("approx-note");
  if (note) note.textContent = state.geo.features.some((f) => f.properties.approximate) ? t("approx_note") : "";
}

/** The map view: layout, Leaflet map, the layer when the store has the province's
 * communes (else it asks the store, and `updateMap` draws the layer when they come). */
export function renderMap(root, v, tileUrl, side) {
  const province = pickProvince(v);
  const mapEl = h("div", { id: "map", class: "map", role: "region", "aria-label": t("map_title") });
  const legend = h("ul", { class: "legend", "aria-label": t("legend") },
    LEVELS.map((l) => h("li", {}, swatch(l.name), t(l.name))));
  root.replaceChildren(h("div", { class: "map-view" },
    h("div", { class: "map-main" }, h("h2", { text: t("map_title") }), mapEl, h("p", { class: "approx-note", id: "approx-note" })),
    h("aside", { class: "map-side", "aria-labelledby": "alerting-title" }, h("div", { id: "map-overview" }, side()), legend,
      h("h3", { id: "alerting-title", text: t("communes_alerting") }),
      h("ul", { class: "compact", id: "alerting-communes" }, alertingItems(worstByCommune())))));
  dropMap();
  container = mapEl;
  map = L.map(mapEl, { preferCanvas: false, zoomSnap: 0.25, attributionControl: !!tileUrl });
  if (tileUrl) L.tileLayer(tileUrl, { maxZoom: 18 }).addTo(map);
  if (state.geoProvince === province && state.geo) drawLayer(province);
  else loadCommunes(province).catch((e) => { if (container === mapEl) mapEl.after(h("p", { class: "error", text: e.message })); });
}

/** A store topic changed while the map is shown. */
export function updateMap(topics, v, side) {
  if (!map) return;
  if (topics.has("communes")) drawLayer(pickProvince(v));
  if (topics.has("alerts")) recolour();
  const overview = document.getElementById("map-overview");
  if (overview && (topics.has("alerts") || topics.has("kpis")) && !overview.contains(document.activeElement)) overview.replaceChildren(side());
}

/** The Leaflet map while the map view is shown (the incident layer draws on it), else null. */
export function leafletMap() { return map; }

export function dropMap() {
  if (map) { map.remove(); map = null; layer = null; drawn = null; container = null; }
}
