// Province headline KPIs against targets, and feed health per department: sources last
// seen, event rates, rejections by reason with a sample of recent dead letters.
import { api } from "./api.js";
import { h } from "./dom.js";
import { t, fmtTime, fmtNum, fmtPct } from "./i18n.js";
import { state } from "./state.js";
import { communeKpis, openCommune } from "./map.js";
import { modal } from "./dom.js";

/** KPI drill-down: the province's communes on one KPI, worst first, against the target. */
function openKpi(k) {
  const rows = communeKpis().filter((c) => c.kpi[k.kpi] !== null && c.kpi[k.kpi] !== undefined)
    .sort((a, b) => a.kpi[k.kpi] - b.kpi[k.kpi]);
  const body = h("div", {},
    h("p", { class: "muted", text: `${t("target")} ${fmtPct(k.target)} · ${rows.length} ${t("communes").toLowerCase()}` }),
    rows.length ? h("table", { class: "table kpi-drill" },
      h("thead", {}, h("tr", {}, [t("commune"), t("value"), t("dossiers_short"), t("day"), ""].map((x) => h("th", { scope: "col", text: x })))),
      h("tbody", {}, rows.map((c) => {
        const v = c.kpi[k.kpi]; const met = k.target === null || k.target === undefined ? null : v >= k.target;
        return h("tr", { dataset: { commune: c.code } },
          h("td", {}, h("button", { class: "btn ghost", type: "button", onclick: () => openCommune(c.code) }, c.name)),
          h("td", { class: met === null ? "" : met ? "ok" : "bad", text: fmtPct(v) }),
          h("td", { text: fmtNum(c.kpi.dossiers_received, 0) }), h("td", { text: c.kpi.day || "" }),
          h("td", { class: met === null ? "muted" : met ? "ok" : "bad", text: met === null ? "" : met ? `✓ ${t("met")}` : `✗ ${t("not_met")}` }));
      }))) : h("p", { class: "muted", text: t("no_data") }));
  modal(`${t(k.kpi)} — ${t("communes")}`, body, { wide: true });
}

export function kpiStrip(data) {
  if (!data) return null;
  return h("section", { class: "kpi-strip", "aria-labelledby": "kpi-title" },
    h("h2", { id: "kpi-title", class: "sr-only", text: t("kpi_headline") }),
    h("div", { class: "kpi-card" }, h("div", { class: "kpi-name", text: t("dossiers") }), h("div", { class: "kpi-value", text: fmtNum(data.dossiers_received, 0) })),
    data.kpis.map((k) => h("button", { type: "button", class: `kpi-card ${k.met === null ? "" : k.met ? "ok" : "bad"}`, dataset: { kpi: k.kpi },
      title: t("kpi_drill"), onclick: () => openKpi(k) },
      h("span", { class: "kpi-name", text: t(k.kpi) }),
      h("span", { class: "kpi-value", text: fmtPct(k.value) }),
      h("span", { class: "kpi-target", text: `${t("target")} ${fmtPct(k.target)} · ${k.met === null ? t("no_data") : k.met ? `✓ ${t("met")}` : `✗ ${t("not_met")}`}` }),
      k.tiers?.length ? h("span", { class: "kpi-tiers" }, k.tiers.map((x) => h("span", { dataset: { tier: x.tier } },
        `${t(`tier_${x.tier}`)} ${fmtPct(x.value)}`))) : null)));
}

const KPI_ORDER = ["online_share", "on_time_share", "resolved_online_share", "paid_online_share", "digitised_share"];
let tieredMissing = false;

function vnToday() {
  return new Intl.DateTimeFormat("en-CA", { timeZone: "Asia/Ho_Chi_Minh" }).format(new Date());
}

/** Today's KPIs by tier from the KPI API (`GET /v1/kpis`, when the server has it), in the
 * shape of `/v1/console/kpis` plus `tiers` per KPI; null when the API is absent. */
