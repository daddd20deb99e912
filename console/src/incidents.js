// The incident board: tabs mine / my department / all, counts by state and overdue, one
// row per incident with its severity, state, owner department, assignee, age and SLA
// deadlines (missed ones highlighted). Drawn from `state.incidents` (incident_store.js).
import { h } from "./dom.js";
import { t, fmtTime, getLang } from "./i18n.js";
import { state } from "./state.js";
import { SEV_RANK } from "./severity.js";
import { ACTIVE_STATES, ALL_STATES, incidentRights } from "./incident_store.js";
import { openFromAlert, openNewIncident } from "./incident_actions.js";
import "./incident_texts.js";

/** A duration in words: minutes, hours and minutes, days and hours. */
export function span(ms) {
  const m = Math.max(0, Math.floor(ms / 60000));
  if (m < 60) return t("ago_min", { n: m });
  if (m < 1440) return t("ago_h", { h: Math.floor(m / 60), m: m % 60 });
  return t("ago_d", { d: Math.floor(m / 1440), h: Math.floor((m % 1440) / 60) });
}

/** Which deadlines of an incident are missed now (the server's `overdue` is either). */
export function missed(inc, now = Date.now()) {
  const active = ACTIVE_STATES.includes(inc.state);
  return {
    ack: active && !inc.acknowledged_at && !!inc.ack_due_at && now > Date.parse(inc.ack_due_at),
    resolve: active && !!inc.resolve_due_at && now > Date.parse(inc.resolve_due_at),
  };
}

/** A deadline cell: the time, and how long is left or how late it is. */
export function deadline(iso, late, met) {
  if (!iso) return h("span", { text: "—" });
  const d = Date.parse(iso) - Date.now();
  return h("span", { class: late ? "deadline late" : "deadline" },
    h("time", { datetime: iso, text: fmtTime(iso) }),
    met ? null : h("span", { class: "deadline-left", text: late ? `${t("overdue")}: ${t("late", { t: span(-d) })}` : t("left", { t: span(d) }) }));
}

/** Counts of a list: per state, overdue, per severity. */
export function countsOf(rows) {
  const by = Object.fromEntries(ALL_STATES.map((s) => [s, 0]));
  let overdue = 0;
  for (const r of rows) {
    by[r.state] = (by[r.state] || 0) + 1;
    const m = missed(r);
    if (r.overdue || m.ack || m.resolve) overdue += 1;
  }
  return { by, overdue, total: rows.length };
}

/** Worst first, then the most overdue, then the newest activity. */
export function sortIncidents(rows) {
  return [...rows].sort((a, b) => (SEV_RANK[b.severity] || 0) - (SEV_RANK[a.severity] || 0)
    || Number(!!b.overdue) - Number(!!a.overdue)
    || String(b.updated_at).localeCompare(String(a.updated_at)) || b.id - a.id);
}

function tabs(v, settingsChanged) {
  const ioc = !state.me.department;
  const names = ["mine", "department", "all"];
  return h("div", { class: "itabs", role: "tablist", "aria-label": t("incidents_title") }, names.map((name) =>
    h("button", { class: "btn itab", type: "button", role: "tab", "aria-selected": String(v.itab === name), dataset: { itab: name },
      onclick: () => { v.itab = name; settingsChanged(); } },
    t(name === "department" && ioc ? "itab_department_ioc" : `itab_${name}`))));
}

function departmentChooser(v, settingsChanged) {
  if (v.itab !== "department" || state.me.department) return null;
  const known = new Set((state.incidentMap || []).map((r) => r.department));
  for (const r of state.incidents?.incidents || []) known.add(r.department);
  if (v.idept) known.add(v.idept);
  const sel = h("select", { id: "idept", onchange: (e) => { v.idept = e.target.value; settingsChanged(); } },
    h("option", { value: "", text: t("choose_dept") }),
    [...known].sort().map((d) => h("option", { value: d, selected: d === v.idept, text: d })));
  return h("label", { class: "field" }, t("department"), sel);
}

function summary(list) {
  const c = countsOf(list.incidents);
  return h("ul", { class: "icounts", "aria-label": t("count") },
    h("li", { class: "icount total" }, h("strong", { text: String(c.total) }), ` ${t("view_incidents").toLowerCase()}`),
    ALL_STATES.filter((s) => c.by[s] || ACTIVE_STATES.includes(s)).map((s) =>
      h("li", { class: `icount ist-${s}`, dataset: { state: s } }, h("strong", { text: String(c.by[s]) }), ` ${t(s)}`)),
    h("li", { class: c.overdue ? "icount overdue" : "icount", dataset: { state: "overdue" } },
      h("strong", { text: String(c.overdue) }), ` ${t("overdue").toLowerCase()}`));
}

