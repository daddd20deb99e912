// One incident: its head (severity, state, owner, assignee, deadlines), the actions the
// key may take, the SOP checklist, the alerts it gathers and its timeline (changes with
// who and the note, alerts attached, steps done, escalations, notifications sent), all
// from `state.incident` (incident_store.js `loadIncident`).
import { h } from "./dom.js";
import { t, fmtTime, getLang } from "./i18n.js";
import { state, communeName } from "./state.js";
import { ACTIVE_STATES } from "./incident_store.js";
import { actionsFor, detachAlert, openAssign, openAttach, openMerge, openSeverity, openSplit, openStateAction, openStep } from "./incident_actions.js";
import { deadline, missed, span } from "./incidents.js";
import "./incident_texts.js";

const titleOf = (step) => (getLang() === "en" ? step.title_en || step.title_vi : step.title_vi || step.title_en);

function evLabel(action) {
  const s = t(`ev_${action}`);
  return s === `ev_${action}` ? action : s;
}

/** Every entry of the timeline, oldest first: events, escalations, notifications. */
export function timelineOf(inc) {
  const out = [];
  for (const e of inc.timeline || []) {
    if (e.action === "escalate" && (inc.escalations || []).length) continue;  // drawn from `escalations`
    const detail = e.detail || {};
    const extra = [];
    if (e.from_state && e.to_state && e.from_state !== e.to_state) extra.push(`${t(e.from_state)} → ${t(e.to_state)}`);
    if (detail.fingerprints) extra.push(`${detail.fingerprints.length} ${t("alerts")}`);
    if (detail.step) {
      const step = (inc.steps || []).find((x) => x.step_id === detail.step);
      extra.push(step ? titleOf(step) : detail.step);
    }
    if (detail.assignee) extra.push(`${t("assignee")}: ${detail.assignee}`);
    if (detail.department) extra.push(`${t("owner_dept")}: ${detail.department}`);
    if (detail.severity) extra.push(t(detail.severity));
    if (detail.evidence) extra.push(`${t("evidence")}: ${detail.evidence}`);
    if (detail.into) extra.push(`→ #${detail.into}`);
    if (detail.from) extra.push(`← #${detail.from}${detail.alerts != null ? ` (${detail.alerts} ${t("alerts")})` : ""}`);
    out.push({ at: e.at, kind: e.action, actor: e.actor, what: evLabel(e.action), extra: extra.join(" · "), note: e.note });
  }
  for (const x of inc.escalations || []) {
    out.push({ at: x.at, kind: "escalation", actor: x.fired_by || "system", what: `${t("ev_escalation")} — ${t("level")} ${x.level}`,
      extra: `${t(x.target_role)}${x.target_name ? `: ${x.target_name}` : ""} · ${x.department} · ${x.kind === "ack" ? t("ack_due") : t("resolve_due")}`, note: null });
  }
  for (const n of inc.notifications || []) {
    out.push({ at: n.delivered_at || n.created_at, kind: "notification", actor: n.receiver, what: t("ev_notification"),
      extra: `${n.fingerprint.startsWith("incident-") ? t("incident") : n.fingerprint} · ${n.delivered_at ? t("delivered") : `${t("not_delivered")} (${n.attempts} ${t("attempts")})`}`,
      note: n.last_error || null });
  }
  return out.sort((a, b) => String(a.at).localeCompare(String(b.at)));
}

/** " · acknowledged: TIME" and how late, when it was after the deadline. */
function metAt(label, at, due) {
  if (!at) return null;
  const late = due && Date.parse(at) > Date.parse(due);
  return h("span", { class: late ? "met-late" : "muted" },
    ` · ${label}: ${fmtTime(at)}${late ? ` (${t("late", { t: span(Date.parse(at) - Date.parse(due)) })})` : ""}`);
}

