"""Same events, same verdicts, however they are batched (stage 1 ownership, real registry).

The registry is fixed for the property (explicit registrations, quota 0): every event's
verdict then depends on the event and its topic only. With a quota, which new sources
get registered first is first-come by design (docs/security.md), so not part of it.
"""

from __future__ import annotations

import asyncio
import itertools
import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import psycopg
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from iocdev.sandbox import envelope, fresh_database

from ioccore.events.record import Record
from ioccore.events.validate import Validator
from ioccore.settings import Settings
from streams.deadletters import DeadLetter
from streams.ownership import DepartmentTopics, Ownership
from streams.stage1 import InMessage, Stage1

pytestmark = pytest.mark.integration

DEPTS = ("d1", "d2")
OWNERS = {"s1": "d1", "s2": "d2"}  # s3 is nobody's
PATTERN = "tprop.dept.{department}.{feed}.v1"


class CodeIndex:
    """Commune codes only (every event here names one): the geo part is not under test."""

    def lookup(self, lat: np.ndarray, lon: np.ndarray, source_ids: list[str] | None
               ) -> tuple[np.ndarray, np.ndarray]:
        raise AssertionError("no located events here")

    def province_of(self, commune_codes: np.ndarray) -> np.ndarray:
        return np.array(["01"] * len(commune_codes), dtype=object)

    def check_code(self, code: str) -> tuple[str, str]:
        return code, "code"


def expected(topic_dept: str, env_dept: str, source: str) -> str:
    if env_dept != topic_dept:
        return "forbidden_department"
    owner = OWNERS.get(source)
    if owner is None:
        return "unregistered_source"
    return "accepted" if owner == topic_dept else "forbidden_source"


@pytest.fixture(scope="module")
def registry_db(stack: Settings) -> Iterator[str]:
    with fresh_database(stack, "ioc_prop") as (_, conninfo):
        with psycopg.connect(conninfo, autocommit=True) as conn:
            for d in DEPTS:
                conn.execute("INSERT INTO departments (code, name, feeds, source_quota) "
                             "VALUES (%s, %s, %s, 0)", (d, d, ["sensor"]))
            for s, d in OWNERS.items():
                conn.execute("INSERT INTO sources (source_id, department, feed, registration)"
                             " VALUES (%s, %s, 'sensor', 'explicit')", (s, d))
        yield conninfo


events_st = st.lists(st.tuples(st.sampled_from(DEPTS), st.sampled_from(DEPTS),
                               st.sampled_from(("s1", "s2", "s3"))), min_size=1, max_size=25)


def run(conninfo: str, messages: list[InMessage], cuts: list[int]) -> dict[str, str]:
    """Verdict per event id when ``messages`` are processed in batches split at ``cuts``
    by stage 1 with the ownership check in its chain."""
    topics = DepartmentTopics(PATTERN)
    own = Ownership(conninfo, topics)
    verdicts: dict[str, str] = {}

    async def send(enriched: dict[str, list[Record]], dead: list[DeadLetter]) -> None:
        for recs in enriched.values():
            verdicts.update({r.event_id: "accepted" for r in recs})
        for letter in dead:
            verdicts[json.loads(letter.value)["event_id"]] = letter.reason

    stage1 = Stage1(Validator(max_message_bytes=1 << 20, max_future_skew_s=300,
                              known_commune=lambda code: True), CodeIndex(),
                    own.feeds({}), send, checks=(own,), publisher=topics.publisher)
    bounds = [0, *sorted(set(cuts)), len(messages)]

    async def go() -> None:
        try:
            for a, b in itertools.pairwise(bounds):
                if a < b:
                    await stage1.process(messages[a:b])
        finally:
            await stage1.close()

    asyncio.run(go())
    return verdicts


