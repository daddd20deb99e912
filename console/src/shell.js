// The page's frame: preferences applied to the document, the sign-in form, the top bar
// (views, stream status, who, the toggles and the one sign-out button) and the footer.
// It draws; what the buttons do is passed in by the controller and the session.
import { h } from "./dom.js";
import { setLang, t } from "./i18n.js";
import { state } from "./state.js";

const app = () => document.getElementById("app");
const STATUS_TEXT = { live: "live", reconnecting: "reconnecting", connecting: "connecting", unauthorized: "bad_key", limited: "limited" };

export function applyPrefs(v) {
  setLang(v.lang);
  document.title = t("title");
  document.body.classList.toggle("wall", v.wall);
  const skip = document.querySelector(".skip");
  if (skip) skip.textContent = t("skip");
}

/** Closes every open dialog (signing out: nothing of the session stays on screen). */
export function closeDialogs() {
  for (const d of document.querySelectorAll("dialog[open]")) d.close();
}

/** The sign-in form; `onKey(key)` signs in, `onLang()` switches the language. */
export function signinForm(v, error, { onKey, onLang }) {
  applyPrefs(v);
  const input = h("input", { id: "key", type: "password", autocomplete: "off", required: true, spellcheck: "false" });
  app().replaceChildren(h("main", { id: "main", class: "signin" },
    h("h1", { text: t("title") }),
    h("form", { class: "stack panel", onsubmit: (e) => { e.preventDefault(); onKey(input.value.trim()); } },
      h("label", { for: "key", text: t("api_key") }), input,
      h("p", { class: "muted", text: t("signin_help") }),
      error ? h("p", { class: "error", role: "alert", text: error }) : null,
      h("button", { class: "btn primary", type: "submit" }, t("signin")),
      h("button", { class: "btn ghost", type: "button", onclick: onLang }, t("lang")))));
  input.focus();
}

function statusText(s) { return STATUS_TEXT[s] ? t(STATUS_TEXT[s]) : s; }

/** The stream badge, updated in place (a status change redraws nothing else). */
export function showStream() {
  const conn = document.querySelector(".conn");
  if (!conn) return;
  conn.dataset.stream = state.stream;
  conn.className = `conn conn-${state.stream}`;
  conn.textContent = statusText(state.stream);
}

function topbar(v, views, act) {
  return h("header", { class: "topbar" },
    h("h1", { class: "brand", text: t("title") }),
    h("nav", { "aria-label": "views" }, h("ul", { class: "tabs" }, views.map((name, i) => h("li", {},
      h("a", { href: `?${new URLSearchParams({ ...Object.fromEntries(new URLSearchParams(location.search)), view: name })}`,
        "aria-current": v.view === name ? "page" : null, "aria-keyshortcuts": String(i + 1),
        onclick: (e) => { e.preventDefault(); act.go(name); } }, t(`view_${name}`)))))),
    h("div", { class: "top-tools" },
      !["department", "responder"].includes(state.me.role) ? h("span", { class: `conn conn-${state.stream}`, role: "status", "data-stream": state.stream, text: statusText(state.stream) }) : null,
      h("span", { class: "who", text: `${state.me.name} · ${t("role")}: ${state.me.role}` }),
      h("button", { class: "btn ghost", type: "button", "aria-pressed": String(state.sound), onclick: act.toggleSound },
        `${t("sound")}: ${state.sound ? t("on") : t("off")}`),
      h("button", { class: "btn ghost", type: "button", "aria-pressed": String(v.wall), "aria-keyshortcuts": "w", onclick: act.toggleWall }, t("wall")),
      h("button", { class: "btn ghost", type: "button", lang: v.lang === "vi" ? "en" : "vi", "aria-keyshortcuts": "l", onclick: act.toggleLang }, t("lang")),
      h("button", { class: "btn ghost", type: "button", id: "signout", onclick: () => act.signOut() }, t("signout"))));
}

/** Top bar, an empty <main> (returned, for the view) and the keyboard help. */
export function frame(v, views, act) {
  applyPrefs(v);
  const main = h("main", { id: "main", tabindex: "-1" });
  app().replaceChildren(topbar(v, views, act), main, h("footer", { class: "kbd-help", text: t("kbd_help") }));
  return main;
}
