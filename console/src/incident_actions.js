// Acting on incidents: which actions a key may take on an incident in its state (the
// server decides anyway: a 403 or 409 is shown as it came), and the dialogs that take a
// note, an assignee, a step's evidence or alerts to attach. The calls are the store's.
import { ApiError } from "./api.js";
import { h, modal, toast } from "./dom.js";
import { t } from "./i18n.js";
import { state, communeName } from "./state.js";
import { SEVERITIES } from "./severity.js";
import * as istore from "./incident_store.js";
import "./incident_texts.js";

/** The state actions of docs/incidents.md: from which states each may be taken. */
export const STATE_ACTIONS = Object.freeze({
  ack: ["open"],
  start: ["open", "acknowledged"],
  resolve: ["open", "acknowledged", "in_progress"],
  close: ["resolved"],
  reopen: ["resolved", "closed"],
});

/** The actions to show for `inc` to `me`, in the order a duty officer takes them. */
export function actionsFor(inc, me) {
  const r = istore.incidentRights(me);
  if (!r.act || !inc || inc.merged_into) return [];
  if (r.scope && inc.department !== r.scope) return [];
  const out = Object.entries(STATE_ACTIONS).filter(([, from]) => from.includes(inc.state)).map(([k]) => k);
  if (inc.state !== "closed") {
    out.push("note", "assign", "severity", "attach", "merge");
    // splitting needs an alert to stay behind: with one alert, detach or merge instead
    if (activeAlerts(inc).length > 1) out.push("split");
  }
  return out;
}

/** The alerts attached to `inc` now (its past links stay in `alerts` with `detached_at`). */
export function activeAlerts(inc) {
  return (inc.alerts || []).filter((a) => !a.detached_at);
}

function failure(e) {
  if (e instanceof ApiError && e.status === 403) return `${t("failed")}: ${t("forbidden")} (${e.message})`;
  return `${t("failed")}: ${e.message}`;
}

/** A dialog with a form: `fields` (label, element) and what to do on submit. */
function formDialog(title, fields, submit, { wide = false } = {}) {
  const status = h("p", { class: "status", role: "status" });
  const ok = h("button", { class: "btn primary", type: "submit" }, t("confirm"));
  const form = h("form", { class: "stack" }, fields, status,
    h("div", { class: "row" }, ok, h("button", { class: "btn ghost", type: "button", onclick: () => dlg.close() }, t("cancel"))));
  const dlg = modal(title, form, { wide });
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    ok.disabled = true; status.textContent = "…"; status.className = "status";
    try {
      await submit();
      dlg.close();
      toast(`${t("done_ok")}: ${title}`);
    } catch (err) {
      status.textContent = failure(err); status.className = "status error";
      ok.disabled = false;
    }
  });
  return dlg;
}

function noteField(required, id = "incident-note") {
  const el = h("textarea", { id, rows: 3, maxlength: 4000, required: required || null, placeholder: t("note_ph") });
  return [h("label", { for: id, text: required ? `${t("note")} *` : t("note") }), el];
}

/** A state action or a note, with its note (required when resolving). */
export function openStateAction(inc, kind) {
  const required = kind === "resolve" || kind === "note";
  const [label, note] = noteField(required);
  formDialog(`${t(`act_${kind}`)} — #${inc.id}`, [
    h("p", { class: "muted", text: inc.title }),
    kind === "resolve" ? h("p", { class: "muted", text: t("note_required") }) : null, label, note],
  () => istore.incidentAction(inc.id, kind, note.value.trim()));
  note.focus();
}

export function openAssign(inc) {
  const ioc = istore.incidentRights(state.me).ioc;
  const who = h("input", { id: "assignee", maxlength: 200, value: inc.assignee || "", autocomplete: "off" });
  const dept = ioc ? h("input", { id: "assign-dept", maxlength: 100, value: inc.department, autocomplete: "off" }) : null;
  const [label, note] = noteField(false);
  formDialog(`${t("act_assign")} — #${inc.id}`, [
    h("label", { for: "assignee", text: t("assignee") }), who,
    dept ? [h("label", { for: "assign-dept", text: t("owner_dept") }), dept] : null, label, note],
  () => istore.assignIncident(inc.id, { assignee: who.value.trim(), note: note.value.trim(),
    department: dept && dept.value.trim() !== inc.department ? dept.value.trim() : null }));
  who.focus();
}

