// The live alert board: alerts grouped by a chosen label set (Karma's habit), each group
// with its count, worst severity, state mix, communes and the labels all members share.
import { h } from "./dom.js";
import { t, fmtTime, fmtNum } from "./i18n.js";
import {
  state, STATES, GROUP_LABELS, labelOf, matchesFilters, isBackfilled, communeName,
} from "./state.js";
import { SEVERITIES, SEV_RANK, levelName } from "./severity.js";
import { alertMatchers, openAction, openSilence, silencesPanel } from "./actions.js";
import { openDetail } from "./detail.js";
import { diagnostics } from "./diagnostics.js";

const MEMBERS_SHOWN = 100;
const shownMore = new Map();

/** Group alerts: O(n) over the alerts; groups ordered worst severity, then size. */
export function groupAlerts(alerts, keys) {
  const groups = new Map();
  for (const a of alerts) {
    const values = keys.map((k) => labelOf(a, k));
    const id = values.join("\u241f");
    let g = groups.get(id);
    if (!g) {
      g = { id, keys, values, members: [], worst: 0, states: {}, communes: new Set() };
      groups.set(id, g);
    }
    g.members.push(a);
    g.worst = Math.max(g.worst, SEV_RANK[a.severity] || 0);
    g.states[a.state] = (g.states[a.state] || 0) + 1;
    const c = labelOf(a, "commune_code");
    if (c) g.communes.add(c);
  }
  for (const g of groups.values()) g.shared = sharedLabels(g.members, keys);
  return [...groups.values()].sort((x, y) => y.worst - x.worst || y.members.length - x.members.length
    || x.id.localeCompare(y.id));
}

function sharedLabels(members, keys) {
  const first = members[0].labels || {};
  const out = {};
  for (const [k, v] of Object.entries(first)) {
    if (keys.includes(k) || (k === "alertname" && keys.includes("rule_id"))) continue;
    if (members.every((m) => (m.labels || {})[k] === v)) out[k] = v;
  }
  return out;
}

function sevBadge(sev) {
  return h("span", { class: `sev sev-${sev}` }, t(sev));
}

function stateMix(states) {
  return h("span", { class: "mix" }, STATES.filter((s) => states[s]).map((s) =>
    h("span", { class: `st st-${s}`, title: t(s) }, `${t(s)} ${states[s]}`)));
}

function groupTitle(g) {
  return g.keys.map((k, i) => {
    const v = g.values[i];
    if (k === "commune_code") return communeName(v) || "—";
    if (k === "severity") return t(v);
    return v || "—";
  }).join(" · ");
}

function summary(a) {
  const lang = document.documentElement.lang === "en" ? "en" : "vi";
  return a.annotations?.[`summary_${lang}`] || a.annotations?.summary_vi || a.annotations?.summary || a.rule_id;
}

function alertRow(a, canAct) {
  const fresh = state.fresh.has(a.fingerprint);
  const back = isBackfilled(a);
  return h("li", { class: `alert sev-line-${a.severity}${fresh ? " fresh" : ""}${back ? " backfilled" : ""}`,
    dataset: { fp: a.fingerprint, state: a.state } },
  h("div", { class: "alert-main" },
    sevBadge(a.severity), h("span", { class: `st st-${a.state}` }, t(a.state)),
    back ? h("span", { class: "tag history", text: t("backfilled") }) : null,
    h("span", { class: "alert-text", text: summary(a) })),
  h("div", { class: "alert-meta" },
    h("span", { text: communeName(labelOf(a, "commune_code")) || labelOf(a, "province_code") }),
    h("span", { text: `${t("value")}: ${fmtNum(a.last_value, 2)}` }),
    h("span", { text: `${t("updated")}: ${fmtTime(a.updated_at)}` }),
    a.acknowledged_by ? h("span", { text: `${t("acknowledged")}: ${a.acknowledged_by}` }) : null),
  h("div", { class: "alert-actions" },
    h("button", { class: "btn ghost", type: "button", onclick: () => openDetail(a.fingerprint) }, t("details")),
    canAct && a.state === "firing" ? h("button", { class: "btn", type: "button", "data-action": "ack",
      onclick: () => openAction("ack", [a]) }, t("ack")) : null,
    canAct && a.state !== "resolved" ? h("button", { class: "btn", type: "button", "data-action": "resolve",
      onclick: () => openAction("resolve", [a]) }, t("resolve")) : null,
    canAct ? h("button", { class: "btn ghost", type: "button", "data-action": "silence",
      onclick: () => openSilence(alertMatchers(a)) }, t("silence")) : null));
}

