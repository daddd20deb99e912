// The views and what each is drawn from. A view names the store topics it subscribes to;
// `render` draws it whole (navigation, settings), `update` redraws what changed topics
// touch and returns false when it must wait (a dialog is open over the board).
import { h } from "./dom.js";
import { state, pickProvince } from "./state.js";
import { loadFeeds, loadKpis } from "./store.js";
import { renderBoard } from "./board.js";
import { kpiStrip } from "./kpis.js";
import { renderMap, updateMap, dropMap } from "./map.js";
import { renderHealth } from "./health.js";
import { overview } from "./overview.js";
import { renderScorecards } from "./scorecards.js";
import { incidentRights, loadIncident, loadIncidentMap, loadIncidents, loadSector } from "./incident_store.js";
import { renderIncidentBoard } from "./incidents.js";
import { renderIncidentPage } from "./incident_page.js";
import { drawIncidentLayer, incidentSide } from "./incident_map.js";
import { dropFeedbackMap, feedbackKpiStrip, loadFeedback, renderFeedback, updateFeedback } from "./feedback.js";
import { loadFeedbackKpis } from "./feedback_store.js";

/** Opens one incident's page (from the board, the map or a marker). */
function incidentOpener(v, ctx) {
  return (id) => { v.view = "incidents"; v.incident = id; ctx.settingsChanged(); };
}

function refreshKpiSlot() {
  const slot = document.getElementById("kpi-slot");
  if (slot) slot.replaceChildren(...[kpiStrip(state.kpis)].filter(Boolean));
}

const board = {
  topics: ["alerts", "silences", "audit", "communes", "kpis", "ui"],
  render(root, v, ctx) {
    const slot = h("div", { id: "board-slot" });
    root.append(h("div", { id: "kpi-slot" }, kpiStrip(state.kpis)), slot);
    renderBoard(slot, v, ctx.settingsChanged);
  },
  update(root, v, topics, ctx) {
    if (topics.has("kpis")) refreshKpiSlot();
    if (document.querySelector("dialog[open]")) return false;  // redrawn when it closes
    const slot = document.getElementById("board-slot");
    if (!slot) return true;
    const focused = document.activeElement?.closest?.("[data-group]")?.dataset.group;
    renderBoard(slot, v, ctx.settingsChanged, true);
    if (focused) document.querySelector(`[data-group="${CSS.escape(focused)}"] .group-toggle`)?.focus();
    return true;
  },
};

const map = {
  topics: ["alerts", "communes", "kpis", "incidents"],
  enter() { if (incidentRights(state.me).read) loadIncidentMap(); },
  render(root, v, ctx) {
    renderMap(root, v, state.me.tile_url || null, () => overview(v, ctx.openGroup));
    root.querySelector(".map-side")?.append(...incidentSide(incidentOpener(v, ctx)));
    drawIncidentLayer(incidentOpener(v, ctx));
  },
  update(root, v, topics, ctx) {
    updateMap(topics, v, () => overview(v, ctx.openGroup));
    if (topics.has("incidents")) drawIncidentLayer(incidentOpener(v, ctx));
    return true;
  },
  leave: dropMap,
};

// The incident board, or one incident's page when the URL names one (`incident=`).
const incidents = {
  topics: ["incidents", "incident"],
  render(root, v, ctx) {
    if (v.incident) {
      if (state.incident?.id !== v.incident) loadIncident(v.incident);
      renderIncidentPage(root, v, () => { v.incident = null; ctx.settingsChanged(); }, incidentOpener(v, ctx));
      return;
    }
    const list = state.incidents;
    if (!list || list.tab !== v.itab || list.done !== v.idone || list.dept !== v.idept) loadIncidents(v);
    if (v.itab === "department" && !state.me.department && !state.incidentMap) loadIncidentMap();
    if (state.me.role === "responder" && !state.sector) loadSector();
    renderIncidentBoard(root, v, ctx.settingsChanged, incidentOpener(v, ctx));
  },
  update(root, v, topics, ctx) {
    if (document.querySelector("dialog[open]")) return false;  // redrawn when it closes
    if (v.incident ? topics.has("incident") : topics.has("incidents")) this.render(root, v, ctx);
    return true;
  },
};

// The citizen reports' KPIs beside the public-service ones (IOC keys; a department sees
// its own in the reports view).
function refreshFeedbackKpis() {
  const slot = document.getElementById("fb-kpi-slot");
  if (slot) slot.replaceChildren(...[feedbackKpiStrip(state.feedbackKpis)].filter(Boolean));
}

const health = {
  topics: ["feeds", "kpis", "feedback"],
  enter(v) {
    loadFeeds();
    if (state.me.role !== "department") { loadKpis(pickProvince(v)); loadFeedbackKpis(pickProvince(v)); }
  },
  render(root, v) { renderHealth(root, pickProvince(v)); },
  update(root, v, topics) {
    if (topics.has("feeds")) renderHealth(root, pickProvince(v));
    else { refreshKpiSlot(); refreshFeedbackKpis(); }
    return true;
  },
};

// Scorecards and reports read their own data when drawn (a month at a time, no topic).
const scorecards = {
  topics: [],
  render(root, v) { renderScorecards(root, pickProvince(v), state.me.role); },
  update() { return true; },
};

// Citizen reports: the list, the map of open reports and the KPIs, for the province
// shown (IOC keys) or the key's own department (the API scopes it).
const reportProvince = (v) => (state.me.department ? null : pickProvince(v));
const feedback = {
  topics: ["feedback"],
  enter(v) { loadFeedback(v, reportProvince(v), { all: true }); },
  render(root, v, ctx) {
    renderFeedback(root, v, ctx, reportProvince(v));
    loadFeedback(v, reportProvince(v));
  },
  update(root, v) {
    if (document.querySelector("dialog[open]")) return false;  // redrawn when it closes
    updateFeedback(v, reportProvince(v));
    return true;
  },
  leave: dropFeedbackMap,
};

export const VIEWS = { board, map, health, incidents, scorecards, feedback };

/** The views a key may open, in tab order (keys 1-6). A responder (a department's
 * people) has its incidents only: the alert board, map and feeds need an IOC key. A
 * department key has its feed health and the citizen reports routed to it. */
export function viewsOf(me) {
  if (me.role === "department") return ["health", "feedback"];
  if (me.role === "responder") return ["incidents"];
  return ["board", "map", "health", "incidents", "scorecards", "feedback"];
}
