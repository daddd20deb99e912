// What the page knows: the alerts (snapshot + live transitions), who signed in, what the
// store loaded for the views, and the view settings kept in the URL (so a view can be
// bookmarked or put on the video wall). What came from the API is written by store.js
// only; the views write their own view state here (groups expanded, the sound toggle).

export const STATES = ["firing", "acknowledged", "pending", "resolved"];
export const ACTIVE = new Set(["pending", "firing", "acknowledged"]);
export const GROUP_LABELS = ["rule_id", "province_code", "commune_code", "severity", "domain", "team", "feed", "department", "source_id"];

export const state = {
  me: null,
  alerts: new Map(),      // fingerprint -> alert
  communes: new Map(),    // code -> {name, province_code, approximate}
  fresh: new Map(),       // fingerprint -> time it became a new critical
  silences: [],
  stream: "connecting",
  expanded: new Set(),
  truncated: false,       // the board answer was cut at its limit
  audit: [],              // this tab's actions with their audit entries, newest first
  kpis: null,             // headline KPIs of today for `kpisProvince` (store.loadKpis)
  kpisProvince: null,
  geo: null,              // the communes' GeoJSON of `geoProvince` (store.loadCommunes)
  geoProvince: undefined,
  feeds: null,            // feed health per department (store.loadFeeds)
  incidents: null,        // the incident board's list ({incidents, count, view}: incident_store.js)
  incidentMap: null,      // active incidents with their place, for the map
  incident: null,         // the incident page's incident with its timeline
  sector: null,           // a responder's department's active alerts (incident_store.js)
  reports: null,          // citizen reports: the list's pages (feedback_store.js)
  reportMap: null,        // open citizen reports as GeoJSON with per-commune counts
  feedbackKpis: null,     // the month's response KPIs of citizen reports
  sound: typeof sessionStorage !== "undefined" && sessionStorage.getItem("ioc.console.sound") === "1",
};

const DEFAULTS = { view: "board", group: "rule_id,province_code", lang: "vi", itab: "all" };

const FSTATUS = ["open", "all", "closed", "received", "assigned", "in_progress", "resolved", "rejected"];

export function readUrl() {
  const q = new URLSearchParams(location.search);
  const list = (k) => (q.get(k) || "").split(",").map((s) => s.trim()).filter(Boolean);
  return {
    view: q.get("view") || DEFAULTS.view,
    lang: q.get("lang") === "en" ? "en" : "vi",
    wall: q.get("wall") === "1",
    group: list("group").length ? list("group") : DEFAULTS.group.split(","),
    severity: list("severity"), state: list("state"), province: list("province"),
    commune: list("commune"), rule: list("rule"),
    // the incidents view: which tab, which department (IOC keys), closed ones too, one incident
    itab: ["mine", "department", "all"].includes(q.get("itab")) ? q.get("itab") : DEFAULTS.itab,
    idept: q.get("idept") || "", idone: q.get("idone") === "1", incident: Number(q.get("incident")) || null,
    // the citizen reports view: status filter (open by default), overdue only
    fstatus: FSTATUS.includes(q.get("fstatus")) ? q.get("fstatus") : "open", foverdue: q.get("foverdue") === "1",
  };
}

export function writeUrl(v) {
  const q = new URLSearchParams();
  if (v.view !== DEFAULTS.view) q.set("view", v.view);
  if (v.lang !== DEFAULTS.lang) q.set("lang", v.lang);
  if (v.wall) q.set("wall", "1");
  if (v.group.join(",") !== DEFAULTS.group) q.set("group", v.group.join(","));
  for (const k of ["severity", "state", "province", "commune", "rule"]) if (v[k].length) q.set(k, v[k].join(","));
  if (v.itab && v.itab !== DEFAULTS.itab) q.set("itab", v.itab);
  if (v.idept) q.set("idept", v.idept);
  if (v.idone) q.set("idone", "1");
  if (v.incident) q.set("incident", String(v.incident));
  if (v.fstatus && v.fstatus !== "open") q.set("fstatus", v.fstatus);
  if (v.foverdue) q.set("foverdue", "1");
  const s = q.toString();
  history.replaceState(null, "", location.pathname + (s ? `?${s}` : ""));
}

export function isBackfilled(a) {
  return a.backfilled === true || a.labels?.backfilled === "true" || a.annotations?.backfilled === "true";
}

export function labelOf(a, name) {
  if (name === "rule_id") return a.rule_id;
  if (name === "severity") return a.severity;
  if (name === "province_code") return a.province_code ?? a.labels?.province_code ?? "";
  if (name === "commune_code") return a.commune_code ?? a.labels?.commune_code ?? "";
  return a.labels?.[name] ?? "";
}

/** Fold one stored transition into the alert it belongs to (older seqs are ignored). */
export function applyTransition(t) {
  const prev = state.alerts.get(t.fingerprint);
  if (prev && t.seq < prev.seq) return null;
  const a = prev ? { ...prev } : {
    fingerprint: t.fingerprint, rule_id: t.rule_id, seq: 0, state: "inactive",
    commune_code: t.labels?.commune_code ?? null, province_code: t.labels?.province_code ?? null,
    acknowledged_by: null, acknowledged_at: null, resolved_at: null, started_at: t.at, firing_at: null,
  };
  a.seq = t.seq; a.severity = t.severity; a.labels = t.labels; a.annotations = t.annotations;
  a.updated_at = t.at;
  if (t.value !== null && t.value !== undefined) a.last_value = t.value;
  if (t.backfilled !== undefined) a.backfilled = t.backfilled;
  if (t.kind === "state") {
    a.state = t.to_state;
    if (t.to_state === "firing" && !a.firing_at) a.firing_at = t.at;
    if (t.from_state === "inactive" || t.from_state === "resolved") {
      a.started_at = t.at; a.acknowledged_by = null; a.acknowledged_at = null; a.resolved_at = null;
      if (t.to_state !== "firing") a.firing_at = null; else a.firing_at = t.at;
    }
    if (t.to_state === "acknowledged") { a.acknowledged_by = t.actor; a.acknowledged_at = t.at; }
    if (t.to_state === "resolved") a.resolved_at = t.at;
  }
  state.alerts.set(a.fingerprint, a);
  const wasFiring = prev && (prev.state === "firing" || prev.state === "acknowledged");
  const isNewCritical = t.kind === "state" && t.to_state === "firing" && t.severity === "critical"
    && !wasFiring && !isBackfilled(a);
  if (isNewCritical) state.fresh.set(a.fingerprint, Date.now());
  return { alert: a, isNewCritical };
}

export function matchesFilters(a, v) {
  if (v.severity.length && !v.severity.includes(a.severity)) return false;
  if (v.state.length ? !v.state.includes(a.state) : !ACTIVE.has(a.state)) return false;
  if (v.province.length && !v.province.includes(labelOf(a, "province_code"))) return false;
  if (v.commune.length && !v.commune.includes(labelOf(a, "commune_code"))) return false;
  if (v.rule.length && !v.rule.includes(a.rule_id)) return false;
  return true;
}

export function communeName(code) {
  if (!code) return "";
  return state.communes.get(code)?.name || code;
}

/** The province a view shows: the one filtered on, else the one with most active alerts. */
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