@settings(max_examples=25, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(events=events_st, cuts_a=st.lists(st.integers(0, 25), max_size=6),
       cuts_b=st.lists(st.integers(0, 25), max_size=6))
def test_verdicts_do_not_depend_on_batching(registry_db: str, events: list[Any],
                                           cuts_a: list[int], cuts_b: list[int]) -> None:
    at = datetime.now(UTC) - timedelta(minutes=1)
    messages = []
    want = {}
    for i, (topic_dept, env_dept, source) in enumerate(events):
        ev = envelope("sensor", f"e{i}", source, at,
                      {"metric": "pm25", "value": 10.0, "unit": "ug/m3"},
                      commune_code="00004", department=env_dept)
        topic = PATTERN.format(department=topic_dept, feed="sensor")
        messages.append(InMessage(topic, 0, i, source.encode(), json.dumps([ev]).encode()))
        want[f"e{i}"] = expected(topic_dept, env_dept, source)
    cuts = [c for c in cuts_a if c < len(messages)]
    other = [c for c in cuts_b if c < len(messages)]
    assert run(registry_db, messages, cuts) == want
    assert run(registry_db, messages, other) == want


IDS = ("x0", "x1", "x2", "flood-s2-0800")
a_event_st = st.tuples(st.sampled_from(("s1", "s2", "s3")), st.sampled_from(IDS),
                       st.sampled_from(DEPTS))
traffic_st = st.lists(st.one_of(st.tuples(st.just("A"), a_event_st),
                                st.tuples(st.just("B"), st.sampled_from(IDS))),
                      min_size=1, max_size=25)


def stored_of_b(conninfo: str, traffic: list[tuple[str, Any]], cuts: list[int]
                ) -> list[str]:
    """Event ids of d2's (B's) accepted events, in order, when ``traffic`` is processed
    by one stage 1 (its duplicate memory included) in batches split at ``cuts``."""
    at = datetime.now(UTC) - timedelta(minutes=1)
    offsets = {"A": 0, "B": 0}
    messages = []
    for who, what in traffic:
        if who == "A":
            source, event_id, dept = what
            topic = PATTERN.format(department="d1", feed="sensor")
        else:
            source, event_id, dept = "s2", what, "d2"
            topic = PATTERN.format(department="d2", feed="sensor")
        ev = envelope("sensor", event_id, source, at,
                      {"metric": "pm25", "value": 10.0, "unit": "ug/m3"},
                      commune_code="00004", department=dept)
        messages.append(InMessage(topic, 0, offsets[who], source.encode(),
                                  json.dumps([ev]).encode()))
        offsets[who] += 1
    topics = DepartmentTopics(PATTERN)
    own = Ownership(conninfo, topics)
    stored: list[str] = []
    b_topic = PATTERN.format(department="d2", feed="sensor")

    async def send(enriched: dict[str, list[Record]], dead: list[DeadLetter]) -> None:
        for recs in enriched.values():
            stored.extend(r.event_id for r in recs
                          if r.origin is not None and r.origin.topic == b_topic)

    stage1 = Stage1(Validator(max_message_bytes=1 << 20, max_future_skew_s=300,
                              known_commune=lambda code: True), CodeIndex(),
                    own.feeds({}), send, checks=(own,), publisher=topics.publisher)
    bounds = [0, *sorted({c for c in cuts if c < len(messages)}), len(messages)]

    async def go() -> None:
        try:
            for a, b in itertools.pairwise(bounds):
                if a < b:
                    await stage1.process(messages[a:b])
        finally:
            await stage1.close()

    asyncio.run(go())
    return sorted(stored)


@settings(max_examples=25, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(traffic=traffic_st, cuts=st.lists(st.integers(0, 25), max_size=6))
def test_another_departments_traffic_cannot_change_what_is_stored_for_b(
        registry_db: str, traffic: list[tuple[str, Any]], cuts: list[int]) -> None:
    """Issue 24, item 3 (ownership before memory): whatever department d1 writes on its
    own topic (d2's source ids, d2's predictable event ids, d2's department name), d2's
    stored events are the same as without d1's traffic."""
    alone = [(who, what) for who, what in traffic if who == "B"]
    assert stored_of_b(registry_db, traffic, cuts) == stored_of_b(registry_db, alone, [])
