// Feed health per department: sources last seen, event rates, rejections by reason with a
// sample of recent dead letters (and, for the IOC roles, the province's KPIs above it).
// Drawn from the store's `feeds` and `kpis`; the refresh button asks the store again.
import { h } from "./dom.js";
import { t, fmtTime, fmtNum } from "./i18n.js";
import { state } from "./state.js";
import { loadFeeds } from "./store.js";
import { kpiStrip } from "./kpis.js";

function deadLetters(rows) {
  // Fixed layout with set column widths: long ids, reasons and messages wrap inside the
  // card instead of widening the table past it (1920 px, three cards a row).
  return h("div", { class: "table-wrap" }, h("table", { class: "table deadletters" },
    h("colgroup", {}, ["dl-at", "dl-source", "dl-event", "dl-reason", "dl-message", "dl-raw"].map((c) => h("col", { class: c }))),
    h("thead", {}, h("tr", {}, [t("at"), "source_id", t("event"), t("reason"), t("message"), t("raw")].map((x) => h("th", { scope: "col", text: x })))),
    h("tbody", {}, rows.map((x) => h("tr", {}, h("td", { text: fmtTime(x.at) }), h("td", { text: x.source_id || "" }),
      h("td", { text: x.event_id || "" }), h("td", {}, h("code", { text: x.reason })), h("td", { text: x.message }),
      h("td", {}, h("details", {}, h("summary", { text: t("raw") }), h("pre", { class: "raw", text: x.value }))))))));
}

function department(d) {
  return h("section", { class: "panel dept", dataset: { department: d.code }, "aria-labelledby": `dept-${d.code}` },
    h("h3", { id: `dept-${d.code}`, text: `${d.name} (${d.code}) · ${d.feeds.join(", ")}` }),
    h("div", { class: "dept-stats" },
      h("span", { text: `${t("sources")}: ${d.sources_total}` }),
      h("span", { class: d.sources_silent ? "bad" : "ok", text: `${t("silent")}: ${d.sources_silent}` }),
      h("span", { text: `${t("rates")}: ${Object.entries(d.rates).map(([f, r]) => `${f} ${fmtNum(r, 2)}`).join(" · ") || "0"}` })),
    h("details", {}, h("summary", { text: `${t("sources")} (${d.sources.length})` }),
      h("div", { class: "table-wrap" }, h("table", { class: "table sources" },
        h("thead", {}, h("tr", {}, ["source_id", "feed", t("commune"), t("last_received")].map((x) => h("th", { scope: "col", text: x })))),
        h("tbody", {}, d.sources.map((s) => h("tr", { class: s.silent ? "bad" : "" }, h("td", { text: s.source_id }), h("td", { text: s.feed }),
          h("td", { text: s.commune_code || "" }), h("td", { text: `${fmtTime(s.last_received_at)}${s.silent ? ` · ${t("silent")}` : ""}` }))))))),
    h("h4", { text: t("rejections") }),
    Object.keys(d.rejections).length ? h("ul", { class: "compact rejections" }, Object.entries(d.rejections).map(([r, n]) =>
      h("li", { dataset: { reason: r } }, h("code", { text: r }), ` ${n}`))) : h("p", { class: "muted", text: "0" }),
    d.dead_letters.length ? h("details", { open: true }, h("summary", { text: t("dead_letters") }), deadLetters(d.dead_letters)) : null);
}

/** The feed-health view from what the store holds (`…` until its first answer). */
export function renderHealth(root, province) {
  const isDept = state.me?.role === "department";
  const feeds = state.feeds;
  const kpis = isDept ? null : state.kpis;
  if (!feeds) { root.replaceChildren(h("p", { class: "loading", text: "…" })); return; }
  const tail = feeds.dead_letter_tail;
  root.replaceChildren(h("div", { class: "health" },
    isDept ? null : [h("h2", { text: `${t("kpi_headline")}${province ? ` · ${province}` : ""}` }), h("div", { id: "kpi-slot" }, kpiStrip(kpis))],
    h("h2", { text: t("feeds") }),
    feeds.error ? h("p", { class: "error", text: feeds.error }) : [
      feeds.scope !== "all" ? h("p", { class: "note", text: t("dept_scope", { d: feeds.scope }) }) : null,
      tail ? h("p", { class: "muted", text: t("tail_note", { n: tail.messages, since: fmtTime(tail.since) }) + (tail.error ? ` (${tail.error})` : "") }) : null,
      h("button", { class: "btn ghost", type: "button", "data-action": "refresh-feeds", onclick: () => loadFeeds() }, t("refresh")),
      h("div", { class: "depts" }, feeds.departments.map(department))]));
}
