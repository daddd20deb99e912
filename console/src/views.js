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
  topics: ["alerts", "communes", "kpis"],
  render(root, v, ctx) { renderMap(root, v, state.me.tile_url || null, () => overview(v, ctx.openGroup)); },
  update(root, v, topics, ctx) { updateMap(topics, v, () => overview(v, ctx.openGroup)); return true; },
  leave: dropMap,
};

const health = {
  topics: ["feeds", "kpis"],
  enter(v) {
    loadFeeds();
    if (state.me.role !== "department") loadKpis(pickProvince(v));
  },
  render(root, v) { renderHealth(root, pickProvince(v)); },
  update(root, v, topics) {
    if (topics.has("feeds")) renderHealth(root, pickProvince(v));
    else refreshKpiSlot();
    return true;
  },
};

export const VIEWS = { board, map, health };

/** The views a key may open, in tab order (keys 1, 2, 3). */
export function viewsOf(me) {
  return me.role === "department" ? ["health"] : ["board", "map", "health"];
}
