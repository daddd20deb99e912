// The console's shell: sign-in, top bar, views (board with the KPI strip, map, KPIs and
// feeds), the live stream and keyboard shortcuts. View settings live in the URL.
import { api, ApiError, clearKey, getKey, setKey, stream } from "./api.js";
import { h } from "./dom.js";
import { setLang, t } from "./i18n.js";
import { state, readUrl, writeUrl, applyTransition, isBackfilled, matchesFilters } from "./state.js";
import { groupAlerts, renderBoard, setRerender } from "./board.js";
import { loadSilences, setActionRefresh } from "./actions.js";
import { renderMap, recolour, dropMap, loadCommunes, pickProvince } from "./map.js";
import { renderHealth, kpiStrip, loadKpis } from "./health.js";
import { renderScorecards } from "./scorecards.js";

const v = readUrl();
let live = null;
let kpis = null;
let renderQueued = false;
const app = document.getElementById("app");

function applyPrefs() {
  setLang(v.lang);
  document.title = t("title");
  document.body.classList.toggle("wall", v.wall);
  const skip = document.querySelector(".skip");
  if (skip) skip.textContent = t("skip");
}

function signin(error) {
  applyPrefs();
  const input = h("input", { id: "key", type: "password", autocomplete: "off", required: true, spellcheck: "false" });
  app.replaceChildren(h("main", { id: "main", class: "signin" },
    h("h1", { text: t("title") }),
    h("form", { class: "stack panel", onsubmit: async (e) => { e.preventDefault(); setKey(input.value.trim()); await start(); } },
      h("label", { for: "key", text: t("api_key") }), input,
      h("p", { class: "muted", text: t("signin_help") }),
      error ? h("p", { class: "error", role: "alert", text: error }) : null,
      h("button", { class: "btn primary", type: "submit" }, t("signin")),
      h("button", { class: "btn ghost", type: "button", onclick: () => { v.lang = v.lang === "vi" ? "en" : "vi"; writeUrl(v); signin(error); } }, t("lang")))));
  input.focus();
}

function beep() {
  if (!state.sound) return;
  try {
    const ctx = new AudioContext();
    const o = ctx.createOscillator(); const g = ctx.createGain();
    o.frequency.value = 880; g.gain.value = 0.15; o.connect(g); g.connect(ctx.destination);
    o.start(); o.stop(ctx.currentTime + 0.35);
  } catch { /* no audio device */ }
}

function topbar() {
  const views = state.me.role === "department" ? ["health"] : ["board", "map", "health", "scorecards"];
  const status = { live: t("live"), reconnecting: t("reconnecting"), connecting: t("connecting"), unauthorized: t("bad_key"), limited: t("limited") }[state.stream] || state.stream;
  return h("header", { class: "topbar" },
    h("h1", { class: "brand", text: t("title") }),
    h("nav", { "aria-label": "views" }, h("ul", { class: "tabs" }, views.map((name, i) => h("li", {},
      h("a", { href: `?${new URLSearchParams({ ...Object.fromEntries(new URLSearchParams(location.search)), view: name })}`,
        "aria-current": v.view === name ? "page" : null, "aria-keyshortcuts": String(i + 1),
        onclick: (e) => { e.preventDefault(); go(name); } }, t(`view_${name}`)))))),
    h("div", { class: "top-tools" },
      state.me.role !== "department" ? h("span", { class: `conn conn-${state.stream}`, role: "status", "data-stream": state.stream, text: status }) : null,
      h("span", { class: "who", text: `${state.me.name} · ${t("role")}: ${state.me.role}` }),
      h("button", { class: "btn ghost", type: "button", "aria-pressed": String(state.sound), onclick: () => {
        state.sound = !state.sound; sessionStorage.setItem("ioc.console.sound", state.sound ? "1" : "0"); if (state.sound) beep(); render(); } },
      `${t("sound")}: ${state.sound ? t("on") : t("off")}`),
      h("button", { class: "btn ghost", type: "button", "aria-pressed": String(v.wall), "aria-keyshortcuts": "w", onclick: () => { v.wall = !v.wall; writeUrl(v); render(); } }, t("wall")),
      h("button", { class: "btn ghost", type: "button", lang: v.lang === "vi" ? "en" : "vi", "aria-keyshortcuts": "l", onclick: toggleLang }, t("lang")),
      h("button", { class: "btn ghost", type: "button", onclick: signout }, t("signout"))));
}