function groupMatchers(g) {
  const m = [];
  g.keys.forEach((k, i) => { if (g.values[i]) m.push(`${k === "rule_id" ? "alertname" : k}="${g.values[i]}"`); });
  for (const [k, v] of Object.entries(g.shared)) if (!m.some((x) => x.startsWith(`${k}=`))) m.push(`${k}="${v}"`);
  return m;
}

function groupEl(g, canAct) {
  const open = state.expanded.has(g.id);
  const sev = g.worst ? levelName(g.worst) : "info";
  const bodyId = `g-${hash(g.id)}`;
  const freshN = g.members.filter((a) => state.fresh.has(a.fingerprint)).length;
  const communes = [...g.communes];
  const toggle = h("button", { class: "group-toggle", type: "button", "aria-expanded": String(open),
    "aria-controls": bodyId, onclick: () => { if (open) state.expanded.delete(g.id); else state.expanded.add(g.id); rerender(); } },
  h("span", { class: "chev", "aria-hidden": "true" }, open ? "▾" : "▸"),
  sevBadge(sev),
  h("span", { class: "group-title", text: groupTitle(g) }),
  h("span", { class: "count", "aria-label": `${g.members.length} ${t("alerts")}` }, String(g.members.length)),
  freshN ? h("span", { class: "tag fresh-tag" }, t("new_critical", { n: freshN })) : null);
  const firing = g.members.filter((a) => a.state === "firing");
  const open_ = g.members.filter((a) => a.state !== "resolved");
  const head = h("div", { class: "group-head" }, toggle,
    h("div", { class: "group-info" },
      stateMix(g.states),
      communes.length === 0 ? null : h("span", { class: "communes", title: communes.map(communeName).join(", ") },
        `${t("communes")}: ${communes.slice(0, 6).map(communeName).join(", ")}${communes.length > 6 ? ` +${communes.length - 6}` : ""}`),
      Object.keys(g.shared).length ? h("span", { class: "shared" }, `${t("shared_labels")}: `,
        Object.entries(g.shared).filter(([k]) => k !== "severity").map(([k, v]) => h("code", { class: "label" }, `${k}=${v}`))) : null),
    canAct ? h("div", { class: "group-actions" },
      firing.length ? h("button", { class: "btn", type: "button", "data-action": "ack-group", onclick: () => openAction("ack", firing) },
        `${t("ack_group")} (${firing.length})`) : null,
      open_.length ? h("button", { class: "btn", type: "button", "data-action": "resolve-group", onclick: () => openAction("resolve", open_) },
        `${t("resolve_group")} (${open_.length})`) : null,
      h("button", { class: "btn ghost", type: "button", "data-action": "silence-group", onclick: () => openSilence(groupMatchers(g)) },
        t("silence_group"))) : null);
  let body = null;
  if (open) {
    const limit = shownMore.get(g.id) || MEMBERS_SHOWN;
    const members = [...g.members].sort((x, y) => (SEV_RANK[y.severity] - SEV_RANK[x.severity])
      || String(y.updated_at).localeCompare(String(x.updated_at)));
    body = h("ul", { class: "members", id: bodyId }, members.slice(0, limit).map((a) => alertRow(a, canAct)),
      members.length > limit ? h("li", {}, h("button", { class: "btn ghost", type: "button",
        onclick: () => { shownMore.set(g.id, limit + MEMBERS_SHOWN * 5); rerender(); } },
      t("show_more", { n: Math.min(members.length - limit, MEMBERS_SHOWN * 5) }))) : null);
  }
  return h("section", { class: `group sev-line-${sev}${freshN ? " fresh" : ""}`, dataset: { group: g.id },
    "aria-label": groupTitle(g) }, head, body);
}

function hash(s) { let x = 0; for (let i = 0; i < s.length; i++) x = (x * 31 + s.charCodeAt(i)) | 0; return (x >>> 0).toString(36); }

let rerender = () => {};
export function setRerender(fn) { rerender = fn; }

