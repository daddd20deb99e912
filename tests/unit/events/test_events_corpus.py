"""The malformed corpus: each case gets exactly its reason; its neighbours pass."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import msgspec
import pytest

from ioccore.events.reasons import NOT_FROM_THE_VALIDATOR, Reason
from ioccore.events.validate import Validator

CORPUS = Path(__file__).resolve().parents[2] / "data" / "malformed" / "corpus.jsonl"
CASES: list[dict[str, Any]] = [json.loads(line) for line in CORPUS.read_text("utf-8").splitlines()]
KNOWN = {"00004", "00008", "00097"}
NOW = 1_762_160_000.0  # 2025-11-03T09:53:20Z


def raw_of(case: dict[str, Any]) -> bytes | None:
    if case.get("tombstone"):
        return None
    if "raw_b64" in case:
        return base64.b64decode(case["raw_b64"])
    return str(case["raw"]).encode()


def neighbour(i: int) -> bytes:
    return msgspec.json.encode({
        "schema_version": 1, "feed": "sensor", "event_id": f"ok-{i}", "source_id": "aq-00008",
        "department": "01-nnmt", "occurred_at": "2025-11-03T08:00:00+07:00",
        "location": {"lat": 21.04, "lon": 105.82},
        "body": {"metric": "pm10", "value": 80.5, "unit": "ug/m3"}})


def test_corpus_is_big_and_covers_the_reasons() -> None:
    assert len(CASES) >= 80
    assert len({c["name"] for c in CASES}) == len(CASES)
    covered = {c["expected_reason"] for c in CASES}
    # internal_error is a bug of the validator: no input is meant to cause it; the others
    # of NOT_FROM_THE_VALIDATOR are given after validation, but duplicates (stage 1's
    # memory) stay in the corpus for the broker-level run (pipeline/test_hostile_corpus)
    assert covered == ({r.value for r in Reason} - {"schema_violation"}
                       - {r.value for r in NOT_FROM_THE_VALIDATOR}
                       | {Reason.DUPLICATE_EVENT_ID.value})


def validate(v: Validator, case: dict[str, Any], raw: bytes | None
             ) -> tuple[list[Any], list[Any]]:
    key = None if case.get("no_key") else b"case-key"
    return v.validate(raw, now=NOW, expected_feed=case.get("expected_feed"), key=key,
                      check_key=True)


VALIDATOR_CASES = [c for c in CASES if not c.get("prime")]
"""Duplicates (``prime``) are stage 1's: tests/unit/streams/test_stage1.py runs them."""


@pytest.mark.parametrize("case", VALIDATOR_CASES, ids=[c["name"] for c in VALIDATOR_CASES])
def test_case_alone_and_in_batch(case: dict[str, Any]) -> None:
    raw = raw_of(case)
    v = Validator(max_message_bytes=case.get("max_message_bytes", 1 << 20),
                  max_future_skew_s=300, known_commune=KNOWN)
    feed = case.get("expected_feed")
    records, rejections = validate(v, case, raw)
    outcome = case.get("expected_outcome")
    if outcome is not None:  # a whole batch: its accepted events and its dead letters
        assert len(records) == outcome["accepted"]
        assert [[r.reason, r.index, r.count] for r in rejections] == outcome["rejections"]
        assert raw is not None
        for r in rejections:  # a dead letter holds the bytes of what it covers
            assert r.raw and r.raw in raw
        return
    assert records == []
    assert [r.reason for r in rejections] == [case["expected_reason"]], rejections
    assert rejections[0].message
    assert rejections[0].raw, "a dead letter is never empty"
    if not case.get("batchable", True):
        return
    assert raw is not None
    batch = b"[" + b",".join([neighbour(1), neighbour(2), raw, neighbour(3)]) + b"]"
    records, rejections = v.validate(batch, now=NOW, expected_feed=feed)
    assert [r.event_id for r in records] == ["ok-1", "ok-2", "ok-3"]
    assert [(r.reason, r.index) for r in rejections] == [(case["expected_reason"], 2)]
    assert rejections[0].raw == raw.strip()
