// Scorecards and reports: each commune, agency or province of one month against its own
// targets, ranked among its peers (GET /v1/scorecards), and the stored monthly reports
// with their XLSX/CSV files (GET /v1/reports; an operator can make one now). Files are
// fetched with the key in the Authorization header and handed over as a blob URL: the
// key never goes into a link.
import { api, getKey } from "./api.js";
import { h, toast } from "./dom.js";
import { getLang, fmtNum, fmtPct, fmtTime } from "./i18n.js";

const KPIS = ["online_share", "on_time_share", "resolved_online_share", "paid_online_share", "digitised_share"];
const TEXT = {
  vi: { level: "Cấp", commune: "Xã/phường", agency: "Cơ quan", province: "Tỉnh/thành", month: "Tháng",
    kpi: "Chỉ tiêu", rank: "Hạng", unit: "Đơn vị", value: "Kết quả", target: "Chỉ tiêu giao", status: "Đánh giá",
    met: "Đạt", below: "Chưa đạt", no_target: "Chưa giao", no_data: "Không có hồ sơ", dossiers: "Hồ sơ",
    met_of: "Đạt {m}/{n}", reports: "Báo cáo định kỳ", period: "Kỳ", cutoff: "Số liệu đến", scope: "Phạm vi",
    nation: "Toàn quốc", generate: "Lập báo cáo ngay", none: "Chưa có báo cáo", need_province: "Chọn một tỉnh/thành",
    ranked: "{r}/{n} đơn vị được xếp hạng; đơn vị không có hồ sơ không xếp hạng, đồng hạng khi bằng nhau." },
  en: { level: "Level", commune: "Commune", agency: "Agency", province: "Province", month: "Month",
    kpi: "KPI", rank: "Rank", unit: "Unit", value: "Value", target: "Target", status: "Status",
    met: "Met", below: "Below", no_target: "No target", no_data: "No dossiers", dossiers: "Dossiers",
    met_of: "Met {m} of {n}", reports: "Periodic reports", period: "Period", cutoff: "Data cut-off", scope: "Scope",
    nation: "Nation", generate: "Make a report now", none: "No report yet", need_province: "Choose a province",
    ranked: "{r} of {n} units ranked; units without dossiers are not ranked, equal shares share a rank." },
};
function s(key, vars) {
  let out = (TEXT[getLang()] || TEXT.vi)[key] ?? key;
  for (const [k, v] of Object.entries(vars || {})) out = out.replaceAll(`{${k}}`, String(v));
  return out;
}
function lastMonth() {
  const d = new Date(new Date().toLocaleString("en-US", { timeZone: "Asia/Ho_Chi_Minh" }));
  d.setDate(1); d.setMonth(d.getMonth() - 1);
  return `${d.getFullYear()}-${String(d.getMonth() + 1).padStart(2, "0")}`;
}
const view = { level: "commune", kpi: "online_share", month: lastMonth() };

async function download(id, fmt) {
  const r = await fetch(`/v1/reports/${id}.${fmt}`, { headers: { Authorization: `Bearer ${getKey()}` } });
  if (!r.ok) { toast(`HTTP ${r.status}`, "error"); return; }
  const url = URL.createObjectURL(await r.blob());
  const name = (r.headers.get("Content-Disposition") || "").match(/filename="([^"]+)"/)?.[1] || `report-${id}.${fmt}`;
  const a = h("a", { href: url, download: name });
  document.body.append(a); a.click(); a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10000);
}

function scoreTable(card) {
  const rows = card.units.map((u) => {
    const k = u.kpis[view.kpi];
    const cls = { met: "ok", below: "bad" }[k.status] || "muted";
    return h("tr", { dataset: { unit: u.code } },
      h("td", { text: k.rank ?? "—" }),
      h("td", {}, h("strong", { text: u.name || u.code }), " ", h("span", { class: "muted", text: u.name ? u.code : "" })),
      h("td", { class: cls, text: fmtPct(k.value) }), h("td", { text: fmtPct(k.target) }),
      h("td", { text: `${fmtNum(k.numerator, 0)}/${fmtNum(k.denominator, 0)}` }),
      h("td", { class: cls, text: s(k.status) }),
      h("td", { text: s("met_of", { m: u.targets_met, n: u.targets_assessed }) }));
  });
  return h("div", {},
    h("p", { class: "muted", text: s("ranked", { r: card.ranked, n: card.peers }) }),
    h("table", { class: "table scorecard" },
      h("thead", {}, h("tr", {}, [s("rank"), s("unit"), s("value"), s("target"), s("dossiers"), s("status"), "KPI"]
        .map((x) => h("th", { scope: "col", text: x })))),
      h("tbody", {}, rows)));
}

function reportList(list, province, canGenerate, redraw) {
  const items = list.reports.map((r) => h("li", { dataset: { report: r.id } },
    `${r.scope === "nation" ? s("nation") : r.scope} · ${s("period")} ${r.period} (${r.grain}) · ${s("cutoff")} ${fmtTime(r.data_cutoff)} `,
    r.files ? [h("button", { class: "btn", type: "button", onclick: () => download(r.id, "xlsx") }, "XLSX"), " ",
      h("button", { class: "btn", type: "button", onclick: () => download(r.id, "csv") }, "CSV")] : h("span", { class: "muted", text: r.state })));
  const gen = canGenerate ? h("button", { class: "btn", type: "button", onclick: async () => {
    try {
      await api("/v1/reports", { method: "POST", body: { scope: province || "nation", grain: "month", period: `${view.month}-01` } });
      redraw();
    } catch (e) { toast(e.message, "error"); }
  } }, s("generate")) : null;
  return h("section", { "aria-labelledby": "reports-title" }, h("h3", { id: "reports-title", text: s("reports") }), gen,
    items.length ? h("ul", { class: "reports" }, items) : h("p", { class: "muted", text: s("none") }));
}

/** The scorecards view into `el` for `province` (null: the provinces of the nation only). */
export async function renderScorecards(el, province, role) {
  const redraw = () => renderScorecards(el, province, role);
  const level = province ? view.level : "province";
  const select = (name, options, label) => h("label", {}, `${label} `, h("select", { onchange: (e) => { view[name] = e.target.value; redraw(); } },
    options.map(([value, text]) => h("option", { value, selected: view[name] === value }, text))));
  const controls = h("div", { class: "filters" },
    select("level", (province ? ["commune", "agency", "province"] : ["province"]).map((x) => [x, s(x)]), s("level")),
    select("kpi", KPIS.map((k) => [k, k]), s("kpi")),
    h("label", {}, `${s("month")} `, h("input", { type: "month", value: view.month, onchange: (e) => { view.month = e.target.value; redraw(); } })));
  el.replaceChildren(controls, h("p", { class: "muted", text: "…" }));
  const q = new URLSearchParams({ level, grain: "month", period: `${view.month}-01`, rank_by: view.kpi });
  if (province && level !== "province") q.set("province", province);
  try {
    const [card, list] = await Promise.all([api(`/v1/scorecards?${q}`),
      api(`/v1/reports?${new URLSearchParams(province ? { scope: province } : {})}`)]);
    el.replaceChildren(controls, scoreTable(card), reportList(list, province, role === "operator" || role === "admin", redraw));
  } catch (e) {
    el.replaceChildren(controls, h("p", { class: "error", text: e.message }));
  }
}