function row(inc, openIncident) {
  const m = missed(inc);
  const late = inc.overdue || m.ack || m.resolve;
  const open = (e) => { e.preventDefault(); openIncident(inc.id); };
  return h("tr", { class: `irow sev-line-${inc.severity}${late ? " overdue" : ""}`, dataset: { incident: inc.id, state: inc.state } },
    h("td", { "data-label": t("incident") },
      h("a", { href: `?view=incidents&incident=${inc.id}`, class: "ititle", onclick: open }, `#${inc.id} ${inc.title}`),
      h("span", { class: "isub muted", text: [inc.rule_id, inc.province_code, `${t("steps")} ${inc.steps || "0/0"}`, `${inc.alerts} ${t("alerts")}`].filter(Boolean).join(" · ") })),
    h("td", { "data-label": t("severity") }, h("span", { class: `sev sev-${inc.severity}`, text: t(inc.severity) })),
    h("td", { "data-label": t("state") }, h("span", { class: `ist ist-${inc.state}`, text: t(inc.state) }),
      late ? h("span", { class: "tag overdue-tag", text: t("overdue") }) : null),
    h("td", { "data-label": t("owner_dept"), text: inc.department }),
    h("td", { "data-label": t("assignee"), class: inc.assignee ? "" : "muted", text: inc.assignee || t("unassigned") }),
    h("td", { "data-label": t("age"), title: fmtTime(inc.opened_at), text: span(Date.now() - Date.parse(inc.opened_at)) }),
    h("td", { "data-label": t("ack_due") }, deadline(inc.ack_due_at, m.ack, !!inc.acknowledged_at || !ACTIVE_STATES.includes(inc.state))),
    h("td", { "data-label": t("resolve_due") }, deadline(inc.resolve_due_at, m.resolve, !ACTIVE_STATES.includes(inc.state))));
}

/** The map's markers: one per incident with a place, worst drawn last (on top). */
export function incidentMarkers(rows) {
  return (rows || []).filter((r) => Array.isArray(r.location) && r.location.length === 2)
    .sort((a, b) => (SEV_RANK[a.severity] || 0) - (SEV_RANK[b.severity] || 0) || a.id - b.id)
    .map((r) => ({ id: r.id, lat: r.location[0], lon: r.location[1], severity: r.severity,
      radius: 6 + 3 * (SEV_RANK[r.severity] || 0), title: `#${r.id} ${r.title}`, overdue: !!r.overdue }));
}

/** A responder's sector: its department's active alerts; those no incident holds can
 * open one, the others link to theirs. */
function sector(openIncident, canAct) {
  const rows = state.sector;
  if (!rows) return null;
  const body = rows.error ? h("p", { class: "error", text: `${t("failed")}: ${rows.error}` })
    : !rows.length ? h("p", { class: "muted", text: t("empty") })
      : h("ul", { class: "compact sector", id: "sector-alerts" }, rows.map((a) => h("li", { dataset: { fp: a.fingerprint } },
        h("span", { class: `sev sev-${a.severity}`, text: t(a.severity) }),
        h("span", { text: ` ${a.annotations?.[`summary_${getLang()}`] || a.rule_id} · ${t(a.state)} · ${fmtTime(a.firing_at || a.started_at)} ` }),
        a.incident_id
          ? h("a", { href: `?view=incidents&incident=${a.incident_id}`, onclick: (e) => { e.preventDefault(); openIncident(a.incident_id); } },
            t("in_incident", { id: a.incident_id }))
          : canAct ? h("button", { class: "btn", type: "button", dataset: { openFrom: a.fingerprint },
            onclick: () => openFromAlert(a, (inc) => openIncident(inc.id)) }, t("open_incident")) : null)));
  return h("section", { class: "panel isection sector-panel", "aria-labelledby": "sector-title" },
    h("h3", { id: "sector-title", text: `${t("sector_alerts")} (${rows.length ?? 0})` }), body);
}

/** The board, whole (navigation, a tab changed, a poll answered). */
export function renderIncidentBoard(root, v, settingsChanged, openIncident) {
  const list = state.incidents;
  const rights = incidentRights(state.me);
  const head = h("div", { class: "board-head iboard-head" },
    h("h2", { text: t("incidents_title") }), tabs(v, settingsChanged), departmentChooser(v, settingsChanged),
    h("label", { class: "check" }, h("input", { type: "checkbox", id: "idone", checked: v.idone,
      onchange: (e) => { v.idone = e.target.checked; settingsChanged(); } }), ` ${t("show_done")}`),
    rights.act ? h("button", { class: "btn primary", type: "button", id: "open-incident",
      onclick: () => openNewIncident((inc) => openIncident(inc.id)) }, t("open_incident")) : null);
  const parts = [head];
  if (!rights.act) parts.push(h("p", { class: "muted", text: t("read_only") }));
  if (state.me.department && rights.scope) parts.push(h("p", { class: "muted", text: `${t("department")}: ${rights.scope}` }));
  if (!list || list.tab !== v.itab || list.done !== v.idone || list.dept !== v.idept) {
    parts.push(h("p", { class: "muted", "aria-busy": "true", text: "…" }));
  } else if (list.error) {
    parts.push(h("p", { class: "error", text: `${t("failed")}: ${list.error}` }));
  } else if (list.needsDepartment) {
    parts.push(h("p", { class: "muted", text: t("choose_dept") }));
  } else {
    parts.push(summary(list));
    const rows = sortIncidents(list.incidents);
    parts.push(rows.length ? h("div", { class: "table-wrap" }, h("table", { class: "table stacked incidents", id: "incident-table" },
      h("thead", {}, h("tr", {}, [t("incident"), t("severity"), t("state"), t("owner_dept"), t("assignee"), t("age"), t("ack_due"), t("resolve_due")]
        .map((x) => h("th", { scope: "col", text: x })))),
      h("tbody", {}, rows.map((r) => row(r, openIncident)))))
      : h("p", { class: "empty", text: t("no_incidents") }));
  }
  if (state.me.role === "responder") parts.push(sector(openIncident, rights.act));
  root.replaceChildren(h("section", { class: "iboard", "aria-labelledby": "iboard-title" }, ...parts));
  root.querySelector("h2").id = "iboard-title";
}
