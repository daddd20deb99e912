// The live stream of alert transitions: started from the board snapshot's clock, folded
// into the store, a new critical alert announced (screen readers, optional beep).
import { stream } from "./api.js";
import { applyLive, setStream } from "./store.js";
import { state } from "./state.js";
import { t, getLang } from "./i18n.js";
import { diagnostics } from "./diagnostics.js";

let live = null;

export function beep() {
  if (!state.sound) return;
  try {
    const ctx = new AudioContext();
    const o = ctx.createOscillator(); const g = ctx.createGain();
    o.frequency.value = 880; g.gain.value = 0.15; o.connect(g); g.connect(ctx.destination);
    o.start(); o.stop(ctx.currentTime + 0.35);
  } catch { /* no audio device */ }
}

function onEvent(ev) {
  if (ev.event !== "transition") return;
  const r = applyLive(ev.data);
  if (r?.isNewCritical) {
    beep();
    const alarm = document.getElementById("alarm");
    if (alarm) alarm.textContent = `${t("new_critical", { n: 1 })}: ${ev.data.annotations?.[`summary_${getLang()}`] || ev.data.rule_id}`;
  }
  diagnostics({ lastEventId: ev.id, events: (window.__iocConsole?.events || 0) + 1 });
}

/** Opens the stream from `asOf`; `onUnauthorized` runs when the key was revoked. */
export function startLive(asOf, onUnauthorized) {
  stopLive();
  live = stream("/v1/alerts/stream", asOf, onEvent, (s) => {
    setStream(s);
    if (s === "unauthorized") onUnauthorized();
  });
}

export function stopLive() {
  if (live) live.stop();
  live = null;
}

export function isLive() { return live !== null; }
