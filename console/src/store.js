// Every read from the API and every write goes through here; views never fetch. A loader
// writes what it got into `state` and publishes its topic; a view draws from `state` and
// is redrawn when a topic it subscribed to changes (controller.js wires that). Dialogs
// (an alert's detail, a commune's drill-down) ask here for their data on demand.
import { api } from "./api.js";
import { state, applyTransition } from "./state.js";

/** Topics a view may subscribe to, one per kind of data the store holds. */
export const TOPICS = Object.freeze(["alerts", "silences", "audit", "kpis", "communes", "feeds", "stream", "incidents", "incident", "feedback"]);

const subscribers = new Map(TOPICS.map((topic) => [topic, new Set()]));

/** Calls fn(topic) after each change of `topic`; returns the unsubscribe function. */
export function subscribe(topic, fn) {
  const set = subscribers.get(topic);
  if (!set) throw new Error(`unknown topic ${topic}`);
  set.add(fn);
  return () => set.delete(fn);
}

export function publish(topic) {
  for (const fn of [...subscribers.get(topic)]) fn(topic);
}

// ------------------------------------------------------------------- who and the board
export async function loadMe() {
  state.me = await api("/v1/console/me");
  return state.me;
}

/** The board snapshot; returns the database clock it was read at (the stream's start). */
export async function loadBoard() {
  const b = await api("/v1/console/board");
  state.alerts.clear();
  state.truncated = !!b.truncated;
  for (const a of b.alerts) state.alerts.set(a.fingerprint, a);
  publish("alerts");
  return b.as_of;
}

/** One transition from the live stream folded into the board. */
export function applyLive(transition) {
  const r = applyTransition(transition);
  if (r) publish("alerts");
  return r;
}

export function setStream(status) {
  state.stream = status;
  publish("stream");
}

export async function loadSilences() {
  try { state.silences = await api("/v1/silences"); } catch { state.silences = []; }
  publish("silences");
}

// ------------------------------------------------------------------------------- KPIs
const KPI_ORDER = ["online_share", "on_time_share", "resolved_online_share", "paid_online_share", "digitised_share"];
let tieredMissing = false;

function vnToday() {
  return new Intl.DateTimeFormat("en-CA", { timeZone: "Asia/Ho_Chi_Minh" }).format(new Date());
}

/** Today's KPIs by tier from the KPI API (`GET /v1/kpis`, when the server has it), in the
 * shape of `/v1/console/kpis` plus `tiers` per KPI; null when the API is absent. */
async function loadTiered(province) {
  if (tieredMissing || !province) return null;
  const day = vnToday();
  try {
    const r = await api(`/v1/kpis?scope=province&province=${encodeURIComponent(province)}&grain=day&from=${day}&to=${day}`);
    const periods = r.periods.filter((p) => p.period === day);
    const all = periods.find((p) => p.tier === "all");
    if (!all) return null;  // no dossier today by tier: the rollups may still know the shares
    return {
      province, day, dossiers_received: all.kpis.online_share?.denominator ?? null,
      kpis: KPI_ORDER.map((k) => {
        const v = all.kpis[k] || {};
        return { kpi: k, value: v.value, target: v.target, previous: v.previous,
          met: v.value === null || v.value === undefined || v.target === null || v.target === undefined ? null : v.value >= v.target,
          tiers: periods.filter((p) => p.tier !== "all" && p.kpis[k]).map((p) => ({ tier: p.tier, value: p.kpis[k].value, target: p.kpis[k].target })) };
      }),
    };
  } catch (e) {
    if (e.status === 404) tieredMissing = true;
    return null;
  }
}

/** The province's headline KPIs of today (tiered when the server can, else the console's). */
export async function loadKpis(province) {
  let k = await loadTiered(province);
  if (!k) {
    try { k = await api(`/v1/console/kpis${province ? `?province=${encodeURIComponent(province)}` : ""}`); } catch { k = null; }
  }
  if (!state.me) return null;  // signed out meanwhile
  state.kpis = k;
  state.kpisProvince = province;
  publish("kpis");
  return k;
}

// ---------------------------------------------------------------------------- communes
const namesLoaded = new Set();
let geoWanted;

function rememberNames(geo, province) {
  for (const f of geo.features) {
    const p = f.properties;
    state.communes.set(p.code, { name: p.name, province_code: p.province_code, province_name: p.province_name, approximate: p.approximate });
  }
  namesLoaded.add(province ?? "*");
}

