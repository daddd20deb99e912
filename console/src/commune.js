// A commune's drill-down dialog: its active alerts, the latest reading of each metric and
// today's public-service KPIs against their targets (from the store, on demand).
import { h, modal } from "./dom.js";
import { t, fmtTime, fmtNum, fmtPct, getLang } from "./i18n.js";
import { communeName } from "./state.js";
import { communeDrill } from "./store.js";

export async function openCommune(code) {
  const body = h("div", { class: "drill", "aria-busy": "true" }, h("p", { text: "…" }));
  modal(`${t("drill")}: ${communeName(code)}`, body, { wide: true });
  try {
    const d = await communeDrill(code);
    body.replaceChildren(
      h("p", { class: "muted", text: `${d.commune.commune_name} · ${d.commune.province_name} · ${code}${d.commune.approximate ? ` · ${t("approximate")}` : ""}` }),
      h("h3", { text: `${t("active_alerts")} (${d.alerts.length})` }),
      d.alerts.length ? h("ul", { class: "compact" }, d.alerts.map((a) => h("li", {},
        h("span", { class: `sev sev-${a.severity}`, text: t(a.severity) }), " ", h("span", { class: `st st-${a.state}`, text: t(a.state) }), " ",
        a.annotations?.[`summary_${getLang()}`] || a.rule_id))) : h("p", { class: "muted", text: t("none") }),
      h("h3", { text: t("latest_readings") }),
      d.readings.length ? h("div", { class: "table-wrap" }, h("table", { class: "table" },
        h("thead", {}, h("tr", {}, [t("metric"), t("last"), t("at")].map((x) => h("th", { scope: "col", text: x })))),
        h("tbody", {}, d.readings.map((r) => h("tr", {}, h("td", { text: r.metric }), h("td", { text: fmtNum(r.last, 2) }), h("td", { text: fmtTime(r.last_at) }))))))
        : h("p", { class: "muted", text: t("no_data") }),
      h("h3", { text: `${t("kpis_today")}${d.dossiers_received ? ` · ${t("dossiers")}: ${d.dossiers_received}` : ""}` }),
      kpiTable(d.kpis));
    body.removeAttribute("aria-busy");
  } catch (e) { body.replaceChildren(h("p", { class: "error", text: `${t("failed")}: ${e.message}` })); }
}

export function kpiTable(kpis) {
  return h("table", { class: "table kpis" },
    h("thead", {}, h("tr", {}, ["KPI", t("value"), t("target"), ""].map((x) => h("th", { scope: "col", text: x })))),
    h("tbody", {}, kpis.map((k) => h("tr", { dataset: { kpi: k.kpi } },
      h("td", { text: t(k.kpi) }), h("td", { text: fmtPct(k.value) }), h("td", { text: fmtPct(k.target) }),
      h("td", { class: k.met === null ? "muted" : k.met ? "ok" : "bad", text: k.met === null ? t("no_data") : k.met ? `✓ ${t("met")}` : `✗ ${t("not_met")}` })))));
}