export function openSeverity(inc) {
  const sel = h("select", { id: "incident-severity" }, SEVERITIES.map((s) => h("option", { value: s, selected: s === inc.severity, text: t(s) })));
  const [label, note] = noteField(false);
  formDialog(`${t("act_severity")} — #${inc.id}`, [h("label", { for: "incident-severity", text: t("severity") }), sel, label, note],
    () => istore.setIncidentSeverity(inc.id, sel.value, note.value.trim()));
}

/** Mark an SOP step done, with the note or evidence it requires. */
export function openStep(inc, step, title) {
  const [label, note] = noteField(step.requires === "note", "step-note");
  const ev = h("input", { id: "step-evidence", maxlength: 2000, required: step.requires === "evidence" || null, autocomplete: "off" });
  formDialog(`${t("mark_done")}: ${title}`, [
    step.requires === "evidence" ? h("p", { class: "muted", text: t("evidence_required") }) : null,
    label, note, h("label", { for: "step-evidence", text: step.requires === "evidence" ? `${t("evidence")} *` : t("evidence") }), ev],
  () => istore.stepDone(inc.id, step.step_id, note.value.trim(), ev.value.trim()));
  note.focus();
}

function alertChoice(a) {
  const where = a.commune_code ? communeName(a.commune_code) : a.province_code || "";
  return h("label", { class: "check alert-choice" },
    h("input", { type: "checkbox", name: "fp", value: a.fingerprint }),
    h("span", { class: `sev sev-${a.severity}`, text: t(a.severity) }),
    ` ${a.rule_id} · ${where} · ${t(a.state)}`,
    a.incident_id ? h("span", { class: "muted", text: ` (${t("in_incident", { id: a.incident_id })})` }) : null);
}

/** Checkboxes of the active alerts the key may attach (its department's for a responder). */
async function alertPicker(exclude) {
  const box = h("fieldset", { class: "checks alert-picker" }, h("legend", { text: t("choose_alerts") }), h("p", { text: "…" }));
  try {
    const alerts = (await istore.workspaceAlerts()).filter((a) => !exclude.has(a.fingerprint));
    box.replaceChildren(h("legend", { text: t("choose_alerts") }),
      ...(alerts.length ? alerts.slice(0, 300).map(alertChoice) : [h("p", { class: "muted", text: t("no_candidates") })]));
  } catch (e) { box.replaceChildren(h("p", { class: "error", text: failure(e) })); }
  return box;
}

const chosen = (box) => [...box.querySelectorAll("input[name=fp]:checked")].map((x) => x.value);

export async function openAttach(inc) {
  const attached = new Set(activeAlerts(inc).map((a) => a.fingerprint));
  const box = await alertPicker(attached);
  formDialog(`${t("attach")} — #${inc.id}`, [box], () => istore.attachAlerts(inc.id, "attach", chosen(box)), { wide: true });
}

export function detachAlert(inc, fingerprint) {
  formDialog(`${t("detach")} — #${inc.id}`, [h("p", { text: fingerprint })],
    () => istore.attachAlerts(inc.id, "detach", [fingerprint]));
}

/** Opens an incident for one alert of the sector, with a note. */
export function openFromAlert(a, then) {
  const [label, note] = noteField(false);
  formDialog(t("open_incident"), [h("p", { text: `${a.rule_id} · ${a.commune_code ? communeName(a.commune_code) : a.province_code || ""}` }), label, note],
    async () => then(await istore.openIncident({ alerts: [a.fingerprint], note: note.value.trim() || null })));
  note.focus();
}

