// The API client: the key from sessionStorage on every call, and the live stream read
// with fetch (EventSource cannot send an Authorization header), resumed with
// Last-Event-ID after any break.
const KEY = "ioc.console.key";

export function getKey() { return sessionStorage.getItem(KEY); }
export function setKey(k) { sessionStorage.setItem(KEY, k); }
export function clearKey() { sessionStorage.removeItem(KEY); }

export class ApiError extends Error {
  constructor(status, body) {
    super((body && body.message) || `HTTP ${status}`);
    this.status = status; this.body = body;
  }
}

export async function api(path, { method = "GET", body } = {}) {
  const headers = { Authorization: `Bearer ${getKey()}` };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  const r = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  const text = await r.text();
  let data = null;
  try { data = text ? JSON.parse(text) : null; } catch { data = { message: text }; }
  if (r.status === 401) document.dispatchEvent(new Event("ioc-unauthorized"));  // revoked meanwhile
  if (!r.ok) throw new ApiError(r.status, data);
  return data;
}

/** Server-sent events over fetch. Calls onEvent({id, event, data}) and onStatus(s). */
export function stream(path, lastId, onEvent, report) {
  let stopped = false;
  let lastStatus = null;
  const onStatus = (st) => { lastStatus = st; report(st); };
  let controller = null;
  let last = lastId;
  async function once() {
    controller = new AbortController();
    const headers = { Authorization: `Bearer ${getKey()}`, Accept: "text/event-stream" };
    if (last) headers["Last-Event-ID"] = last;
    const r = await fetch(path, { headers, signal: controller.signal, cache: "no-store" });
    if (r.status === 401) throw new ApiError(401, null);
    if (r.status === 429) onStatus("limited");  // too many open streams for this key
    if (!r.ok || !r.body) throw new ApiError(r.status, null);
    onStatus("live");
    const reader = r.body.pipeThrough(new TextDecoderStream()).getReader();
    let buf = "";
    let ev = { id: null, event: "message", data: [] };
    for (;;) {
      const { value, done } = await reader.read();
      if (done) return;
      buf += value;
      let nl;
      while ((nl = buf.indexOf("\n")) >= 0) {
        const line = buf.slice(0, nl).replace(/\r$/, "");
        buf = buf.slice(nl + 1);
        if (line === "") {
          if (ev.data.length) {
            if (ev.id) last = ev.id;
            try { onEvent({ id: ev.id, event: ev.event, data: JSON.parse(ev.data.join("\n")) }); }
            catch (e) { console.error("bad event", e); }
          }
          ev = { id: null, event: "message", data: [] };
        } else if (line.startsWith(":")) {
          // comment / keep-alive
        } else {
          const i = line.indexOf(":");
          const field = i < 0 ? line : line.slice(0, i);
          const val = i < 0 ? "" : line.slice(i + 1).replace(/^ /, "");
          if (field === "id") ev.id = val;
          else if (field === "event") ev.event = val;
          else if (field === "data") ev.data.push(val);
        }
      }
    }
  }
  (async () => {
    while (!stopped) {
      try { await once(); } catch (e) {
        if (e instanceof ApiError && e.status === 401) { onStatus("unauthorized"); return; }
      }
      if (stopped) return;
      if (lastStatus !== "limited") onStatus("reconnecting");
      await new Promise((res) => setTimeout(res, lastStatus === "limited" ? 10000 : 2000));
    }
  })();
  return {
    stop() { stopped = true; if (controller) controller.abort(); },
    lastId() { return last; },
  };
}