function filterBar(v, onChange) {
  const all = [...state.alerts.values()];
  const uniq = (k) => [...new Set(all.map((a) => labelOf(a, k)).filter(Boolean))].sort();
  const checks = (name, options, chosen) => h("fieldset", { class: "checks" }, h("legend", { text: t(name) }),
    options.map((o) => h("label", {}, h("input", { type: "checkbox", name, value: o, checked: chosen.includes(o),
      onchange: (e) => { const set = new Set(v[name]); if (e.target.checked) set.add(o); else set.delete(o); v[name] = [...set]; onChange(); } }), t(o))));
  const select = (name, options, label = (x) => x) => {
    const id = `f-${name}`;
    return h("div", { class: "field" }, h("label", { for: id, text: t(name) }),
      h("select", { id, name, onchange: (e) => { v[name] = e.target.value ? [e.target.value] : []; onChange(); } },
        h("option", { value: "" }, t("any")),
        [...new Set([...options, ...v[name]])].map((o) => h("option", { value: o, selected: v[name].includes(o) }, label(o)))));
  };
  const groupSel = h("fieldset", { class: "checks group-by" }, h("legend", { text: t("group_by") }),
    GROUP_LABELS.map((k) => h("label", {}, h("input", { type: "checkbox", value: k, checked: v.group.includes(k),
      onchange: (e) => { const list = v.group.filter((x) => x !== k); if (e.target.checked) list.push(k);
        v.group = list.length ? list : ["rule_id"]; state.expanded.clear(); onChange(); } }), k)));
  return h("form", { class: "filters", id: "filters", "aria-label": t("filters"), onsubmit: (e) => e.preventDefault() },
    checks("severity", SEVERITIES, v.severity), checks("state", STATES, v.state),
    select("province", uniq("province_code")),
    select("commune", uniq("commune_code"), (c) => `${communeName(c)} (${c})`),
    select("rule", uniq("rule_id")),
    groupSel,
    h("button", { class: "btn ghost", type: "button", onclick: () => { for (const k of ["severity", "state", "province", "commune", "rule"]) v[k] = []; onChange(); } }, t("clear_filters")));
}

export function renderBoard(root, v, onChange, live = false) {
  const t0 = performance.now();
  const canAct = !!state.me?.can_act;
  const visible = [];
  const history = [];
  const anyState = { ...v, state: v.state.length ? v.state : STATES };
  for (const a of state.alerts.values()) {
    if (isBackfilled(a)) { if (matchesFilters(a, anyState)) history.push(a); }
    else if (matchesFilters(a, v)) visible.push(a);
  }
  const groups = groupAlerts(visible, v.group);
  const freshTotal = [...state.fresh.keys()].filter((fp) => state.alerts.get(fp)?.state === "firing").length;
  const body = h("div", { class: "board-body" },
    state.truncated ? h("div", { class: "banner", role: "status" }, t("truncated")) : null,
    freshTotal ? h("div", { class: "banner critical", role: "alert" }, t("new_critical", { n: freshTotal }),
      h("button", { class: "btn", type: "button", onclick: () => { state.fresh.clear(); rerender(); } }, t("dismiss"))) : null,
    h("div", { class: "board-head" },
      h("h2", { id: "board-title" }, `${visible.length} ${t("alerts")} · ${groups.length} ${t("groups")}`),
      h("button", { class: "btn ghost", type: "button", onclick: () => { for (const g of groups) state.expanded.add(g.id); rerender(); } }, t("expand_all")),
      h("button", { class: "btn ghost", type: "button", onclick: () => { state.expanded.clear(); rerender(); } }, t("collapse_all")),
      canAct ? null : h("span", { class: "note", text: t("viewer_note") })),
    h("div", { class: "groups", role: "list", "aria-labelledby": "board-title" },
      groups.length ? groups.map((g) => h("div", { role: "listitem" }, groupEl(g, canAct))) : h("p", { class: "empty", text: t("empty") })),
    history.length ? h("section", { class: "history-section", "aria-label": t("history_section") },
      h("h3", { text: `${t("history_section")} (${history.length})` }),
      h("ul", { class: "members" }, history.slice(0, 200).map((a) => alertRow(a, canAct)))) : null,
    silencesPanel(canAct));
  // A live update redraws the body only: an open filter control keeps its state.
  const filters = live ? root.querySelector("#filters") : null;
  if (filters) root.querySelector(".board-body").replaceWith(body);
  else root.replaceChildren(h("div", { class: "board" }, filterBar(v, onChange), body));
  const ms = performance.now() - t0;
  diagnostics({ lastRenderMs: ms, groups: groups.length, visible: visible.length, renders: (window.__iocConsole?.renders || 0) + 1 });
  return groups;
}
