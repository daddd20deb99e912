// The incident views' pure logic, without a browser: deadlines missed, counts, order,
// the actions a key is shown, map markers and the merged timeline.
import { test } from "node:test";
import assert from "node:assert/strict";
import fc from "fast-check";
import { countsOf, incidentMarkers, missed, sortIncidents } from "../src/incidents.js";
import { actionsFor, mergeCandidates } from "../src/incident_actions.js";
import { timelineOf } from "../src/incident_page.js";
import { ALL_STATES } from "../src/incident_store.js";

const T = Date.parse("2026-12-07T05:00:00Z");
const iso = (ms) => new Date(ms).toISOString();
const inc = (over = {}) => ({ id: 1, title: "x", state: "open", severity: "warning", department: "so-tnmt",
  opened_at: iso(T), ack_due_at: iso(T + 60000), resolve_due_at: iso(T + 3600000), acknowledged_at: null,
  updated_at: iso(T), overdue: false, ...over });

test("a deadline is missed only while it still matters", () => {
  assert.deepEqual(missed(inc(), T + 1000), { ack: false, resolve: false });
  assert.deepEqual(missed(inc(), T + 61000), { ack: true, resolve: false });
  assert.deepEqual(missed(inc({ acknowledged_at: iso(T + 5000), state: "acknowledged" }), T + 61000), { ack: false, resolve: false });
  assert.deepEqual(missed(inc({ state: "in_progress", acknowledged_at: iso(T) }), T + 3601000), { ack: false, resolve: true });
  for (const state of ["resolved", "closed"]) assert.deepEqual(missed(inc({ state }), T + 9e9), { ack: false, resolve: false });
});

const arbIncident = fc.record({
  id: fc.integer({ min: 1, max: 1e6 }), state: fc.constantFrom(...ALL_STATES),
  severity: fc.constantFrom("critical", "warning", "info"), overdue: fc.boolean(),
  updated_at: fc.integer({ min: T, max: T + 1e9 }).map(iso),
}).map((r) => inc(r));

test("counts add up; the order is worst first and does not depend on the input's order", () => {
  fc.assert(fc.property(fc.uniqueArray(arbIncident, { selector: (r) => r.id, maxLength: 40 }), fc.nat(), (rows, seed) => {
    const c = countsOf(rows);
    assert.equal(c.total, rows.length);
    assert.equal(Object.values(c.by).reduce((a, b) => a + b, 0), rows.length);
    const sorted = sortIncidents(rows);
    const shuffled = [...rows].sort((a, b) => ((a.id * 7919 + seed) % 101) - ((b.id * 7919 + seed) % 101));
    assert.deepEqual(sortIncidents(shuffled).map((r) => r.id), sorted.map((r) => r.id));
    const ranks = sorted.map((r) => ({ critical: 3, warning: 2, info: 1 })[r.severity]);
    assert.deepEqual(ranks, [...ranks].sort((a, b) => b - a));
  }));
});

test("the actions shown follow the state and the key's role", () => {
  const op = { role: "operator" }, mine = { role: "responder", department: "so-tnmt" };
  assert.deepEqual(actionsFor(inc(), op), ["ack", "start", "resolve", "note", "assign", "severity", "attach", "merge"]);
  assert.deepEqual(actionsFor(inc({ state: "acknowledged" }), mine), ["start", "resolve", "note", "assign", "severity", "attach", "merge"]);
  assert.deepEqual(actionsFor(inc({ state: "resolved" }), op), ["close", "reopen", "note", "assign", "severity", "attach", "merge"]);
  // split needs an alert to stay behind (detached links do not count)
  const two = [{ fingerprint: "a" }, { fingerprint: "b" }];
  assert.deepEqual(actionsFor(inc({ alerts: two }), op).slice(-2), ["merge", "split"]);
  assert.ok(!actionsFor(inc({ alerts: [two[0], { fingerprint: "b", detached_at: iso(T) }] }), op).includes("split"));
  assert.deepEqual(actionsFor(inc({ state: "closed" }), op), ["reopen"]);
  assert.deepEqual(actionsFor(inc({ department: "so-xay-dung" }), mine), []);  // another department's
  assert.deepEqual(actionsFor(inc(), { role: "viewer" }), []);
  assert.deepEqual(actionsFor(inc({ merged_into: 7 }), op), []);
});

test("merge candidates: not this one, not closed or merged; the same rule and province first", () => {
  const me = inc({ id: 1, rule_id: "r", province_code: "01" });
  const rows = [inc({ id: 1 }), inc({ id: 2, rule_id: "x", province_code: "01", updated_at: iso(T + 9) }),
    inc({ id: 3, state: "closed" }), inc({ id: 4, merged_into: 9 }), inc({ id: 5, rule_id: "r", province_code: "01" }),
    inc({ id: 6, rule_id: "r", province_code: "02" })];
  assert.deepEqual(mergeCandidates(me, rows).map((x) => x.id), [5, 6, 2]);
});

test("markers: only incidents with a place, worst drawn last, larger when worse", () => {
  const m = incidentMarkers([inc({ id: 1, severity: "critical", location: [21, 105.8] }), inc({ id: 2, location: null }),
    inc({ id: 3, severity: "info", location: [21.1, 105.9] })]);
  assert.deepEqual(m.map((x) => x.id), [3, 1]);
  assert.ok(m[1].radius > m[0].radius);
});

test("the timeline merges events, escalations and notifications in time order", () => {
  const tl = timelineOf({
    steps: [{ step_id: "s1", title_vi: "Bước một", title_en: "Step one" }],
    timeline: [{ at: iso(T), action: "open", actor: "system:intake", detail: {} },
      { at: iso(T + 3000), action: "step_done", actor: "a", note: "n", detail: { step: "s1" } },
      { at: iso(T + 2000), action: "escalate", actor: "system:escalation", detail: {} }],
    escalations: [{ at: iso(T + 2000), kind: "ack", level: 1, target_role: "duty_officer", target_name: "Trực ban A", department: "d" }],
    notifications: [{ fingerprint: "incident-1", receiver: "alertmanager", created_at: iso(T + 2000), delivered_at: iso(T + 2500), attempts: 1 }],
  });
  assert.deepEqual(tl.map((e) => e.kind), ["open", "escalation", "notification", "step_done"]);
  assert.match(tl[3].extra, /Bước một/);
});
