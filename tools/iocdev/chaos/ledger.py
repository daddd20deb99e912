"""The exact ledger of one scenario: every event and every probe alert accounted for.

Sources of truth, never the workers' own counters: the broker's acknowledgements
(:class:`iocdev.chaos.load.Published`), the rows in TimescaleDB, the dead-letter topic
read from the beginning, the alert tables, the webhook receiver's log and
Alertmanager's API.

- **lost**: a published valid event that is not stored, or a published invalid event
  that is not dead-lettered;
- **double-counted**: one-minute rollup counts above the raw rows of their window;
  ``rollup_mismatch`` counts windows whose (count, sum) differ from what was published;
- **alerts missed**: a probe without a firing transition, a verified webhook delivery
  or an Alertmanager alert; **duplicated**: a second firing transition for a probe, or
  a second webhook delivery of the same transition;
- **recover_s**: from the end of the fault until storage runs again (a first row stored
  after it) and the last event published before it is stored (``stored_at``), whichever
  is later; **stall_s**: the longest time nothing was stored.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import asdict, dataclass, field
from itertools import pairwise
from pathlib import Path
from typing import Any

import httpx
import psycopg

from ioccore.settings import Settings
from iocdev.chaos.load import Published
from iocdev.chaos.receiver import read_log


@dataclass
class Ledger:
    scenario: str
    events_published: int = 0
    events_stored: int = 0
    events_rolled_up: int = 0
    late_not_rolled_up: int = 0
    invalid_published: int = 0
    dead_lettered: int = 0
    valid_dead_lettered: int = 0
    publish_failed: int = 0
    stored_unacknowledged: int = 0
    lost: int = 0
    double_counted: int = 0
    rollup_mismatch: int = 0
    alerts_expected: int = 0
    alerts_fired: int = 0
    alerts_delivered_webhook: int = 0
    alerts_delivered_alertmanager: int = 0
    alerts_duplicated: int = 0
    alerts_missed: int = 0
    recover_s: float | None = None
    stall_s: float = 0.0
    alert_delay_max_s: float | None = None
    worker_log_lines: int = 0
    notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return (self.lost == 0 and self.double_counted == 0 and self.rollup_mismatch == 0
                and self.alerts_missed == 0 and self.alerts_duplicated == 0
                and self.events_published > 0 and self.alerts_expected > 0)

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "ok": self.ok}

    def format(self) -> str:
        def s(v: float | None) -> str:
            return "-" if v is None else f"{v:.1f} s"
        lines = [
            f"== {self.scenario}: {'OK' if self.ok else 'FAILED'}",
            f"   events   published {self.events_published}  stored {self.events_stored}"
            f"  rolled up {self.events_rolled_up}  (late, raw only {self.late_not_rolled_up})",
            f"            invalid {self.invalid_published}  dead-lettered {self.dead_lettered}"
            f"  valid dead-lettered {self.valid_dead_lettered}"
            f"  publish failed {self.publish_failed}"
            f" (stored anyway {self.stored_unacknowledged})",
            f"            lost {self.lost}  double-counted {self.double_counted}"
            f"  rollup windows wrong {self.rollup_mismatch}",
            f"   alerts   expected {self.alerts_expected}  fired {self.alerts_fired}"
            f"  delivered webhook {self.alerts_delivered_webhook}"
            f" / alertmanager {self.alerts_delivered_alertmanager}"
            f"  duplicated {self.alerts_duplicated}  missed {self.alerts_missed}",
            f"   recovery {s(self.recover_s)} after the fault ended;"
            f" longest stall {s(self.stall_s)}; slowest probe alert {s(self.alert_delay_max_s)}",
            f"   worker log lines {self.worker_log_lines}",
        ]
        lines.extend(f"   note: {n}" for n in self.notes)
        return "\n".join(lines)


def dead_letter_ids(settings: Settings, topic: str) -> list[str]:
    """The event ids of every message on the dead-letter topic, read from the start."""
    from kafka import KafkaConsumer, TopicPartition

    consumer = KafkaConsumer(bootstrap_servers=settings.kafka.bootstrap_servers,
                             group_id=None, enable_auto_commit=False,
                             consumer_timeout_ms=5000, **settings.kafka.client_options())
    ids: list[str] = []
    try:
        parts = [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic) or ()]
        consumer.assign(parts)
        consumer.seek_to_beginning(*parts)
        end = consumer.end_offsets(parts)
        remaining = {tp for tp in parts if end[tp] > 0}
        while remaining:
            batch = consumer.poll(timeout_ms=2000)
            if not batch and all(consumer.position(tp) >= end[tp] for tp in remaining):
                break
            for records in batch.values():
                for rec in records:
                    ids.extend(_event_ids(rec.value))
            remaining = {tp for tp in remaining if consumer.position(tp) < end[tp]}
    finally:
        consumer.close()
    return ids


def _event_ids(value: bytes) -> list[str]:
    try:
        doc = json.loads(value)
    except ValueError:
        return []
    docs = doc if isinstance(doc, list) else [doc]
    return [str(d["event_id"]) for d in docs if isinstance(d, dict) and "event_id" in d]


def _commune_of(event_id: str, commune: str, published: Published) -> bool:
    return published.commune_of.get(event_id) == commune


def alertmanager_communes(settings: Settings, tag: str) -> set[str]:
    try:
        r = httpx.get(f"{settings.alertmanager.url}/api/v2/alerts",
                      params={"filter": f'chaos_run="{tag}"', "silenced": "true",
                              "inhibited": "true"}, timeout=5)
        r.raise_for_status()
    except httpx.HTTPError:
        return set()
    return {str(a["labels"].get("commune_code")) for a in r.json()}


def collect(scenario: str, *, settings: Settings, conninfo: str, deadletter_topic: str,
            tag: str, published: Published, receiver_log: Path,
            fault_end: float | None) -> Ledger:
    """Count everything; call once the pipeline has drained."""
    led = Ledger(scenario)
    valid = published.valid
    led.events_published = len(valid)
    led.invalid_published = len(published.invalid)
    led.publish_failed = published.failed
    with psycopg.connect(conninfo) as conn:
        rows = conn.execute("SELECT event_id, extract(epoch FROM time)::float8,"
                            " extract(epoch FROM stored_at)::float8 FROM sensor_readings"
                            ).fetchall()
        raw = {(c, int(b)): (int(n), float(s), int(late)) for c, b, n, s, late in conn.execute(
            "SELECT commune_code, extract(epoch FROM time_bucket('1 minute', time))::bigint,"
            " count(*) FILTER (WHERE NOT late), coalesce(sum(value) FILTER (WHERE NOT late), 0),"
            " count(*) FILTER (WHERE late) FROM sensor_readings GROUP BY 1, 2").fetchall()}
        rollups = {(c, int(b)): (int(n), float(s)) for c, b, n, s in conn.execute(
            "SELECT commune_code, extract(epoch FROM bucket)::bigint, count, sum"
            " FROM rollup_1m WHERE metric = 'pm25'").fetchall()}
        transitions = conn.execute(
            "SELECT fingerprint, labels->>'commune_code', seq, to_state FROM alert_transitions"
            " WHERE rule_id = %s AND kind = 'state'", (f"chaos_probe_{tag}",)).fetchall()
    stored_ids = {r[0] for r in rows}
    led.events_stored = len(stored_ids & valid.keys())
    led.stored_unacknowledged = len(stored_ids - valid.keys())
    led.events_rolled_up = sum(n for n, _ in rollups.values())
    led.late_not_rolled_up = sum(late for _, _, late in raw.values())

    dead = dead_letter_ids(settings, deadletter_topic)
    dead_set = set(dead)
    led.dead_lettered = len(dead_set & published.invalid)
    led.valid_dead_lettered = len(dead_set & valid.keys())
    led.lost = (led.events_published - led.events_stored) + (
        led.invalid_published - led.dead_lettered)

    for window in raw.keys() | rollups.keys():
        raw_n, raw_s, _ = raw.get(window, (0, 0.0, 0))
        roll_n, roll_s = rollups.get(window, (0, 0.0))
        led.double_counted += max(0, roll_n - raw_n)
        if roll_n != raw_n or abs(roll_s - raw_s) > 1e-6 * max(1.0, abs(raw_s)):
            led.rollup_mismatch += 1
    if led.stored_unacknowledged == 0 and led.late_not_rolled_up == 0:
        expected = published.sum_by_window
        wrong = [w for w in expected.keys() | rollups.keys()
                 if expected.get(w, (0, 0.0))[0] != rollups.get(w, (0, 0.0))[0]
                 or abs(expected.get(w, (0, 0.0))[1] - rollups.get(w, (0, 0.0))[1]) > 1e-6
                 * max(1.0, abs(expected.get(w, (0, 0.0))[1]))]
        if wrong and led.lost == 0:
            led.rollup_mismatch += len(wrong)
            led.notes.append(f"{len(wrong)} windows differ from the published events")

    # Stored-at times: recovery after the fault and the longest stall in storage.
    stamps = sorted(r[2] for r in rows if r[0] in valid)
    if stamps:
        led.stall_s = max((b - a for a, b in pairwise(stamps)),
                          default=0.0)
    if fault_end is not None:
        # Recovered once storage runs again (a first row stored after the fault ended)
        # and the backlog published before the end is stored, whichever comes later.
        before = [r[2] for r in rows if r[0] in valid and valid[r[0]] <= fault_end]
        after = [t for t in stamps if t > fault_end]
        marks = ([max(before)] if before else []) + ([min(after)] if after else [])
        if marks:
            led.recover_s = max(0.0, max(marks) - fault_end)

    probes = {p.commune_code: p for p in published.probes}
    led.alerts_expected = len(probes)
    firing = [t for t in transitions if t[3] == "firing" and t[1] in probes]
    fired = {t[1] for t in firing}
    led.alerts_fired = len(fired)
    fp_commune = {t[0]: t[1] for t in transitions}
    got = [e for e in read_log(receiver_log) if e.get("rule_id") == f"chaos_probe_{tag}"
           and e.get("to_state") == "firing" and e.get("verified")]
    hooked: dict[str, float] = {}
    for e in got:
        commune = fp_commune.get(str(e["fingerprint"]))
        if commune in probes:
            hooked[commune] = min(hooked.get(commune, e["received_at"]), e["received_at"])
    led.alerts_delivered_webhook = len(hooked)
    in_am = alertmanager_communes(settings, tag) & probes.keys()
    led.alerts_delivered_alertmanager = len(in_am)
    per_transition = Counter((e["fingerprint"], e["seq"]) for e in got)
    led.alerts_duplicated = (len(firing) - len(fired)) + sum(
        n - 1 for n in per_transition.values())
    led.alerts_missed = len([c for c in probes
                             if c not in fired or c not in hooked or c not in in_am])
    for c in sorted(probes):
        if c in fired and c in hooked and c in in_am:
            continue
        ids = [r for r in rows if r[0] in valid and _commune_of(r[0], c, published)]
        stored = f"stored {max(r[2] for r in ids) - probes[c].built_at:.1f} s after publish" \
            if ids else "not stored"
        states = [t[3] for t in sorted(transitions, key=lambda t: t[2]) if t[1] == c]
        led.notes.append(f"missed probe {c}: {stored}; transitions {states or 'none'}; "
                         f"fired {c in fired}, webhook {c in hooked}, alertmanager {c in in_am}")
    if hooked:
        led.alert_delay_max_s = max(hooked[c] - probes[c].built_at for c in hooked)
    ghosts = {str(e["fingerprint"]) for e in got} - fp_commune.keys()
    if ghosts:
        led.notes.append(f"{len(ghosts)} webhook-delivered alert(s) with no stored transition "
                         f"(sent, then rolled back?): {sorted(ghosts)[:3]}")
    unverified = [e for e in read_log(receiver_log) if not e.get("verified")]
    if unverified:
        led.notes.append(f"{len(unverified)} webhook deliveries failed verification")
    return led
