// Acting: acknowledge / resolve one alert or a whole group (ThingsBoard's ack and clear),
// silences with a preview of what they match, expiring silences; every action shows the
// audit entry it wrote.
import { api, ApiError } from "./api.js";
import { h, modal, toast } from "./dom.js";
import { t, fmtTime } from "./i18n.js";
import { state } from "./state.js";

let refresh = () => {};
export function setActionRefresh(fn) { refresh = fn; }

function describe(entry) {
  if (!entry) return "";
  return `${t("audit_entry")}: ${fmtTime(entry.at)} · ${entry.actor} · ${entry.action} · ${entry.target}`
    + (entry.detail?.note ? ` · “${entry.detail.note}”` : "");
}

async function auditOf(target) {
  try {
    const rows = await api(`/v1/console/audit?target=${encodeURIComponent(target)}&limit=1`);
    return rows[0] || null;
  } catch { return null; }
}

function remember(entry) {
  if (!entry) return;
  state.audit.unshift(entry);
  state.audit.length = Math.min(state.audit.length, 50);
}

function failure(e) {
  if (e instanceof ApiError && e.status === 403) return t("forbidden");
  return `${t("failed")}: ${e.message}`;
}

export function openAction(kind, alerts) {
  const note = h("textarea", { id: "action-note", rows: 3, maxlength: 2000, placeholder: t("note_ph") });
  const status = h("p", { class: "status", role: "status" });
  const go = h("button", { class: "btn primary", type: "submit", "data-action": "confirm" }, t("confirm"));
  const form = h("form", { class: "stack", onsubmit: async (e) => {
    e.preventDefault();
    go.disabled = true;
    const path = kind === "ack" ? "ack" : "resolve";
    let ok = 0; let last = null; const errors = [];
    for (const a of alerts) {
      try {
        await api(`/v1/alerts/${encodeURIComponent(a.fingerprint)}/${path}`, { method: "POST", body: { note: note.value || null } });
        ok += 1; last = a;
      } catch (err) { errors.push(failure(err)); if (err instanceof ApiError && err.status === 403) break; }
      status.textContent = `${ok}/${alerts.length}`;
    }
    const entry = last ? await auditOf(last.fingerprint) : null;
    remember(entry);
    dlg.close();
    if (ok) toast(`${t("done_ok")}: ${t(kind === "ack" ? "ack" : "resolve")} · ${t("n_alerts", { n: ok })}`, "ok", describe(entry));
    if (errors.length) toast(errors[0], "error");
    refresh();
  } },
  h("p", {}, `${t("applies_to")}: ${t("n_alerts", { n: alerts.length })}`),
  h("ul", { class: "compact" }, alerts.slice(0, 8).map((a) => h("li", { text: `${a.rule_id} · ${a.labels?.commune_code || a.labels?.province_code || ""}` })),
    alerts.length > 8 ? h("li", { text: `… +${alerts.length - 8}` }) : null),
  h("label", { for: "action-note", text: t("note") }), note, status,
  h("div", { class: "row" }, go, h("button", { class: "btn ghost", type: "button", onclick: () => dlg.close() }, t("cancel"))));
  const dlg = modal(t(kind === "ack" ? "ack_title" : "resolve_title"), form);
  note.focus();
}

