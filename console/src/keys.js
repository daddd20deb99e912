// Keyboard shortcuts: 1-6 views, w wall mode, l language, / first filter, j/k groups.
// Ignored while typing in a field, while a dialog is open and when signed out.
import { state } from "./state.js";
import { go, toggleLang, toggleWall } from "./controller.js";
import { viewsOf } from "./views.js";

function onKey(e) {
  if (!state.me || e.ctrlKey || e.metaKey || e.altKey) return;
  const tag = (e.target.tagName || "").toLowerCase();
  if (["input", "textarea", "select"].includes(tag) || document.querySelector("dialog[open]")) return;
  const views = viewsOf(state.me);
  if (/^[1-9]$/.test(e.key) && views[Number(e.key) - 1]) { go(views[Number(e.key) - 1]); e.preventDefault(); }
  else if (e.key === "w") toggleWall();
  else if (e.key === "l") toggleLang();
  else if (e.key === "/") { document.querySelector("#filters input, #filters select")?.focus(); e.preventDefault(); }
  else if (e.key === "j" || e.key === "k") {
    const toggles = [...document.querySelectorAll(".group-toggle")];
    if (!toggles.length) return;
    const i = toggles.indexOf(document.activeElement);
    const next = e.key === "j" ? Math.min(toggles.length - 1, i + 1) : Math.max(0, i - 1);
    toggles[next].focus(); e.preventDefault();
  }
}

export function installKeys() { document.addEventListener("keydown", onKey); }
