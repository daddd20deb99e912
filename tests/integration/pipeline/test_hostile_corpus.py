"""The hostile-input corpus through the real broker and a running worker (issue 15).

Every case of ``tests/data/malformed/corpus.jsonl`` is produced as its own Kafka message
(tombstones with no value, ``no_key`` cases with no key), each followed by a batch of
valid events. The run's ledger must balance: every valid event stored exactly once,
every case's dead letters exactly as expected (reason, batch index, bytes), nothing
else dead-lettered, and the worker never restarted (same process, no faust agent crash
or restart in its log)."""

from __future__ import annotations

import base64
import json
import uuid
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from iocdev.sandbox import Pipeline, envelope
from kafka import KafkaConsumer, KafkaProducer

from ioccore.settings import ROOT

pytestmark = [pytest.mark.integration, pytest.mark.slow]

CORPUS = ROOT / "tests" / "data" / "malformed" / "corpus.jsonl"
VALID_PER_CASE = 5
RESTART_SIGNS = ("Restarting dead", "crash", "Giving up", "Traceback", "internal_error")


def cases() -> list[dict[str, Any]]:
    return [json.loads(line) for line in CORPUS.read_text().splitlines() if line.strip()]


def raw_of(case: dict[str, Any], tag: str) -> bytes | None:
    if case.get("tombstone"):
        return None
    raw = base64.b64decode(case["raw_b64"]) if "raw_b64" in case else str(case["raw"]).encode()
    # the valid events inside whole-batch cases get ids of their own in this run
    return raw.replace(b'"event_id": "in-', f'"event_id": "{tag}-in-'.encode())


def topic_feed(case: dict[str, Any], raw: bytes | None) -> str:
    if case.get("expected_feed"):
        return str(case["expected_feed"])
    try:
        doc = json.loads(raw or b"")
    except (ValueError, RecursionError):
        return "sensor"
    item = doc[0] if isinstance(doc, list) and doc else doc
    feed = item.get("feed") if isinstance(item, dict) else None
    return feed if feed in ("sensor", "traffic", "service") else "sensor"


@dataclass
class Ledger:
    """What went in, what is expected out, and what came out."""

    sent_valid: int = 0
    expected_dead: Counter[tuple[str, str]] = field(default_factory=Counter)
    """(case name, reason) -> dead letters expected."""
    got_dead: Counter[tuple[str, str]] = field(default_factory=Counter)
    stored: int = 0
    restarts: list[str] = field(default_factory=list)

    def report(self) -> str:
        missing = self.expected_dead - self.got_dead
        extra = self.got_dead - self.expected_dead
        return (f"valid sent {self.sent_valid}, stored {self.stored}; dead letters expected "
                f"{sum(self.expected_dead.values())}, got {sum(self.got_dead.values())}; "
                f"missing {dict(missing)}; unexpected {dict(extra)}; restarts "
                f"{self.restarts}")


def valid_batch(i: int, n: int) -> bytes:
    at = datetime.now(UTC) - timedelta(minutes=1)
    return json.dumps([envelope("sensor", f"good-{i}-{j}-{uuid.uuid4().hex[:6]}", f"good-{i}",
                                at, {"metric": "pm25", "value": 30.0 + j, "unit": "ug/m3"},
                                commune_code="00004") for j in range(n)]).encode()


def test_corpus_through_the_broker_balances_the_ledger(pipe: Pipeline) -> None:
    all_cases = cases()
    assert len(all_cases) >= 80
    ledger = Ledger()
    origin: dict[tuple[str, int], str] = {}  # (topic, offset) -> case name
    producer = KafkaProducer(bootstrap_servers=pipe.settings.kafka.bootstrap_servers,
                             acks="all", max_request_size=4_000_000,
                             **pipe.settings.kafka.client_options())
    by_name: dict[str, bytes | None] = {}
    for i, case in enumerate(all_cases):
        name = case["name"]
        raw = raw_of(case, f"c{i}")
        if "max_message_bytes" in case:  # oversize: a real message over the topic's limit
            assert raw is not None
            raw = raw + b" " * (pipe.settings.kafka.max_message_bytes + 10)
        by_name[name] = raw
        feed = topic_feed(case, raw)
        key = None if case.get("no_key") else f"case-{i}".encode()
        sends = 2 if case.get("prime") else 1
        for n in range(sends):
            meta = producer.send(pipe.topics[feed], key=key, value=raw).get(timeout=30)
            if n == 0 and case.get("prime"):
                ledger.sent_valid += 1
                continue
            origin[(meta.topic, meta.offset)] = name
        outcome = case.get("expected_outcome")
        if outcome is not None:
            ledger.sent_valid += int(outcome["accepted"])
            for reason, _index, _count in outcome["rejections"]:
                ledger.expected_dead[(name, reason)] += 1
        else:
            ledger.expected_dead[(name, case["expected_reason"])] += 1
        producer.send(pipe.topics["sensor"], key=f"good-{i}".encode(),
                      value=valid_batch(i, VALID_PER_CASE)).get(timeout=30)
        ledger.sent_valid += VALID_PER_CASE
    producer.flush()
    producer.close()

    worker = pipe.start_worker()
    stored_sql = ("SELECT (SELECT count(*) FROM sensor_readings) + (SELECT count(*) FROM "
                  "traffic_observations) + (SELECT count(*) FROM service_events)")
    pipe.wait_for(stored_sql, ledger.sent_valid, timeout=180)

    expected_total = sum(ledger.expected_dead.values())
    consumer = KafkaConsumer(pipe.topics["deadletter"],
                             bootstrap_servers=pipe.settings.kafka.bootstrap_servers,
                             auto_offset_reset="earliest", consumer_timeout_ms=8_000,
                             group_id=f"dlq-{uuid.uuid4().hex[:8]}",
                             **pipe.settings.kafka.client_options())
    dead = []
    for message in consumer:  # until expected, then 8 s of silence for any extra
        dead.append(message)
    consumer.close()
    for m in dead:
        h = {k: v.decode() for k, v in m.headers}
        name = origin.get((h["ioc-source-topic"], int(h["ioc-source-offset"])), "?")
        ledger.got_dead[(name, h["ioc-reason"])] += 1
        assert m.value, f"{name}: a dead letter without a value"
        raw = by_name.get(name)
        if raw is not None and h["ioc-reason"] not in ("message_too_large",):
            assert m.value in raw, f"{name}: the dead letter does not hold the case's bytes"
        if name == "tombstone":
            assert json.loads(m.value)["tombstone"] is True
    ledger.stored = int(pipe.query(stored_sql)[0][0])
    log = pipe.logs[0].read_text(errors="replace")
    ledger.restarts = [sign for sign in RESTART_SIGNS if sign in log]
    # amplification: one log line per dead letter at most (a 20 KB [1,1,...] message was
    # 10,000 dead letters and 10,000 log lines)
    rejected_lines = sum(1 for line in log.splitlines() if "rejected:" in line)
    assert rejected_lines <= expected_total, rejected_lines
    if worker.poll() is not None:
        ledger.restarts.append(f"worker exited {worker.returncode}")

    print("ledger:", ledger.report())
    assert len(dead) == expected_total, ledger.report()
    assert ledger.got_dead == ledger.expected_dead, ledger.report()
    assert ledger.stored == ledger.sent_valid, ledger.report()  # no silent loss
    assert ledger.restarts == [], ledger.report()
    reasons = {r for _, r in ledger.got_dead}
    assert {"tombstone", "missing_key", "timestamp_out_of_range", "forbidden_character",
            "too_deeply_nested", "too_many_events"} <= reasons
