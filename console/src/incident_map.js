// Incidents on the commune map: a circle per active incident at its place (the centroid
// of its first alert's commune, `location` of the board), filled from the one severity
// table, larger when worse; its tooltip is DOM text and a click opens the incident.
import L from "leaflet";
import { h } from "./dom.js";
import { t } from "./i18n.js";
import { state } from "./state.js";
import { colourOf } from "./severity.js";
import { incidentMarkers } from "./incidents.js";
import { leafletMap } from "./map.js";
import "./incident_texts.js";

let layer = null;
let on = null;  // the map the layer was added to

/** (Re)draws the layer on the map view's Leaflet map, if it is shown. */
export function drawIncidentLayer(openIncident) {
  const map = leafletMap();
  if (!map) { layer = null; on = null; return; }
  if (layer && on === map) layer.clearLayers();
  else { layer = L.layerGroup().addTo(map); on = map; }
  for (const m of incidentMarkers(state.incidentMap)) {
    const marker = L.circleMarker([m.lat, m.lon], { radius: m.radius, color: m.overdue ? "#ffd84d" : "#fff",
      weight: m.overdue ? 3 : 1.5, fillColor: colourOf(m.severity), fillOpacity: 0.95 });
    marker.bindTooltip(h("span", { class: "incident-tip", text: `${m.title} — ${t(m.severity)}${m.overdue ? ` · ${t("overdue")}` : ""}` }));
    marker.on("click", () => openIncident(m.id));
    marker.on("add", () => { const el = marker.getElement(); if (el) { el.dataset.incident = m.id; el.dataset.severity = m.severity; } });
    marker.addTo(layer);
  }
  const list = document.getElementById("map-incidents");
  if (list) list.replaceChildren(...incidentItems(openIncident));
  const title = document.getElementById("map-incidents-title");
  if (title) title.textContent = `${t("map_incidents")} (${(state.incidentMap || []).length})`;
}

function incidentItems(openIncident) {
  return incidentMarkers(state.incidentMap).reverse().slice(0, 100).map((m) => h("li", {},
    h("button", { class: "btn ghost", type: "button", dataset: { incident: m.id }, onclick: () => openIncident(m.id) },
      h("span", { class: "swatch round", "aria-hidden": "true", style: { background: colourOf(m.severity) } }), m.title)));
}

/** The side panel's list of open incidents (keyboard users open them from here). */
export function incidentSide(openIncident) {
  return [h("h3", { id: "map-incidents-title", text: `${t("map_incidents")} (${(state.incidentMap || []).length})` }),
    h("p", { class: "muted", text: t("incidents_on_map") }),
    h("ul", { class: "compact", id: "map-incidents", "aria-labelledby": "map-incidents-title" }, incidentItems(openIncident))];
}