function toggleLang() { v.lang = v.lang === "vi" ? "en" : "vi"; writeUrl(v); render(); }

function signout() {
  if (live) live.stop();
  live = null; clearKey(); state.me = null; state.alerts.clear(); dropMap(); signin();
}

document.addEventListener("ioc-unauthorized", () => {
  if (!state.me) return;
  if (live) live.stop();
  live = null; clearKey(); state.me = null; state.alerts.clear(); dropMap(); signin(t("bad_key"));
});

function go(view) {
  v.view = view; writeUrl(v); render();
}

let mainEl = null;

function render() {
  applyPrefs();
  if (!state.me) return;
  if (state.me.role === "department") v.view = "health";
  if (v.view !== "map") dropMap();
  mainEl = h("main", { id: "main", tabindex: "-1" });
  app.replaceChildren(topbar(), mainEl, h("footer", { class: "kbd-help", text: t("kbd_help") }));
  if (v.view === "board") {
    mainEl.append(h("div", { id: "kpi-slot" }, kpiStrip(kpis)));
    const board = h("div", { id: "board-slot" });
    mainEl.append(board);
    renderBoard(board, v, () => { writeUrl(v); render(); });
  } else if (v.view === "map") {
    renderMap(mainEl, v, state.me.tile_url || null, () => overview()).catch((e) => mainEl.append(h("p", { class: "error", text: e.message })));
  } else if (v.view === "scorecards") {
    renderScorecards(mainEl, v.province.length === 1 ? v.province[0] : pickProvince(v), state.me.role);
  } else {
    renderHealth(mainEl, v.province.length === 1 ? v.province[0] : pickProvince(v));
  }
}

/** Beside the map: today's KPIs and the worst alert groups (alerts, map and KPIs on one screen). */
function overview() {
  const groups = groupAlerts([...state.alerts.values()].filter((a) => matchesFilters(a, v) && !isBackfilled(a)), v.group);
  return h("div", { class: "overview" }, kpiStrip(kpis),
    h("h3", { text: `${t("view_board")}: ${groups.length} ${t("groups")}` }),
    h("ul", { class: "compact top-groups" }, groups.slice(0, 8).map((g) => h("li", {},
      h("a", { href: "#", onclick: (e) => { e.preventDefault(); state.expanded.add(g.id); go("board"); } },
        h("span", { class: `sev sev-${["", "info", "warning", "critical"][g.worst]}`, text: t(["", "info", "warning", "critical"][g.worst]) }),
        ` ${g.values.join(" · ")} (${g.members.length})`)))));
}

/** Live updates re-render only what changed view needs, at most once a frame. */
const MIN_RENDER_GAP_MS = 250;
let lastLive = 0;

function queueRender() {
  if (renderQueued) return;
  renderQueued = true;
  const wait = Math.max(0, lastLive + MIN_RENDER_GAP_MS - performance.now());
  setTimeout(() => requestAnimationFrame(() => {
    renderQueued = false;
    lastLive = performance.now();
    if (!state.me) return;
    if (v.view === "board") {
      const board = document.getElementById("board-slot");
      const focused = document.activeElement?.closest?.("[data-group]")?.dataset.group;
      if (board && !document.querySelector("dialog[open]")) {
        renderBoard(board, v, () => { writeUrl(v); render(); }, true);
        if (focused) document.querySelector(`[data-group="${CSS.escape(focused)}"] .group-toggle`)?.focus();
      }
      const conn = document.querySelector(".conn");
      if (conn) { conn.dataset.stream = state.stream; }
    } else if (v.view === "map") recolour();
  }), wait);
}

document.addEventListener("ioc-dialog-closed", () => queueRender());

async function refreshAll() {
  await Promise.all([loadSilences(), loadBoard()]);
  queueRender();
}

