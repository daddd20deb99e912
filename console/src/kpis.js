// The province's headline KPIs of today against their targets, as a strip of cards; every
// card (dossiers received included) opens the KPI's drill-down by commune.
import { h, modal } from "./dom.js";
import { t, fmtNum, fmtPct } from "./i18n.js";
import { state } from "./state.js";
import { loadCommunes } from "./store.js";
import { openCommune } from "./commune.js";

/** Per commune of the loaded province: its latest day's KPIs (the map layer's properties). */
export function communeKpis() {
  return state.geo ? state.geo.features.map((f) => ({ code: f.properties.code, name: f.properties.name, kpi: f.properties.kpi || {} })) : [];
}

function metCell(met) {
  return h("td", { class: met === null ? "muted" : met ? "ok" : "bad", text: met === null ? "" : met ? `✓ ${t("met")}` : `✗ ${t("not_met")}` });
}

/** A share KPI: the communes worst first against the target. */
function shareRows(k) {
  const rows = communeKpis().filter((c) => c.kpi[k.kpi] !== null && c.kpi[k.kpi] !== undefined)
    .sort((a, b) => a.kpi[k.kpi] - b.kpi[k.kpi] || a.code.localeCompare(b.code));
  return { rows, head: [t("commune"), t("value"), t("dossiers_short"), t("day"), ""], cells: (c) => {
    const v = c.kpi[k.kpi]; const met = k.target === null || k.target === undefined ? null : v >= k.target;
    return [h("td", { class: met === null ? "" : met ? "ok" : "bad", text: fmtPct(v) }),
      h("td", { text: fmtNum(c.kpi.dossiers_received, 0) }), h("td", { text: c.kpi.day || "" }), metCell(met)];
  } };
}

/** The dossier count: the communes that received most first (no target). */
function countRows() {
  const rows = communeKpis().filter((c) => c.kpi.dossiers_received !== null && c.kpi.dossiers_received !== undefined)
    .sort((a, b) => b.kpi.dossiers_received - a.kpi.dossiers_received || a.code.localeCompare(b.code));
  return { rows, head: [t("commune"), t("dossiers_short"), t("day")], cells: (c) => [
    h("td", { text: fmtNum(c.kpi.dossiers_received, 0) }), h("td", { text: c.kpi.day || "" })] };
}

function drillBody(k) {
  const { rows, head, cells } = k.kpi === "dossiers_received" ? countRows() : shareRows(k);
  const lead = k.kpi === "dossiers_received" ? `${rows.length} ${t("communes").toLowerCase()}`
    : `${t("target")} ${fmtPct(k.target)} · ${rows.length} ${t("communes").toLowerCase()}`;
  return [h("p", { class: "muted", text: lead }),
    rows.length ? h("div", { class: "table-wrap" }, h("table", { class: "table kpi-drill", dataset: { kpi: k.kpi } },
      h("thead", {}, h("tr", {}, head.map((x) => h("th", { scope: "col", text: x })))),
      h("tbody", {}, rows.map((c) => h("tr", { dataset: { commune: c.code } },
        h("td", {}, h("button", { class: "btn ghost", type: "button", onclick: () => openCommune(c.code) }, c.name)),
        cells(c)))))) : h("p", { class: "muted", text: t("no_data") })];
}

/** KPI drill-down by commune, over the communes of the KPIs' province. */
export function openKpi(k) {
  const body = h("div", { class: "kpi-drill-body", dataset: { kpi: k.kpi } }, drillBody(k));
  modal(`${t(k.kpi)} — ${t("communes")}`, body, { wide: true });
  const province = state.kpisProvince;
  if (province && state.geoProvince !== province) {
    body.setAttribute("aria-busy", "true");
    loadCommunes(province).catch(() => null).then(() => { body.replaceChildren(...drillBody(k)); body.removeAttribute("aria-busy"); });
  }
}

function card(k, children) {
  return h("button", { type: "button", class: `kpi-card ${k.met === null || k.met === undefined ? "" : k.met ? "ok" : "bad"}`,
    dataset: { kpi: k.kpi }, title: t("kpi_drill"), onclick: () => openKpi(k) }, children);
}

export function kpiStrip(data) {
  if (!data) return null;
  const dossiers = { kpi: "dossiers_received", value: data.dossiers_received, target: null, met: null };
  return h("section", { class: "kpi-strip", "aria-labelledby": "kpi-title" },
    h("h2", { id: "kpi-title", class: "sr-only", text: t("kpi_headline") }),
    card(dossiers, [h("span", { class: "kpi-name", text: t("dossiers") }),
      h("span", { class: "kpi-value", text: fmtNum(data.dossiers_received, 0) }),
      h("span", { class: "kpi-target", text: t("kpi_drill") })]),
    data.kpis.map((k) => card(k, [
      h("span", { class: "kpi-name", text: t(k.kpi) }),
      h("span", { class: "kpi-value", text: fmtPct(k.value) }),
      h("span", { class: "kpi-target", text: `${t("target")} ${fmtPct(k.target)} · ${k.met === null ? t("no_data") : k.met ? `✓ ${t("met")}` : `✗ ${t("not_met")}`}` }),
      k.tiers?.length ? h("span", { class: "kpi-tiers" }, k.tiers.map((x) => h("span", { dataset: { tier: x.tier } },
        `${t(`tier_${x.tier}`)} ${fmtPct(x.value)}`))) : null])));
}
