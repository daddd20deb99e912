"""Stage 1 on the real broker: every malformed event reaches the dead-letter topic with
its expected reason, its original bytes and its origin, while every valid event around
it is stored; and a department publishing with kcat gets its events accepted."""

from __future__ import annotations

import base64
import json
import shutil
import subprocess
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from iocdev.sandbox import Pipeline, envelope
from kafka import KafkaConsumer

from ioccore.settings import ROOT

pytestmark = [pytest.mark.integration, pytest.mark.slow]

CORPUS = ROOT / "tests" / "data" / "malformed" / "corpus.jsonl"


def corpus() -> list[dict[str, Any]]:
    cases = [json.loads(line) for line in CORPUS.read_text().splitlines() if line.strip()]
    # oversize: built below; Kafka-only and whole-batch cases: test_hostile_corpus.py
    return [c for c in cases if "max_message_bytes" not in c and not c.get("tombstone")
            and not c.get("no_key") and "expected_outcome" not in c]


def raw_of(case: dict[str, Any]) -> bytes:
    if "raw_b64" in case:
        return base64.b64decode(case["raw_b64"])
    return str(case["raw"]).encode()


def topic_feed(raw: bytes) -> str:
    """The feed topic a department would publish this event on (sensor if unreadable)."""
    try:
        doc = json.loads(raw)
    except (ValueError, RecursionError):
        return "sensor"
    item = doc[0] if isinstance(doc, list) and doc else doc
    feed = item.get("feed") if isinstance(item, dict) else None
    return feed if feed in ("sensor", "traffic", "service") else "sensor"


def valid_event(i: int) -> dict[str, Any]:
    at = datetime.now(UTC) - timedelta(minutes=1)
    return envelope("sensor", f"ok-{i}-{uuid.uuid4().hex[:6]}", f"good-{i}", at,
                    {"metric": "pm25", "value": 30.0 + i, "unit": "ug/m3"},
                    commune_code="00004")


def dead_letters(pipe: Pipeline, expected: int) -> list[Any]:
    consumer = KafkaConsumer(pipe.topics["deadletter"],
                             bootstrap_servers=pipe.settings.kafka.bootstrap_servers,
                             auto_offset_reset="earliest", consumer_timeout_ms=20_000,
                             group_id=f"dlq-{uuid.uuid4().hex[:8]}",
                             **pipe.settings.kafka.client_options())
    out = []
    for message in consumer:
        out.append(message)
        if len(out) >= expected:
            break
    consumer.close()
    return out


def test_malformed_corpus_goes_to_dead_letter_and_valid_events_are_stored(
        pipe: Pipeline) -> None:
    cases = corpus()
    assert len(cases) >= 30
    messages: dict[str, list[tuple[bytes, bytes]]] = {"sensor": [], "traffic": [],
                                                      "service": []}
    valid = 0
    for i, case in enumerate(cases):
        feed = case.get("expected_feed") or topic_feed(raw_of(case))
        key = f"case-{i}".encode()
        if case.get("prime"):
            messages[feed].append((key, raw_of(case)))  # first copy is accepted
            valid += 1
        messages[feed].append((key, raw_of(case)))
        messages["sensor"].append((b"good", json.dumps([valid_event(i)]).encode()))
        valid += 1
    oversize = json.dumps([valid_event(9999)] * 1).encode()
    oversize = oversize[:-1] + b" " * (pipe.settings.kafka.max_message_bytes + 10) + b"]"
    messages["sensor"].append((b"big", oversize))
    for feed, batch in messages.items():
        pipe.produce(feed, batch)
    pipe.start_worker()
    pipe.wait_for("SELECT count(*) FROM sensor_readings", valid, timeout=120)
    got = dead_letters(pipe, len(cases) + 1)
    reasons = sorted(dict(m.headers)["ioc-reason"].decode() for m in got)
    expected = sorted([c["expected_reason"] for c in cases] + ["message_too_large"])
    assert reasons == expected
    for case in cases:
        raw = raw_of(case)
        # the message's bytes, or for an element of a batch message that element's bytes
        matches = [dict(m.headers) for m in got if m.value and m.value in raw
                   and dict(m.headers)["ioc-reason"].decode() == case["expected_reason"]]
        assert matches, f"{case['name']}: original bytes not in the dead letter"
        assert matches[0]["ioc-source-topic"].decode().startswith("t")
    # the worker survived every poison message and is still consuming
    assert all(w.poll() is None for w in pipe.workers)


def test_department_publishing_with_kcat_gets_events_accepted(pipe: Pipeline) -> None:
    kcat = shutil.which("kcat")
    assert kcat, "kcat is installed by `ioc stack up` (Debian package kcat)"
    events = [valid_event(i) for i in range(5)]
    payload = "\n".join(json.dumps(e) for e in events) + "\n"
    subprocess.run([kcat, *pipe.settings.kafka.kcat_args(), "-t",
                    pipe.topics["sensor"], "-P", "-K", "\t"],
                   input="".join(f"{e['source_id']}\t{json.dumps(e)}\n" for e in events),
                   text=True, check=True, timeout=30)
    assert payload  # one event per message, keyed by source id
    pipe.start_worker()
    pipe.wait_for("SELECT count(*) FROM sensor_readings", len(events), timeout=90)
    ids = {r[0] for r in pipe.query("SELECT event_id FROM sensor_readings")}
    assert ids == {e["event_id"] for e in events}