function head(inc) {
  const m = missed(inc);
  const done = !ACTIVE_STATES.includes(inc.state);
  return h("div", { class: "ihead" },
    h("div", { class: "detail-head" },
      h("span", { class: `sev sev-${inc.severity}`, text: t(inc.severity) }),
      h("span", { class: `ist ist-${inc.state}`, id: "incident-state", dataset: { state: inc.state }, text: t(inc.state) }),
      m.ack || m.resolve ? h("span", { class: "tag overdue-tag", text: t("overdue") }) : null,
      h("h2", { id: "incident-title", text: `#${inc.id} ${inc.title}` })),
    h("dl", { class: "kv ikv" },
      h("dt", { text: t("owner_dept") }), h("dd", { id: "incident-dept", text: inc.department }),
      h("dt", { text: t("assignee") }), h("dd", { id: "incident-assignee", class: inc.assignee ? "" : "muted", text: inc.assignee || t("unassigned") }),
      h("dt", { text: t("opened") }), h("dd", { text: `${fmtTime(inc.opened_at)} (${span(Date.now() - Date.parse(inc.opened_at))})${inc.cycle > 1 ? ` · ${t("cycle")} ${inc.cycle}` : ""}` }),
      h("dt", { text: t("ack_due") }), h("dd", {}, deadline(inc.ack_due_at, m.ack, !!inc.acknowledged_at || done),
        metAt(t("acknowledged"), inc.acknowledged_at, inc.ack_due_at)),
      h("dt", { text: t("resolve_due") }), h("dd", {}, deadline(inc.resolve_due_at, m.resolve, done),
        metAt(t("resolved"), inc.resolved_at, inc.resolve_due_at)),
      inc.rule_id ? [h("dt", { text: t("rule") }), h("dd", { text: `${inc.rule_id}${inc.sop_id ? ` · ${t("rule_sop")}: ${inc.sop_id}` : ""}` })] : null,
      inc.province_code ? [h("dt", { text: t("province") }), h("dd", { text: inc.province_code })] : null));
}

function actionBar(inc, go) {
  if (inc.merged_into) {
    return h("p", { class: "muted", id: "incident-merged" }, `${t("merged_into")} `,
      h("a", { href: `?view=incidents&incident=${inc.merged_into}`, onclick: (e) => { e.preventDefault(); go(inc.merged_into); } }, `#${inc.merged_into}`));
  }
  const acts = actionsFor(inc, state.me);
  if (!acts.length) return h("p", { class: "muted", text: t("read_only") });
  const open = { assign: openAssign, severity: openSeverity, attach: openAttach, merge: openMerge,
    split: (x) => openSplit(x, (made) => go(made.id)) };
  return h("div", { class: "row detail-actions iactions" }, acts.map((k) => h("button", {
    class: ["ack", "start", "resolve", "close"].includes(k) ? "btn primary" : "btn", type: "button", dataset: { action: k },
    onclick: () => (open[k] ? open[k](inc) : openStateAction(inc, k)) }, t(k === "attach" ? "attach" : `act_${k}`))));
}

function checklist(inc, canAct) {
  if (!(inc.steps || []).length) return null;
  const doneN = inc.steps.filter((s) => s.done_at).length;
  return h("section", { class: "panel isection", "aria-labelledby": "checklist-title" },
    h("h3", { id: "checklist-title", text: `${t("checklist")} (${doneN}/${inc.steps.length})` }),
    h("ol", { class: "checklist" }, inc.steps.map((s) => h("li", {
      class: `step${s.done_at ? " done" : ""}${s.overdue ? " overdue" : ""}`, dataset: { step: s.step_id } },
    h("span", { class: "step-mark", "aria-hidden": "true", text: s.done_at ? "✔" : "○" }),
    h("div", { class: "step-body" },
      h("span", { class: "step-title", text: titleOf(s) }),
      h("span", { class: "step-meta muted" }, `${t("step_owner")}: ${s.department} · ${t("due")}: `, h("time", { datetime: s.due_at, text: fmtTime(s.due_at) }),
        s.requires !== "none" ? ` · ${t(`requires_${s.requires}`)}` : ""),
      s.overdue ? h("span", { class: "tag overdue-tag", text: t("overdue") }) : null,
      s.done_at ? h("span", { class: "step-done" }, `${t("done_by")}: ${s.done_by} · ${fmtTime(s.done_at)}`,
        s.note ? h("span", { class: "step-note", text: ` · “${s.note}”` }) : null,
        s.evidence ? h("span", { class: "step-note", text: ` · ${t("evidence")}: ${s.evidence}` }) : null) : null),
    !s.done_at && canAct ? h("button", { class: "btn", type: "button", dataset: { stepDone: s.step_id },
      onclick: () => openStep(inc, s, titleOf(s)) }, t("mark_done")) : null))));
}