/** Opens an incident from the board: a title (or alerts), severity, department (IOC). */
export async function openNewIncident(then) {
  const ioc = istore.incidentRights(state.me).ioc;
  const title = h("input", { id: "new-title", maxlength: 300, autocomplete: "off" });
  const sev = h("select", { id: "new-severity" }, h("option", { value: "", text: "—" }),
    SEVERITIES.map((s) => h("option", { value: s, text: t(s) })));
  const dept = ioc ? h("input", { id: "new-dept", maxlength: 100, autocomplete: "off" }) : null;
  const [label, note] = noteField(false);
  const box = await alertPicker(new Set());
  formDialog(t("open_incident"), [
    h("label", { for: "new-title", text: t("incident_title") }), title,
    h("label", { for: "new-severity", text: t("severity") }), sev,
    dept ? [h("label", { for: "new-dept", text: t("owner_dept") }), dept] : null, box, label, note],
  async () => {
    const body = { alerts: chosen(box), note: note.value.trim() || null };
    if (sev.value) body.severity = sev.value;
    if (title.value.trim()) body.title = title.value.trim();
    if (dept && dept.value.trim()) body.department = dept.value.trim();
    then(await istore.openIncident(body));
  }, { wide: true });
  title.focus();
}

/** The incidents that may merge into `inc`: those the key sees (a responder: its
 * department's), not closed, other than `inc`; the same rule and province first. */
export function mergeCandidates(inc, rows) {
  const near = (x) => (x.rule_id && x.rule_id === inc.rule_id ? 0 : 2) + (x.province_code === inc.province_code ? 0 : 1);
  return rows.filter((x) => x.id !== inc.id && !x.merged_into && x.state !== "closed")
    .sort((a, b) => near(a) - near(b) || String(b.updated_at).localeCompare(String(a.updated_at)));
}

function incidentChoice(x) {
  return h("label", { class: "check incident-choice" },
    h("input", { type: "checkbox", name: "iid", value: String(x.id) }),
    h("span", { class: `sev sev-${x.severity}`, text: t(x.severity) }),
    ` #${x.id} ${x.title} · ${x.department} · ${t(x.state)} · ${x.alerts ?? 0} ${t("alerts")}`);
}

/** Merge: pick other incidents; their alerts move here and they close, merged into this. */
export async function openMerge(inc) {
  const box = h("fieldset", { class: "checks incident-picker" }, h("legend", { text: t("choose_incidents") }), h("p", { text: "…" }));
  try {
    const rows = mergeCandidates(inc, await istore.mergeableIncidents());
    box.replaceChildren(h("legend", { text: t("choose_incidents") }),
      ...(rows.length ? rows.slice(0, 300).map(incidentChoice) : [h("p", { class: "muted", text: t("no_merge_candidates") })]));
  } catch (e) { box.replaceChildren(h("p", { class: "error", text: failure(e) })); }
  const [label, note] = noteField(false);
  formDialog(`${t("act_merge")} — #${inc.id}`, [h("p", { class: "muted", text: t("merge_help", { id: inc.id }) }), box, label, note],
    async () => {
      const ids = [...box.querySelectorAll("input[name=iid]:checked")].map((x) => Number(x.value));
      if (!ids.length) throw new Error(t("choose_one_incident"));
      await istore.mergeIncidents(inc.id, ids, note.value.trim());
    }, { wide: true });
}

/** Split: choose some of the alerts; they move into a new incident, which opens next. */
export function openSplit(inc, then) {
  const box = h("fieldset", { class: "checks alert-picker" }, h("legend", { text: t("choose_alerts_split") }),
    [...new Map(activeAlerts(inc).map((a) => [a.fingerprint, a])).values()].map((a) => alertChoice({ ...a, incident_id: null })));
  const title = h("input", { id: "split-title", maxlength: 300, autocomplete: "off", placeholder: `${inc.title} (tách)` });
  const [label, note] = noteField(false);
  formDialog(`${t("act_split")} — #${inc.id}`, [h("p", { class: "muted", text: t("split_help") }), box,
    h("label", { for: "split-title", text: t("incident_title") }), title, label, note],
  async () => {
    const fps = chosen(box);
    if (!fps.length) throw new Error(t("choose_one_alert"));
    if (fps.length === activeAlerts(inc).length) throw new Error(t("split_keep_one"));
    then(await istore.splitIncident(inc.id, fps, title.value.trim(), note.value.trim()));
  }, { wide: true });
}