export function openSilence(matchers) {
  const text = h("textarea", { id: "silence-matchers", rows: 4, spellcheck: "false" });
  text.value = matchers.join("\n");
  const duration = h("select", { id: "silence-duration" }, ["30m", "1h", "2h", "4h", "8h", "1d", "7d"].map((d) => h("option", { value: d, selected: d === "2h" }, d)));
  const comment = h("input", { id: "silence-comment", type: "text", maxlength: 2000 });
  const preview = h("div", { class: "preview", role: "status", "aria-live": "polite" });
  const lines = () => text.value.split("\n").map((s) => s.trim()).filter(Boolean);
  let timer = null;
  async function doPreview() {
    const m = lines();
    if (!m.length) { preview.replaceChildren(); return; }
    try {
      const r = await api("/v1/console/silences/preview", { method: "POST", body: { matchers: m } });
      preview.replaceChildren(h("p", { class: "strong", "data-preview-count": String(r.count) }, t("preview_n", { n: r.count })),
        h("ul", { class: "compact" }, r.sample.slice(0, 10).map((a) => h("li", { text: `${a.rule_id} · ${a.severity} · ${a.labels.commune_code || a.labels.province_code || ""} · ${t(a.state)}` }))));
    } catch (e) { preview.replaceChildren(h("p", { class: "error", text: failure(e) })); }
  }
  text.addEventListener("input", () => { clearTimeout(timer); timer = setTimeout(doPreview, 300); });
  const go = h("button", { class: "btn primary", type: "submit", "data-action": "confirm" }, t("silence"));
  const form = h("form", { class: "stack", onsubmit: async (e) => {
    e.preventDefault(); go.disabled = true;
    try {
      const s = await api("/v1/silences", { method: "POST", body: { matchers: lines(), duration: duration.value, comment: comment.value } });
      const entry = await auditOf(`silence/${s.id}`);
      remember(entry);
      dlg.close();
      toast(`${t("done_ok")}: ${t("silence")} #${s.id}`, "ok", describe(entry));
      refresh();
    } catch (err) { go.disabled = false; preview.replaceChildren(h("p", { class: "error", text: failure(err) })); }
  } },
  h("label", { for: "silence-matchers", text: t("matchers") }), text,
  h("div", { class: "row" }, h("div", { class: "field" }, h("label", { for: "silence-duration", text: t("duration") }), duration),
    h("div", { class: "field grow" }, h("label", { for: "silence-comment", text: t("comment") }), comment)),
  h("button", { class: "btn ghost", type: "button", onclick: doPreview }, t("preview")), preview,
  h("div", { class: "row" }, go, h("button", { class: "btn ghost", type: "button", onclick: () => dlg.close() }, t("cancel"))));
  const dlg = modal(t("silence_title"), form, { wide: true });
  doPreview();
  comment.focus();
}

export async function loadSilences() {
  try { state.silences = await api("/v1/silences"); } catch { state.silences = []; }
}

export function silencesPanel(canAct) {
  return h("section", { class: "panel silences", "aria-labelledby": "silences-title" },
    h("h3", { id: "silences-title", text: `${t("silences")} (${state.silences.length})` }),
    state.silences.length ? h("table", { class: "table" },
      h("thead", {}, h("tr", {}, [t("matchers").split(" (")[0], t("created_by"), t("comment"), t("ends"), ""].map((x) => h("th", { scope: "col", text: x })))),
      h("tbody", {}, state.silences.map((s) => h("tr", { dataset: { silence: s.id } },
        h("td", {}, s.matchers.map((m) => h("code", { class: "label" }, `${m.name}${m.op}"${m.value}"`))),
        h("td", { text: s.created_by }), h("td", { text: s.comment }), h("td", { text: fmtTime(s.ends_at) }),
        h("td", {}, canAct ? h("button", { class: "btn ghost", type: "button", "data-action": "expire", onclick: async () => {
          try {
            await api(`/v1/silences/${s.id}`, { method: "DELETE" });
            const entry = await auditOf(`silence/${s.id}`);
            remember(entry);
            toast(`${t("done_ok")}: ${t("expire")} #${s.id}`, "ok", describe(entry));
            refresh();
          } catch (e) { toast(failure(e), "error"); }
        } }, t("expire")) : null))))) : h("p", { class: "muted", text: t("no_silences") }),
    state.audit.length ? h("div", { class: "audit" }, h("h3", { text: t("audit") }),
      h("ul", { class: "compact", id: "audit-list" }, state.audit.slice(0, 10).map((e) => h("li", { text: describe(e) })))) : null);
}