async function loadTiered(province) {
  if (tieredMissing || !province) return null;
  const day = vnToday();
  try {
    const r = await api(`/v1/kpis?scope=province&province=${encodeURIComponent(province)}&grain=day&from=${day}&to=${day}`);
    const periods = r.periods.filter((p) => p.period === day);
    const all = periods.find((p) => p.tier === "all");
    if (!all) return null;  // no dossier today by tier: the rollups may still know the shares
    return {
      province, day, dossiers_received: all.kpis.online_share?.denominator ?? null,
      kpis: KPI_ORDER.map((k) => {
        const v = all.kpis[k] || {};
        return { kpi: k, value: v.value, target: v.target, previous: v.previous,
          met: v.value === null || v.value === undefined || v.target === null || v.target === undefined ? null : v.value >= v.target,
          tiers: periods.filter((p) => p.tier !== "all" && p.kpis[k]).map((p) => ({ tier: p.tier, value: p.kpis[k].value, target: p.kpis[k].target })) };
      }),
    };
  } catch (e) {
    if (e.status === 404) tieredMissing = true;
    return null;
  }
}

export async function loadKpis(province) {
  const tiered = await loadTiered(province);
  if (tiered) return tiered;
  try { return await api(`/v1/console/kpis${province ? `?province=${encodeURIComponent(province)}` : ""}`); } catch { return null; }
}

function department(d) {
  return h("section", { class: "panel dept", dataset: { department: d.code }, "aria-labelledby": `dept-${d.code}` },
    h("h3", { id: `dept-${d.code}`, text: `${d.name} (${d.code}) · ${d.feeds.join(", ")}` }),
    h("div", { class: "dept-stats" },
      h("span", { text: `${t("sources")}: ${d.sources_total}` }),
      h("span", { class: d.sources_silent ? "bad" : "ok", text: `${t("silent")}: ${d.sources_silent}` }),
      h("span", { text: `${t("rates")}: ${Object.entries(d.rates).map(([f, r]) => `${f} ${fmtNum(r, 2)}`).join(" · ") || "0"}` })),
    h("details", {}, h("summary", { text: `${t("sources")} (${d.sources.length})` }),
      h("table", { class: "table" }, h("thead", {}, h("tr", {}, ["source_id", "feed", t("commune"), t("last_received")].map((x) => h("th", { scope: "col", text: x })))),
        h("tbody", {}, d.sources.map((s) => h("tr", { class: s.silent ? "bad" : "" }, h("td", { text: s.source_id }), h("td", { text: s.feed }),
          h("td", { text: s.commune_code || "" }), h("td", { text: `${fmtTime(s.last_received_at)}${s.silent ? ` · ${t("silent")}` : ""}` })))))),
    h("h4", { text: t("rejections") }),
    Object.keys(d.rejections).length ? h("ul", { class: "compact rejections" }, Object.entries(d.rejections).map(([r, n]) =>
      h("li", { dataset: { reason: r } }, h("code", { text: r }), ` ${n}`))) : h("p", { class: "muted", text: "0" }),
    d.dead_letters.length ? h("details", { open: true }, h("summary", { text: t("dead_letters") }),
      h("table", { class: "table deadletters" }, h("thead", {}, h("tr", {}, [t("at"), "source_id", t("event"), t("reason"), t("message"), t("raw")].map((x) => h("th", { scope: "col", text: x })))),
        h("tbody", {}, d.dead_letters.map((x) => h("tr", {}, h("td", { text: fmtTime(x.at) }), h("td", { text: x.source_id || "" }),
          h("td", { text: x.event_id || "" }), h("td", {}, h("code", { text: x.reason })), h("td", { text: x.message }),
          h("td", {}, h("details", {}, h("summary", { text: t("raw") }), h("pre", { class: "raw", text: x.value })))))))) : null);
}

export async function renderHealth(root, province) {
  root.replaceChildren(h("p", { text: "…" }));
  const isDept = state.me?.role === "department";
  const [kpis, feeds] = await Promise.all([isDept ? null : loadKpis(province), api("/v1/console/feeds").catch((e) => ({ error: e.message }))]);
  const tail = feeds.dead_letter_tail;
  root.replaceChildren(h("div", { class: "health" },
    kpis ? [h("h2", { text: `${t("kpi_headline")}${province ? ` · ${province}` : ""}` }), kpiStrip(kpis)] : null,
    h("h2", { text: t("feeds") }),
    feeds.error ? h("p", { class: "error", text: feeds.error }) : [
      feeds.scope !== "all" ? h("p", { class: "note", text: t("dept_scope", { d: feeds.scope }) }) : null,
      tail ? h("p", { class: "muted", text: t("tail_note", { n: tail.messages, since: fmtTime(tail.since) }) + (tail.error ? ` (${tail.error})` : "") }) : null,
      h("button", { class: "btn ghost", type: "button", onclick: () => renderHealth(root, province) }, t("refresh")),
      h("div", { class: "depts" }, feeds.departments.map(department))]));
}
