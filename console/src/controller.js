// Which view is shown and when it is drawn. Navigation and settings (kept in the URL)
// draw the frame and the view whole; a store topic the view subscribed to queues an
// update, at most one per 250 ms, so a burst of live transitions costs one redraw.
import { state, readUrl, writeUrl } from "./state.js";
import { subscribe, TOPICS } from "./store.js";
import { setRerender } from "./board.js";
import { beep } from "./live.js";
import { frame, showStream } from "./shell.js";
import { VIEWS, viewsOf } from "./views.js";

/** The view settings, read from the URL once and written back on every change. */
export const settings = readUrl();
const v = settings;

const MIN_UPDATE_GAP_MS = 250;
let current = null;   // the view drawn, null when signed out
let mainEl = null;
let onSignOut = () => {};
const dirty = new Set();
let queued = false;
let lastUpdate = 0;

const ctx = {
  settingsChanged: () => { writeUrl(v); render(); },
  openGroup: (id) => { state.expanded.add(id); go("board"); },
};

const actions = {
  go: (name) => go(name),
  toggleSound,
  toggleWall,
  toggleLang,
  signOut: () => onSignOut(),
};

/** Shows the views of the signed-in key; `signOut` is what the top bar's button does. */
export function mount(signOut) {
  onSignOut = signOut;
  current = null;
  render();
}

/** Signed out: the view lets go of what it holds (the Leaflet map), nothing is drawn. */
export function unmount() {
  if (current) VIEWS[current].leave?.();
  current = null; mainEl = null;
  dirty.clear();
}

export function render() {
  if (!state.me) return;
  const views = viewsOf(state.me);
  if (!views.includes(v.view)) v.view = views[0];
  const entering = current !== v.view;
  if (entering && current) VIEWS[current].leave?.();
  current = v.view;
  dirty.clear();
  mainEl = frame(v, views, actions);
  const view = VIEWS[current];
  view.render(mainEl, v, ctx);
  if (entering) view.enter?.(v);
}

export function go(view) { v.view = view; if (view === "incidents") v.incident = null; writeUrl(v); render(); }
export function toggleLang() { v.lang = v.lang === "vi" ? "en" : "vi"; writeUrl(v); render(); }
export function toggleWall() { v.wall = !v.wall; writeUrl(v); render(); }
export function toggleSound() {
  state.sound = !state.sound;
  sessionStorage.setItem("ioc.console.sound", state.sound ? "1" : "0");
  if (state.sound) beep();
  render();
}

function flush() {
  queued = false;
  lastUpdate = performance.now();
  if (!current || !mainEl) { dirty.clear(); return; }
  const view = VIEWS[current];
  const topics = new Set([...dirty].filter((x) => view.topics.includes(x)));
  if (!topics.size) { dirty.clear(); return; }
  if (view.update(mainEl, v, topics, ctx) !== false) dirty.clear();
}

/** A topic changed: redraw what the shown view draws from it, soon. */
export function queueUpdate(topic) {
  if (topic === "stream") { showStream(); return; }
  dirty.add(topic);
  if (queued) return;
  queued = true;
  const wait = Math.max(0, lastUpdate + MIN_UPDATE_GAP_MS - performance.now());
  setTimeout(() => requestAnimationFrame(flush), wait);
}

for (const topic of TOPICS) subscribe(topic, queueUpdate);
setRerender(() => queueUpdate("ui"));  // the board's own state: groups expanded, shown more
document.addEventListener("ioc-dialog-closed", () => { if (dirty.size) queueUpdate([...dirty][0]); });