function communesOf(province) {
  return api(`/v1/geo/communes${province ? `?province=${encodeURIComponent(province)}` : ""}`);
}

/** The province's communes for the map (and their names for every view). */
export async function loadCommunes(province) {
  geoWanted = province;
  const geo = await communesOf(province);
  if (geoWanted !== province || !state.me) return state.geo;  // another province asked meanwhile
  rememberNames(geo, province);
  state.geo = geo;
  state.geoProvince = province;
  publish("communes");
  return geo;
}

/** Commune names of these provinces, loaded once each (a dialog naming communes the map
 * has not loaded: an alert of another province). */
export async function ensureCommuneNames(provinces) {
  const missing = [...new Set(provinces.filter((p) => p && !namesLoaded.has(p)))];
  if (!missing.length) return;
  const loaded = await Promise.all(missing.map((p) => communesOf(p).then((g) => [p, g]).catch(() => null)));
  if (!state.me) return;
  for (const x of loaded) if (x) rememberNames(x[1], x[0]);
  publish("communes");
}

// ------------------------------------------------------------------------ feed health
export async function loadFeeds() {
  let feeds;
  try { feeds = await api("/v1/console/feeds"); } catch (e) { feeds = { error: e.message }; }
  if (!state.me) return null;
  state.feeds = feeds;
  publish("feeds");
  return feeds;
}

// ------------------------------------------------------------- on demand, for dialogs
export async function alertDetail(fingerprint) {
  const fp = encodeURIComponent(fingerprint);
  const [detail, series] = await Promise.all([
    api(`/v1/alerts/${fp}`),
    api(`/v1/console/alerts/${fp}/series`).catch(() => null)]);
  return { detail, series };
}

export function communeDrill(code) {
  return api(`/v1/console/communes/${encodeURIComponent(code)}`);
}

export function previewSilence(matchers) {
  return api("/v1/console/silences/preview", { method: "POST", body: { matchers } });
}

/** The newest audit entry of one target (an alert's fingerprint, `silence/ID`). */
export async function auditOf(target) {
  try {
    const rows = await api(`/v1/console/audit?target=${encodeURIComponent(target)}&limit=1`);
    return rows[0] || null;
  } catch { return null; }
}

// ------------------------------------------------------------------------------ writes
/** The audit entry an action wrote, kept in this tab's recent list. */
function rememberAudit(entry) {
  if (!entry) return;
  state.audit.unshift(entry);
  state.audit.length = Math.min(state.audit.length, 50);
  publish("audit");
}

/** Acknowledge or resolve alerts one by one; stops at the first 403 (the key may not act).
 * Returns how many were done, the errors and the audit entry of the last one done. */
export async function actOnAlerts(kind, alerts, note, progress = () => {}) {
  const path = kind === "ack" ? "ack" : "resolve";
  let ok = 0; let last = null; const errors = [];
  for (const a of alerts) {
    try {
      await api(`/v1/alerts/${encodeURIComponent(a.fingerprint)}/${path}`, { method: "POST", body: { note: note || null } });
      ok += 1; last = a;
    } catch (err) { errors.push(err); if (err.status === 403) break; }
    progress(ok);
  }
  const entry = last ? await auditOf(last.fingerprint) : null;
  rememberAudit(entry);
  return { ok, errors, entry };
}

export async function createSilence(matchers, duration, comment) {
  const s = await api("/v1/silences", { method: "POST", body: { matchers, duration, comment } });
  const entry = await auditOf(`silence/${s.id}`);
  rememberAudit(entry);
  await loadSilences();
  return { silence: s, entry };
}

export async function expireSilence(id) {
  await api(`/v1/silences/${id}`, { method: "DELETE" });
  const entry = await auditOf(`silence/${id}`);
  rememberAudit(entry);
  await loadSilences();
  return entry;
}

/** Forget everything the signed-in key loaded (sign-out). */
export function reset() {
  state.me = null;
  state.alerts.clear(); state.fresh.clear(); state.expanded.clear();
  state.silences = []; state.audit = []; state.truncated = false;
  state.kpis = null; state.kpisProvince = null; state.feeds = null;
  state.geo = null; state.geoProvince = undefined; geoWanted = undefined;
  state.stream = "connecting";
  state.incidents = null; state.incidentMap = null; state.incident = null; state.sector = null;
  state.reports = null; state.reportMap = null; state.feedbackKpis = null;
  for (const topic of TOPICS) publish(topic);
}