function alertsOf(inc, canAct) {
  const rows = inc.alerts || [];
  return h("section", { class: "panel isection", "aria-labelledby": "ialerts-title" },
    h("h3", { id: "ialerts-title", text: `${t("attached_alerts")} (${rows.filter((a) => !a.detached_at).length})` }),
    rows.length ? h("ul", { class: "compact ialerts" }, rows.map((a) => h("li", { class: a.detached_at ? "muted detached" : "", dataset: { fp: a.fingerprint } },
      a.severity ? h("span", { class: `sev sev-${a.severity}`, text: t(a.severity) }) : null,
      ` ${a.rule_id || a.fingerprint} · ${a.commune_code ? communeName(a.commune_code) : a.province_code || ""} · ${a.state ? t(a.state) : ""}`,
      h("span", { class: "muted", text: a.detached_at ? ` · ${t("ev_detach")} ${fmtTime(a.detached_at)} (${a.detached_by})` : ` · ${t("ev_attach")} ${fmtTime(a.attached_at)} (${a.attached_by})` }),
      canAct && !a.detached_at ? h("button", { class: "btn ghost", type: "button", dataset: { detach: a.fingerprint },
        onclick: () => detachAlert(inc, a.fingerprint) }, t("detach")) : null)))
      : h("p", { class: "muted", text: "—" }));
}

function timeline(inc) {
  return h("section", { class: "panel isection", "aria-labelledby": "timeline-title" },
    h("h3", { id: "timeline-title", text: t("timeline") }),
    h("ol", { class: "timeline", id: "incident-timeline" }, timelineOf(inc).map((e) => h("li", { class: `tl tl-${e.kind}`, dataset: { kind: e.kind } },
      h("time", { datetime: e.at, text: fmtTime(e.at) }),
      h("span", { class: "tl-what", text: e.what }),
      h("span", { class: "tl-actor muted", text: e.actor || "" }),
      e.extra ? h("span", { class: "tl-extra", text: e.extra }) : null,
      e.note ? h("span", { class: "tl-note", text: `“${e.note}”` }) : null))));
}

/** The incident page, whole; `back()` returns to the board, `go(id)` opens another
 * incident (the one a split made, the one this was merged into). */
export function renderIncidentPage(root, v, back, go = () => back()) {
  const inc = state.incident;
  const backLink = h("a", { href: "?view=incidents", class: "back", onclick: (e) => { e.preventDefault(); back(); } }, t("back_board"));
  if (!inc || inc.id !== v.incident) {
    root.replaceChildren(backLink, h("p", { class: "muted", "aria-busy": "true", text: "…" }));
    return;
  }
  if (inc.error) {
    root.replaceChildren(backLink, h("p", { class: "error", role: "alert", id: "incident-error",
      text: inc.status === 404 ? t("not_found_incident") : `${t("failed")}: ${inc.error}` }));
    return;
  }
  const canAct = actionsFor(inc, state.me).length > 0;
  root.replaceChildren(h("article", { class: "ipage", "aria-labelledby": "incident-title", dataset: { incident: inc.id } },
    backLink, head(inc), actionBar(inc, go),
    h("div", { class: "icols" }, h("div", { class: "icol" }, checklist(inc, canAct), alertsOf(inc, canAct)), timeline(inc))));
}
