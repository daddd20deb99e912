// The severity table, the store's topics and the generated icon, without a browser.
import { test } from "node:test";
import assert from "node:assert/strict";
import { SEVERITY, SEVERITIES, SEV_RANK, LEVELS, levelName, colourOf, alertLevel } from "../src/severity.js";
import { TOPICS, subscribe, publish, reset } from "../src/store.js";
import { state } from "../src/state.js";
import { favicon } from "../favicon.mjs";

test("one severity table: names worst first, ranks descending, every level named back", () => {
  assert.deepEqual(SEVERITIES, ["critical", "warning", "info"]);
  const ranks = LEVELS.map((l) => l.rank);
  assert.deepEqual(ranks, [...ranks].sort((a, b) => b - a));
  for (const l of LEVELS) { assert.equal(levelName(l.rank), l.name); assert.equal(colourOf(l.name), l.colour); }
  for (const s of SEVERITY) assert.equal(SEV_RANK[s.name], s.rank);
  assert.equal(levelName(undefined), "none");
  assert.equal(alertLevel({ state: "pending", severity: "critical" }), 0.5);
  assert.equal(alertLevel({ state: "firing", severity: "warning" }), 2);
  assert.throws(() => { SEVERITY[0].rank = 9; });
});

test("a subscriber hears its topic until it unsubscribes; reset empties the state", () => {
  const heard = [];
  const off = subscribe("alerts", (topic) => heard.push(topic));
  assert.throws(() => subscribe("nope", () => {}));
  publish("alerts"); publish("kpis");
  off();
  publish("alerts");
  assert.deepEqual(heard, ["alerts"]);
  state.me = { name: "x" }; state.alerts.set("fp", {}); state.kpis = {}; state.audit.push({});
  const all = [];
  const offs = TOPICS.map((topic) => subscribe(topic, (x) => all.push(x)));
  reset();
  offs.forEach((f) => f());
  assert.equal(state.me, null); assert.equal(state.alerts.size, 0); assert.equal(state.kpis, null);
  assert.deepEqual(state.audit, []);
  assert.deepEqual(all.sort(), [...TOPICS].sort());
});

test("favicon.ico holds a 16 and a 32 pixel PNG where its directory says", () => {
  const ico = favicon();
  assert.deepEqual([...ico.subarray(0, 6)], [0, 0, 1, 0, 2, 0]);
  for (const [i, size] of [16, 32].entries()) {
    const e = 6 + 16 * i;
    assert.equal(ico[e], size); assert.equal(ico[e + 1], size);
    const len = ico.readUInt32LE(e + 8), at = ico.readUInt32LE(e + 12);
    assert.ok(at + len <= ico.length);
    assert.equal(ico.subarray(at + 1, at + 4).toString("ascii"), "PNG");
    assert.equal(ico.readUInt32BE(at + 16), size);  // IHDR width
  }
  assert.deepEqual(favicon(), ico);  // the same bytes every build
});
