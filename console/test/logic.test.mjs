// Pure logic of the board, property-tested (fast-check): the same alerts give the same
// groups in any order, and the same transitions give the same alert state however the
// stream repeats them (its overlap re-sends) or, for state and seq, reorders them.
import { test } from "node:test";
import assert from "node:assert/strict";
import fc from "fast-check";
import { groupAlerts } from "../src/board.js";
import { state, applyTransition } from "../src/state.js";

const alertArb = fc.record({
  fingerprint: fc.string({ unit: fc.constantFrom(..."0123456789abcdef"), minLength: 6, maxLength: 6 }),
  rule_id: fc.constantFrom("pm25_1h", "flood_2", "traffic_incident"),
  severity: fc.constantFrom("critical", "warning", "info"),
  state: fc.constantFrom("pending", "firing", "acknowledged"),
  province_code: fc.constantFrom("01", "46"),
  commune_code: fc.constantFrom("00004", "00007", "00070", "19753"),
  team: fc.constantFrom("so-tnmt", "ioc-ops"),
}).map((a) => ({ ...a, labels: { alertname: a.rule_id, severity: a.severity, commune_code: a.commune_code,
  province_code: a.province_code, team: a.team } }));

function summary(groups) {
  return groups.map((g) => ({ id: g.id, n: g.members.length, worst: g.worst, states: g.states,
    communes: [...g.communes].sort(), shared: g.shared,
    members: g.members.map((m) => m.fingerprint).sort() }))
    .sort((x, y) => x.id.localeCompare(y.id));
}

const keysArb = fc.subarray(["rule_id", "province_code", "commune_code", "severity", "team"], { minLength: 1 });

test("grouping does not depend on the order of the alerts", () => {
  fc.assert(fc.property(fc.array(alertArb, { maxLength: 60 }), keysArb, fc.infiniteStream(fc.nat()),
    (alerts, keys, rand) => {
      const shuffled = [...alerts];
      for (let i = shuffled.length - 1; i > 0; i--) { const j = rand.next().value % (i + 1); [shuffled[i], shuffled[j]] = [shuffled[j], shuffled[i]]; }
      assert.deepEqual(summary(groupAlerts(shuffled, keys)), summary(groupAlerts(alerts, keys)));
      const total = groupAlerts(alerts, keys).reduce((n, g) => n + g.members.length, 0);
      assert.equal(total, alerts.length);
    }), { numRuns: 300 });
});

test("shared labels are exactly the labels every member has with one value", () => {
  fc.assert(fc.property(fc.array(alertArb, { minLength: 1, maxLength: 30 }), (alerts) => {
    for (const g of groupAlerts(alerts, ["rule_id"])) {
      for (const [k, v] of Object.entries(g.shared)) assert.ok(g.members.every((m) => m.labels[k] === v));
      for (const k of Object.keys(g.members[0].labels)) {
        if (k === "alertname" || k in g.shared) continue;
        assert.ok(g.members.some((m) => m.labels[k] !== g.members[0].labels[k]), k);
      }
    }
  }), { numRuns: 200 });
});

// One alert's life as the stream sends it: seq 1..n, states following the lifecycle.
const STEPS = { inactive: ["pending", "firing"], pending: ["firing", "resolved"], firing: ["acknowledged", "resolved"],
  acknowledged: ["resolved"], resolved: ["pending", "firing"] };
const lifeArb = fc.array(fc.nat(), { minLength: 1, maxLength: 12 }).map((choices) => {
  let from = "inactive";
  return choices.map((c, i) => {
    const to = STEPS[from][c % STEPS[from].length];
    const t = { fingerprint: "fp1", seq: i + 1, rule_id: "pm25_1h", kind: "state", from_state: from, to_state: to,
      at: new Date(Date.UTC(2026, 0, 1, 0, i)).toISOString(), severity: i % 2 ? "critical" : "warning",
      labels: { alertname: "pm25_1h", commune_code: "00004" }, annotations: {}, value: i, actor: to === "acknowledged" ? "op" : "system", note: null };
    from = to;
    return t;
  });
});

function fold(ts) {
  state.alerts.clear(); state.fresh.clear();
  for (const t of ts) applyTransition(t);
  return state.alerts.get("fp1");
}

test("re-sent transitions change nothing", () => {
  fc.assert(fc.property(lifeArb, fc.array(fc.nat(), { maxLength: 20 }), (life, repeats) => {
    const once = fold(life);
    const withRepeats = [];
    life.forEach((t, i) => { withRepeats.push(t); for (const r of repeats) if (r % life.length === i) withRepeats.push(t); });
    assert.deepEqual(fold(withRepeats), once);
  }), { numRuns: 300 });
});

test("reordered transitions end in the state of the newest one", () => {
  fc.assert(fc.property(lifeArb, fc.infiniteStream(fc.nat()), (life, rand) => {
    const shuffled = [...life];
    for (let i = shuffled.length - 1; i > 0; i--) { const j = rand.next().value % (i + 1); [shuffled[i], shuffled[j]] = [shuffled[j], shuffled[i]]; }
    const a = fold(shuffled), b = fold(life);
    assert.equal(a.state, b.state); assert.equal(a.seq, b.seq); assert.equal(a.severity, b.severity);
  }), { numRuns: 300 });
});
