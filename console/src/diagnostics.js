// What the page exposes for the browser tests and for an operator's devtools:
// `window.__iocConsole` (render times, group counts, sign-outs, timers, events seen).
export function diagnostics(values) {
  if (typeof window === "undefined") return;
  window.__iocConsole = Object.assign(window.__iocConsole || {}, values);
}
