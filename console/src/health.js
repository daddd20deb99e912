// Feed health per department: sources last seen, event rates, rejections by reason with a
// sample of recent dead letters (and, for the IOC roles, the province's KPIs above it).
// Drawn from the store's `feeds` and `kpis`; the refresh button asks the store again.
import { h } from "./dom.js";
import { t, fmtTime, fmtNum } from "./i18n.js";
import { state } from "./state.js";
import { loadFeeds } from "./store.js";
import { kpiStrip } from "./kpis.js";
import { feedbackKpiStrip } from "./feedback.js";

/** A table whose rows become labelled blocks on a narrow screen (`.stacked`, style.css). */
function stackedTable(cls, cols, head, rows) {
  return h("div", { class: "table-wrap" }, h("table", { class: `table stacked ${cls}` },
    cols ? h("colgroup", {}, cols.map((c) => h("col", { class: c }))) : null,
    h("thead", {}, h("tr", {}, head.map((x) => h("th", { scope: "col", text: x })))),
    h("tbody", {}, rows)));
}

function cell(label, content, attrs = {}) {
  return h("td", { ...attrs, "data-label": label }, content);
}

function deadLetters(rows) {
  // Fixed layout, three set columns (when; which source and event; why), long ids
  // wrapping anywhere and the raw event on a row of its own across the card: nothing
  // widens the table past its card (three cards a row at 1920 px), and on a phone each
  // dead letter is a block of labelled lines.
  const head = [t("at"), t("source_event"), t("reason")];
  return stackedTable("deadletters", ["dl-at", "dl-event", "dl-reason"], head,
    rows.map((x) => [
      h("tr", { class: "dl" }, cell(head[0], fmtTime(x.at), { class: "time" }),
        cell(head[1], [h("span", { class: "src", text: x.source_id || "" }), h("span", { class: "id", text: x.event_id || "" })]),
        cell(head[2], [h("code", { class: "reason", text: x.reason }), h("span", { class: "msg", text: x.message })])),
      h("tr", { class: "dl-raw" }, h("td", { colspan: head.length },
        h("details", {}, h("summary", { text: t("raw") }), h("pre", { class: "raw", text: x.value }))))]));
}

function sources(list) {
  const head = ["source_id", "feed", t("commune"), t("last_received")];
  return stackedTable("sources", null, head, list.map((s) => h("tr", { class: s.silent ? "bad" : "" },
    cell(head[0], s.source_id, { class: "id" }), cell(head[1], s.feed), cell(head[2], s.commune_code || ""),
    cell(head[3], `${fmtTime(s.last_received_at)}${s.silent ? ` · ${t("silent")}` : ""}`))));
}

function department(d) {
  return h("section", { class: "panel dept", dataset: { department: d.code }, "aria-labelledby": `dept-${d.code}` },
    h("h3", { id: `dept-${d.code}`, text: `${d.name} (${d.code}) · ${d.feeds.join(", ")}` }),
    h("div", { class: "dept-stats" },
      h("span", { text: `${t("sources")}: ${d.sources_total}` }),
      h("span", { class: d.sources_silent ? "bad" : "ok", text: `${t("silent")}: ${d.sources_silent}` }),
      h("span", { text: `${t("rates")}: ${Object.entries(d.rates).map(([f, r]) => `${f} ${fmtNum(r, 2)}`).join(" · ") || "0"}` })),
    h("details", {}, h("summary", { text: `${t("sources")} (${d.sources.length})` }),
      sources(d.sources)),
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
    isDept ? null : [h("h2", { text: `${t("kpi_headline")}${province ? ` · ${province}` : ""}` }), h("div", { id: "kpi-slot" }, kpiStrip(kpis)),
      h("div", { id: "fb-kpi-slot" }, feedbackKpiStrip(state.feedbackKpis))],
    h("h2", { text: t("feeds") }),
    feeds.error ? h("p", { class: "error", text: feeds.error }) : [
      feeds.scope !== "all" ? h("p", { class: "note", text: t("dept_scope", { d: feeds.scope }) }) : null,
      tail ? h("p", { class: "muted", text: t("tail_note", { n: tail.messages, since: fmtTime(tail.since) }) + (tail.error ? ` (${tail.error})` : "") }) : null,
      h("button", { class: "btn ghost", type: "button", id: "refresh-feeds", onclick: () => loadFeeds() }, t("refresh")),
      h("div", { class: "depts" }, feeds.departments.map(department))]));
}
