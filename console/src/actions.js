// Acting: acknowledge / resolve one alert or a whole group (ThingsBoard's ack and clear),
// silences with a preview of what they match, expiring silences; every action shows the
// audit entry it wrote. The calls themselves are the store's.
import { ApiError } from "./api.js";
import { h, modal, toast } from "./dom.js";
import { t, fmtTime } from "./i18n.js";
import { state, communeName, labelOf } from "./state.js";
import { actOnAlerts, createSilence, ensureCommuneNames, expireSilence, previewSilence } from "./store.js";

function describe(entry) {
  if (!entry) return "";
  return `${t("audit_entry")}: ${fmtTime(entry.at)} · ${entry.actor} · ${entry.action} · ${entry.target}`
    + (entry.detail?.note ? ` · “${entry.detail.note}”` : "");
}

function failure(e) {
  if (e instanceof ApiError && e.status === 403) return t("forbidden");
  return `${t("failed")}: ${e.message}`;
}

/** Where an alert is, by name: its commune's name (or code until the names are loaded),
 * else its province. */
export function placeOf(a) {
  const commune = labelOf(a, "commune_code");
  return commune ? communeName(commune) : labelOf(a, "province_code");
}

/** Silence matchers of one alert: its rule and commune, else its rule and whatever places it. */
export function alertMatchers(a) {
  const m = [`alertname="${a.rule_id}"`];
  for (const k of ["commune_code", "province_code", "source_id", "feed", "department"]) {
    if (a.labels?.[k]) { m.push(`${k}="${a.labels[k]}"`); if (k === "commune_code") break; }
  }
  return m;
}

function alertLines(alerts) {
  return [...alerts.slice(0, 8).map((a) => h("li", { dataset: { fp: a.fingerprint }, text: `${a.rule_id} · ${placeOf(a)}` })),
    alerts.length > 8 ? h("li", { text: `… +${alerts.length - 8}` }) : null];
}

export function openAction(kind, alerts) {
  const note = h("textarea", { id: "action-note", rows: 3, maxlength: 2000, placeholder: t("note_ph") });
  const status = h("p", { class: "status", role: "status" });
  const list = h("ul", { class: "compact action-alerts" }, alertLines(alerts));
  const go = h("button", { class: "btn primary", type: "submit", "data-action": "confirm" }, t("confirm"));
  const form = h("form", { class: "stack", onsubmit: async (e) => {
    e.preventDefault();
    go.disabled = true;
    const r = await actOnAlerts(kind, alerts, note.value, (ok) => { status.textContent = `${ok}/${alerts.length}`; });
    dlg.close();
    if (r.ok) toast(`${t("done_ok")}: ${t(kind === "ack" ? "ack" : "resolve")} · ${t("n_alerts", { n: r.ok })}`, "ok", describe(r.entry));
    if (r.errors.length) toast(failure(r.errors[0]), "error");
  } },
  h("p", {}, `${t("applies_to")}: ${t("n_alerts", { n: alerts.length })}`), list,
  h("label", { for: "action-note", text: t("note") }), note, status,
  h("div", { class: "row" }, go, h("button", { class: "btn ghost", type: "button", onclick: () => dlg.close() }, t("cancel"))));
  const dlg = modal(t(kind === "ack" ? "ack_title" : "resolve_title"), form);
  note.focus();
  // Alerts of a province the map has not loaded: name their communes once the names come.
  const unnamed = alerts.slice(0, 8).filter((a) => labelOf(a, "commune_code") && !state.communes.has(labelOf(a, "commune_code")));
  if (unnamed.length) {
    ensureCommuneNames(unnamed.map((a) => labelOf(a, "province_code")))
      .then(() => { if (list.isConnected) list.replaceChildren(...alertLines(alerts).filter(Boolean)); }).catch(() => {});
  }
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
      const r = await previewSilence(m);
      preview.replaceChildren(h("p", { class: "strong", "data-preview-count": String(r.count) }, t("preview_n", { n: r.count })),
        h("ul", { class: "compact" }, r.sample.slice(0, 10).map((a) => h("li", { text: `${a.rule_id} · ${a.severity} · ${placeOf(a)} · ${t(a.state)}` }))));
    } catch (e) { preview.replaceChildren(h("p", { class: "error", text: failure(e) })); }
  }
  text.addEventListener("input", () => { clearTimeout(timer); timer = setTimeout(doPreview, 300); });
  const go = h("button", { class: "btn primary", type: "submit", "data-action": "confirm" }, t("silence"));
  const form = h("form", { class: "stack", onsubmit: async (e) => {
    e.preventDefault(); go.disabled = true;
    try {
      const { silence, entry } = await createSilence(lines(), duration.value, comment.value);
      dlg.close();
      toast(`${t("done_ok")}: ${t("silence")} #${silence.id}`, "ok", describe(entry));
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

export function silencesPanel(canAct) {
  return h("section", { class: "panel silences", "aria-labelledby": "silences-title" },
    h("h3", { id: "silences-title", text: `${t("silences")} (${state.silences.length})` }),
    state.silences.length ? h("div", { class: "table-wrap" }, h("table", { class: "table" },
      h("thead", {}, h("tr", {}, [t("matchers").split(" (")[0], t("created_by"), t("comment"), t("ends"), ""].map((x) => h("th", { scope: "col", text: x })))),
      h("tbody", {}, state.silences.map((s) => h("tr", { dataset: { silence: s.id } },
        h("td", {}, s.matchers.map((m) => h("code", { class: "label" }, `${m.name}${m.op}"${m.value}"`))),
        h("td", { text: s.created_by }), h("td", { text: s.comment }), h("td", { text: fmtTime(s.ends_at) }),
        h("td", {}, canAct ? h("button", { class: "btn ghost", type: "button", "data-action": "expire", onclick: async () => {
          try {
            const entry = await expireSilence(s.id);
            toast(`${t("done_ok")}: ${t("expire")} #${s.id}`, "ok", describe(entry));
          } catch (e) { toast(failure(e), "error"); }
        } }, t("expire")) : null)))))) : h("p", { class: "muted", text: t("no_silences") }),
    state.audit.length ? h("div", { class: "audit" }, h("h3", { text: t("audit") }),
      h("ul", { class: "compact", id: "audit-list" }, state.audit.slice(0, 10).map((e) => h("li", { text: describe(e) })))) : null);
}
