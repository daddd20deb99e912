// Alert detail: labels, annotations (vi/en), value against threshold, every transition
// with its actor and note, and the rule's metric over its window (from rollup_1m).
import { h, modal, svg } from "./dom.js";
import { t, fmtTime, fmtNum, getLang } from "./i18n.js";
import { isBackfilled, state } from "./state.js";
import { alertMatchers, openAction, openSilence, placeOf } from "./actions.js";
import { alertDetail } from "./store.js";

export function chart(series) {
  const pts = series.points.map((p) => ({ t: Date.parse(p.t), v: series.aggregate === "max" ? p.max
    : series.aggregate === "min" ? p.min : series.aggregate === "sum" ? p.sum : series.aggregate === "count" ? p.count : p.avg }))
    .filter((p) => p.v !== null && p.v !== undefined);
  if (!pts.length) return h("p", { class: "muted", text: t("no_series") });
  const W = 640, H = 200, L = 48, R = 10, T = 10, B = 28;
  const xs = pts.map((p) => p.t), vs = pts.map((p) => p.v);
  for (const x of [series.threshold, series.clear]) if (x !== null && x !== undefined) vs.push(x);
  const x0 = Math.min(...xs), x1 = Math.max(...xs, x0 + 60000);
  let y0 = Math.min(...vs), y1 = Math.max(...vs);
  if (y0 === y1) { y0 -= 1; y1 += 1; }
  const pad = (y1 - y0) * 0.08; y0 -= pad; y1 += pad;
  const X = (x) => L + ((x - x0) / (x1 - x0)) * (W - L - R);
  const Y = (y) => T + (1 - (y - y0) / (y1 - y0)) * (H - T - B);
  const line = pts.map((p, i) => `${i ? "L" : "M"}${X(p.t).toFixed(1)},${Y(p.v).toFixed(1)}`).join("");
  const hline = (y, cls, label, below) => (y === null || y === undefined ? null : [
    svg("line", { x1: L, x2: W - R, y1: Y(y), y2: Y(y), class: cls }),
    svg("text", { x: below ? L + 6 : W - R - 4, y: Y(y) + (below ? 13 : -4), "text-anchor": below ? "start" : "end",
      class: "chart-label" }, `${label} ${fmtNum(y, 2)}`)]);
  const winStart = x1 - series.window_s * 1000;
  const ticks = [y0 + pad, (y0 + y1) / 2, y1 - pad];
  return svg("svg", { viewBox: `0 0 ${W} ${H}`, class: "chart", role: "img",
    "aria-label": `${t("chart")}: ${series.metric}, ${pts.length} điểm` },
  winStart > x0 ? svg("rect", { x: X(winStart), y: T, width: W - R - X(winStart), height: H - T - B, class: "chart-window" }) : null,
  svg("line", { x1: L, x2: L, y1: T, y2: H - B, class: "axis" }), svg("line", { x1: L, x2: W - R, y1: H - B, y2: H - B, class: "axis" }),
  ticks.map((v) => svg("text", { x: L - 4, y: Y(v) + 4, "text-anchor": "end", class: "chart-label" }, fmtNum(v, 1))),
  svg("text", { x: L, y: H - 8, class: "chart-label" }, fmtTime(new Date(x0).toISOString())),
  svg("text", { x: W - R, y: H - 8, "text-anchor": "end", class: "chart-label" }, fmtTime(new Date(x1).toISOString())),
  hline(series.threshold, "chart-threshold", t("threshold")), hline(series.clear, "chart-clear", t("clear_level"), true),
  svg("path", { d: line, class: "chart-line" }));
}

function kv(obj) {
  return h("dl", { class: "kv" }, Object.entries(obj || {}).sort().map(([k, v]) => [h("dt", { text: k }), h("dd", {}, h("code", { text: String(v) }))]));
}

