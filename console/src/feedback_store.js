// The citizen reports' part of the store (store.js): every call of the reports view and of
// the feedback KPI strip. Loaders write into `state` (`reports`: the list's pages,
// `reportMap`: open reports as GeoJSON with per-commune counts, `feedbackKpis`: the month's
// response KPIs) and publish the topic `feedback`. What a key may read is decided by the
// API (a department key gets its own department's reports only), never here.
import { api } from "./api.js";
import { state } from "./state.js";
import { publish } from "./store.js";

const PAGE = 100;

/** Who reads reports: every signed-in role (the API scopes departments to their own). */
export function reportRights(me) {
  const role = me?.role;
  return { read: !!role, ioc: ["viewer", "operator", "admin"].includes(role), scope: me?.department || null };
}

/** The list's query for the view's filters (also the key that says the list is current). */
export function listQuery(v, province) {
  const q = new URLSearchParams({ limit: String(PAGE) });
  if (v.fstatus && v.fstatus !== "all") q.set("status", v.fstatus);
  if (v.foverdue) q.set("overdue", "true");
  if (province) q.set("province", province);
  return q;
}

/** The list's first page for the view's filters (`more`: append the next page). */
export async function loadReports(v, province, more = false) {
  const q = listQuery(v, province);
  const key = q.toString();
  const prev = state.reports;
  if (more) {
    if (!prev?.next || prev.key !== key) return;
    q.set("after", prev.next);
  }
  try {
    const r = await api(`/v1/feedback/console/reports?${q}`);
    if (!state.me) return;
    state.reports = { key, reports: more ? [...prev.reports, ...r.reports] : r.reports, next: r.next,
      counts: r.counts, scope: r.scope, as_of: r.as_of, error: null };
  } catch (e) {
    if (!state.me) return;
    state.reports = { key, reports: [], next: null, counts: null, scope: null, error: e.message };
  }
  publish("feedback");
}

/** Open reports on the map (points, overdue first, and the communes with counts). */
export async function loadReportMap(province) {
  try {
    const r = await api(`/v1/feedback/console/map${province ? `?province=${encodeURIComponent(province)}` : ""}`);
    if (!state.me) return;
    state.reportMap = { ...r, province };
  } catch (e) {
    if (!state.me) return;
    state.reportMap = { type: "FeatureCollection", features: [], province, error: e.message };
  }
  publish("feedback");
}

/** The month's response KPIs of a province (IOC keys) or of the key's department. */
export async function loadFeedbackKpis(province) {
  const q = province && !state.me?.department ? `?province=${encodeURIComponent(province)}` : "";
  try {
    const r = await api(`/v1/feedback/console/kpis${q}`);
    if (!state.me) return;
    state.feedbackKpis = r;
  } catch (e) {
    if (!state.me) return;
    state.feedbackKpis = { error: e.message };
  }
  publish("feedback");
}

/** The reporter's contact of one report (its department and admins only; else 404). */
export function loadContact(reportId) {
  return api(`/v1/feedback/reports/${encodeURIComponent(reportId)}/contact`);
}
