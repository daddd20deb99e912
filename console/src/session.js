// Signing in and out. Every way out comes through `signOut`: the top bar's button, a key
// revoked meanwhile (any API call answering 401, or the stream). It stops the stream and
// the timers, forgets the key and everything loaded with it and shows the sign-in form;
// a second call (the stream and a request both noticing the same revocation) does nothing.
import { ApiError, clearKey, getKey, setKey } from "./api.js";
import { t } from "./i18n.js";
import { state, pickProvince, writeUrl } from "./state.js";
import * as store from "./store.js";
import { startLive, stopLive } from "./live.js";
import * as timers from "./timers.js";
import { mount, unmount, queueUpdate, settings as v } from "./controller.js";
import { closeDialogs, signinForm } from "./shell.js";
import { diagnostics } from "./diagnostics.js";
import { POLL_MS, tick as incidentsTick } from "./incident_store.js";

const FRESH_FOR_MS = 5 * 60000;
let signouts = 0;

function showSignin(error = null) {
  signinForm(v, error, {
    onKey: (key) => { setKey(key); start(); },
    onLang: () => { v.lang = v.lang === "vi" ? "en" : "vi"; writeUrl(v); showSignin(error); },
  });
}

/** New critical alerts stay highlighted for five minutes. */
function expireFresh() {
  const now = Date.now();
  let changed = false;
  for (const [fp, at] of state.fresh) if (now - at > FRESH_FOR_MS) { state.fresh.delete(fp); changed = true; }
  if (changed) queueUpdate("ui");
}

/** Signs in with the key of this tab (if any): who it is, the board, the stream, timers. */
export async function start() {
  if (!getKey()) { showSignin(); return; }
  try {
    await store.loadMe();
  } catch (e) {
    clearKey(); state.me = null;
    showSignin(e instanceof ApiError && e.status === 401 ? t("bad_key") : `${t("failed")}: ${e.message}`);
    return;
  }
  if (state.me.role === "department") { mount(signOut); report(); return; }
  if (state.me.role === "responder") {  // a department's people: its incidents, polled
    mount(signOut);
    timers.every(POLL_MS, () => incidentsTick(v));
    report();
    return;
  }
  let asOf;
  try {
    asOf = await store.loadBoard();
    await store.loadSilences();
  } catch (e) {
    signOut(`${t("failed")}: ${e.message}`);  // a 401 has already signed out: this does nothing
    return;
  }
  if (!state.me) return;  // signed out meanwhile
  mount(signOut);
  const province = pickProvince(v);
  store.loadCommunes(province).catch(() => {});
  store.loadKpis(province);
  startLive(asOf, () => signOut(t("bad_key")));
  timers.every(30000, () => store.loadSilences());
  timers.every(10000, expireFresh);
  timers.every(60000, () => store.loadKpis(pickProvince(v)));
  timers.every(POLL_MS, () => incidentsTick(v));
  report();
}

function report() {
  diagnostics({ signouts, timers: timers.count(), signedIn: !!state.me });
}

/** The one way out; `reason` is shown on the sign-in form. True if it signed out. */
export function signOut(reason = null) {
  if (!state.me) return false;
  stopLive();
  timers.stopAll();
  clearKey();
  unmount();
  store.reset();
  closeDialogs();
  signouts += 1;
  report();
  showSignin(reason);
  return true;
}

document.addEventListener("ioc-unauthorized", () => signOut(t("bad_key")));