function annotationsOf(ann) {
  const lang = getLang(), other = lang === "vi" ? "en" : "vi";
  const names = [...new Set(Object.keys(ann || {}).map((k) => k.replace(/_(vi|en)$/, "")))];
  return h("div", { class: "annotations" }, names.map((n) => h("div", { class: "ann" },
    h("p", { lang, class: "strong", text: ann[`${n}_${lang}`] ?? ann[n] ?? "" }),
    ann[`${n}_${other}`] ? h("p", { lang: other, class: "muted", text: `${t("other_lang")}: ${ann[`${n}_${other}`]}` }) : null)));
}

export async function openDetail(fingerprint) {
  const body = h("div", { class: "detail", "aria-busy": "true" }, h("p", { text: "…" }));
  modal(t("details"), body, { wide: true });
  try {
    const { detail, series } = await alertDetail(fingerprint);
    const a = detail.alert;
    const op = series?.op || "";
    body.replaceChildren(
      h("div", { class: "detail-head" },
        h("span", { class: `sev sev-${a.severity}`, text: t(a.severity) }), h("span", { class: `st st-${a.state}`, text: t(a.state) }),
        isBackfilled(a) ? h("span", { class: "tag history", text: t("backfilled") }) : null,
        h("strong", { text: a.rule_id }), h("span", { text: placeOf(a) })),
      state.me?.can_act ? h("div", { class: "row detail-actions" },
        a.state === "firing" ? h("button", { class: "btn", type: "button", "data-action": "ack",
          onclick: (e) => { e.target.closest("dialog").close(); openAction("ack", [a]); } }, t("ack")) : null,
        a.state !== "resolved" ? h("button", { class: "btn", type: "button", "data-action": "resolve",
          onclick: (e) => { e.target.closest("dialog").close(); openAction("resolve", [a]); } }, t("resolve")) : null,
        h("button", { class: "btn ghost", type: "button", "data-action": "silence",
          onclick: (e) => { e.target.closest("dialog").close(); openSilence(alertMatchers(a)); } }, t("silence"))) : null,
      annotationsOf(a.annotations),
      h("div", { class: "value-vs", "data-testid": "value-vs" },
        h("span", { class: "big", text: `${t("value")}: ${fmtNum(a.last_value, 2)}` }),
        series && series.threshold !== null && series.threshold !== undefined
          ? h("span", { text: `${t("threshold")}: ${op} ${fmtNum(series.threshold, 2)} · ${t("clear_level")}: ${fmtNum(series.clear, 2)} · ${t("window")}: ${Math.round(series.window_s / 60)} min · ${series.aggregate}(${series.metric})` })
          : null),
      h("h3", { text: t("chart") }), series ? chart(series) : h("p", { class: "muted", text: t("no_series") }),
      h("h3", { text: t("labels") }), kv(a.labels),
      h("p", { class: "muted", text: `${t("fingerprint")}: ${a.fingerprint} · ${t("started")}: ${fmtTime(a.started_at)}` }),
      h("h3", { text: t("history") }),
      h("table", { class: "table history" },
        h("thead", {}, h("tr", {}, [t("at"), t("from_to"), t("severity"), t("value"), t("actor"), t("note")].map((x) => h("th", { scope: "col", text: x })))),
        h("tbody", {}, detail.history.map((tr) => h("tr", {},
          h("td", { text: fmtTime(tr.at) }),
          h("td", {}, tr.kind === "state" ? `${t(tr.from_state)} → ${t(tr.to_state)}` : tr.kind,
            tr.backfilled ? h("span", { class: "tag history", text: ` ${t("backfilled")}` }) : null),
          h("td", { text: t(tr.severity) }), h("td", { text: fmtNum(tr.value, 2) }),
          h("td", { text: tr.actor }), h("td", { text: tr.note || "" }))))));
    body.removeAttribute("aria-busy");
  } catch (e) {
    body.replaceChildren(h("p", { class: "error", text: `${t("failed")}: ${e.message}` }));
  }
}