async function loadBoard() {
  const b = await api("/v1/console/board");
  state.alerts.clear();
  state.truncated = !!b.truncated;
  for (const a of b.alerts) state.alerts.set(a.fingerprint, a);
  return b;
}

function onStatus(s) {
  state.stream = s;
  if (s === "unauthorized") { signout(); return; }
  const conn = document.querySelector(".conn");
  if (conn) { conn.dataset.stream = s; conn.className = `conn conn-${s}`; conn.textContent = { live: t("live"), reconnecting: t("reconnecting"), limited: t("limited") }[s] || s; }
}

function onEvent(ev) {
  if (ev.event !== "transition") return;
  const r = applyTransition(ev.data);
  if (r?.isNewCritical) {
    beep();
    const alarm = document.getElementById("alarm");
    if (alarm) alarm.textContent = `${t("new_critical", { n: 1 })}: ${ev.data.annotations?.[`summary_${v.lang}`] || ev.data.rule_id}`;
  }
  if (r && !isBackfilled(r.alert)) queueRender(); else if (r) queueRender();
  window.__iocConsole = Object.assign(window.__iocConsole || {}, { lastEventId: ev.id, events: (window.__iocConsole?.events || 0) + 1 });
}

async function start() {
  if (!getKey()) { signin(); return; }
  try {
    state.me = await api("/v1/console/me");
  } catch (e) {
    clearKey();
    signin(e instanceof ApiError && e.status === 401 ? t("bad_key") : `${t("failed")}: ${e.message}`);
    return;
  }
  setRerender(queueRender);
  setActionRefresh(() => { loadSilences().then(queueRender); });
  if (state.me.role === "department") { render(); return; }
  let snapshot;
  try { snapshot = await loadBoard(); } catch (e) { signin(`${t("failed")}: ${e.message}`); return; }
  await loadSilences();
  render();
  const province = pickProvince(v);
  loadCommunes(province).then(() => { if (v.view === "board") queueRender(); }).catch(() => {});
  loadKpis(province).then((k) => { kpis = k; const slot = document.getElementById("kpi-slot"); if (slot && k) slot.replaceChildren(kpiStrip(k)); });
  live = stream("/v1/alerts/stream", snapshot.as_of, onEvent, onStatus);
  setInterval(() => { if (state.me && state.me.role !== "department") loadSilences().then(queueRender); }, 30000);
  setInterval(() => {
    const now = Date.now();
    let changed = false;
    for (const [fp, at] of state.fresh) if (now - at > 5 * 60000) { state.fresh.delete(fp); changed = true; }
    if (changed) queueRender();
  }, 10000);
  setInterval(() => loadKpis(pickProvince(v)).then((k) => { kpis = k; const slot = document.getElementById("kpi-slot"); if (slot && k) slot.replaceChildren(kpiStrip(k)); }), 60000);
  window.__iocConsole = Object.assign(window.__iocConsole || {}, { refreshAll });
}

document.addEventListener("keydown", (e) => {
  if (!state.me || e.ctrlKey || e.metaKey || e.altKey) return;
  const tag = (e.target.tagName || "").toLowerCase();
  if (["input", "textarea", "select"].includes(tag) || document.querySelector("dialog[open]")) return;
  const views = state.me.role === "department" ? ["health"] : ["board", "map", "health", "scorecards"];
  if (/^[1-4]$/.test(e.key) && views[Number(e.key) - 1]) { go(views[Number(e.key) - 1]); e.preventDefault(); }
  else if (e.key === "w") { v.wall = !v.wall; writeUrl(v); render(); }
  else if (e.key === "l") toggleLang();
  else if (e.key === "/") { document.querySelector("#filters input, #filters select")?.focus(); e.preventDefault(); }
  else if (e.key === "j" || e.key === "k") {
    const toggles = [...document.querySelectorAll(".group-toggle")];
    if (!toggles.length) return;
    const i = toggles.indexOf(document.activeElement);
    const next = e.key === "j" ? Math.min(toggles.length - 1, i + 1) : Math.max(0, i - 1);
    toggles[next].focus(); e.preventDefault();
  }
});

start();
