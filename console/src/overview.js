// Beside the map: today's KPIs and the worst alert groups, so that alerts, map and KPIs
// share one screen; a group's link opens it on the board.
import { h } from "./dom.js";
import { t } from "./i18n.js";
import { state, matchesFilters, isBackfilled } from "./state.js";
import { levelName } from "./severity.js";
import { groupAlerts } from "./board.js";
import { kpiStrip } from "./kpis.js";

export function overview(v, openGroup) {
  const groups = groupAlerts([...state.alerts.values()].filter((a) => matchesFilters(a, v) && !isBackfilled(a)), v.group);
  return h("div", { class: "overview" }, kpiStrip(state.kpis),
    h("h3", { text: `${t("view_board")}: ${groups.length} ${t("groups")}` }),
    h("ul", { class: "compact top-groups" }, groups.slice(0, 8).map((g) => h("li", {},
      h("a", { href: "#", onclick: (e) => { e.preventDefault(); openGroup(g.id); } },
        h("span", { class: `sev sev-${levelName(g.worst)}`, text: t(levelName(g.worst)) }),
        ` ${g.values.join(" · ")} (${g.members.length})`)))));
}
