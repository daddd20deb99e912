// The incidents' part of the store (store.js): every incident call of the console. Loaders
// write into `state` (`incidents`: the board's list, `incidentMap`: active incidents with
// their place, `incident`: the page's incident) and publish the topics `incidents` and
// `incident`. There is no incident stream: the session polls (`tick`) every few seconds,
// and after each action the page's incident is the server's answer itself.
import { api } from "./api.js";
import { state } from "./state.js";
import { publish } from "./store.js";

export const ACTIVE_STATES = Object.freeze(["open", "acknowledged", "in_progress"]);
export const ALL_STATES = Object.freeze([...ACTIVE_STATES, "resolved", "closed"]);
const POLL_MS = 5000;

/** What a key may do with incidents: read (every role but ingest keys), act (responders on
 * their department's, IOC operators and admins on all), move between departments (IOC). */
export function incidentRights(me) {
  const role = me?.role;
  return {
    read: ["responder", "viewer", "operator", "admin"].includes(role),
    act: ["responder", "operator", "admin"].includes(role),
    ioc: ["operator", "admin"].includes(role),
    scope: role === "responder" ? me.department : null,
  };
}

/** The department the "my department" tab shows: the key's, else the one chosen (IOC keys). */
export function tabDepartment(v, me = state.me) {
  return me?.department || v.idept || null;
}

function boardQuery(v) {
  const q = new URLSearchParams({ view: v.itab, limit: "500", location: "true" });
  for (const s of v.idone ? ALL_STATES : ACTIVE_STATES) q.append("state", s);
  if (v.itab === "department") {
    const d = tabDepartment(v);
    if (!d) return null;  // an IOC key has not chosen a department yet
    q.set("department", d);
  }
  return q;
}

/** The board's list for the tab of `v` (mine / department / all). */
export async function loadIncidents(v) {
  const q = boardQuery(v);
  let list;
  try {
    list = q ? await api(`/v1/incidents?${q}`) : { incidents: [], count: 0, needsDepartment: true };
  } catch (e) { list = { incidents: [], count: 0, error: e.message }; }
  if (!state.me) return null;  // signed out meanwhile
  list.tab = v.itab; list.done = v.idone; list.dept = v.idept; list.loadedAt = Date.now();
  state.incidents = list;
  publish("incidents");
  return list;
}

/** The active incidents the key may see, with the place of each (the map's layer). */
export async function loadIncidentMap() {
  const q = new URLSearchParams({ view: "all", limit: "1000", location: "true" });
  for (const s of ACTIVE_STATES) q.append("state", s);
  let rows;
  try { rows = (await api(`/v1/incidents?${q}`)).incidents; } catch { rows = []; }
  if (!state.me) return null;
  state.incidentMap = rows;
  publish("incidents");
  return rows;
}

/** One incident with its alerts, checklist, timeline, escalations and notifications. */
export async function loadIncident(id) {
  let inc;
  try { inc = await api(`/v1/incidents/${encodeURIComponent(id)}`); } catch (e) {
    inc = { id, error: e.message, status: e.status };
  }
  if (!state.me) return null;
  state.incident = inc;
  publish("incident");
  return inc;
}

function show(inc) {
  if (!state.me) return inc;
  state.incident = inc;
  publish("incident");
  return inc;
}

/** A state action (ack, start, resolve, close, reopen, note) with its note. */
export async function incidentAction(id, kind, note) {
  return show(await api(`/v1/incidents/${id}/${kind}`, { method: "POST", body: { note: note || null } }));
}

export async function assignIncident(id, { assignee, department, note }) {
  const body = { note: note || null };
  if (assignee) body.assignee = assignee;
  if (department) body.department = department;
  return show(await api(`/v1/incidents/${id}/assign`, { method: "POST", body }));
}

export async function setIncidentSeverity(id, severity, note) {
  return show(await api(`/v1/incidents/${id}/severity`, { method: "POST", body: { severity, note: note || null } }));
}

export async function stepDone(id, step, note, evidence) {
  return show(await api(`/v1/incidents/${id}/steps/${encodeURIComponent(step)}/done`,
    { method: "POST", body: { note: note || null, evidence: evidence || null } }));
}

export async function attachAlerts(id, kind, fingerprints) {
  return show(await api(`/v1/incidents/${id}/${kind === "detach" ? "detach" : "attach"}`,
    { method: "POST", body: { alerts: fingerprints } }));
}

/** Merges `sources` into `id`: the answer is `id` with their alerts. */
export async function mergeIncidents(id, sources, note) {
  return show(await api(`/v1/incidents/${id}/merge`, { method: "POST", body: { incidents: sources, note: note || null } }));
}

/** Moves `fingerprints` of `id` into a new incident; returns the new one (the caller
 * opens its page). */
export async function splitIncident(id, fingerprints, title, note) {
  return api(`/v1/incidents/${id}/split`, { method: "POST", body: { alerts: fingerprints, title: title || null, note: note || null } });
}

/** The incidents a merge may take: every one the key sees that is not closed. */
export async function mergeableIncidents() {
  const q = new URLSearchParams({ view: "all", limit: "500" });
  for (const s of ["open", "acknowledged", "in_progress", "resolved"]) q.append("state", s);
  return (await api(`/v1/incidents?${q}`)).incidents;
}

/** Opens an incident (from some alerts, or none with a title); returns it. */
export async function openIncident(body) {
  return show(await api("/v1/incidents", { method: "POST", body }));
}

/** The active alerts of the key's department (IOC keys: all), each with the incident that
 * holds it: the choices of the attach and open dialogs. */
export async function workspaceAlerts() {
  return (await api("/v1/workspace/alerts?limit=1000")).alerts;
}

/** A responder's sector: its department's active alerts, each with the incident holding
 * it (`state.sector`, topic `incidents`); IOC keys have the alert board instead. */
export async function loadSector() {
  let rows;
  try { rows = await workspaceAlerts(); } catch (e) { rows = { error: e.message }; }
  if (!state.me) return null;
  state.sector = rows;
  publish("incidents");
  return rows;
}

/** The periodic refresh: what the shown view draws from. */
export function tick(v) {
  if (!state.me || !incidentRights(state.me).read) return;
  if (v.view === "incidents" && v.incident) loadIncident(v.incident);
  else if (v.view === "incidents") {
    loadIncidents(v);
    if (state.me.role === "responder") loadSector();
  }
  else if (v.view === "map") loadIncidentMap();
}

export { POLL_MS };
