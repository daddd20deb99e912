"""Feed health for the console (``GET /v1/console/feeds``): per department, its sources
and when each was last received, its event rates, and its rejections by reason with a
sample of recent dead letters.

Who sees what: a viewer, operator or admin key sees every department; a department key
sees only its own, so a department can find out why its events were refused without
asking the IOC.

Recent dead letters come from the tail of ``ioc.deadletter.v1`` itself, read on demand:
the last :data:`TAIL_PER_PARTITION` messages of each partition, without a consumer
group (nothing is committed, no other reader is disturbed), cached for
:data:`CACHE_S` seconds per process. The topic is already the bounded, durable record
(its retention); keeping a second copy in a table or in the worker would add a writer
on the hot path for a page that is read rarely. A dead letter belongs to the department
that published it (its ``ioc-department`` header, written by stage 1: the department
whose topic carried it, or for the shared topics, which only the gateway writes after
authorising each event, the department the event names); never to the owner of the
Kafka key, which whoever writes chooses (issue 24, item 8). Letters without the header
(written before it existed) belong to no department: viewers and admins see them.
Counts by reason are over that tail (the answer gives its time span);
``ioc_ingest_events_rejected_total`` counts everything, by feed.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final

import orjson
from aiokafka import AIOKafkaConsumer, TopicPartition
from fastapi import APIRouter
from psycopg.rows import dict_row

from ioc.api.console_auth import AnyKey
from ioc.api.deps import Resources, ResourcesDep
from ioc.api.errors import ForbiddenError

log = logging.getLogger("ioc.api.console")

TAIL_PER_PARTITION: Final = 200
SAMPLE_PER_DEPARTMENT: Final = 20
VALUE_PREVIEW_BYTES: Final = 2048
SOURCES_PER_DEPARTMENT: Final = 200
CACHE_S: Final = 10.0
SILENT_AFTER_S: Final = 900
_READ_TIMEOUT_S: Final = 5.0

router = APIRouter(prefix="/v1/console", tags=["console"])


@dataclass(frozen=True, slots=True)
class DeadLetterRow:
    at: datetime
    partition: int
    offset: int
    source_id: str | None
    department: str | None
    """The publishing department (``ioc-department``), None when the letter has none."""
    event_id: str | None
    reason: str
    message: str
    feed: str
    value_preview: str

    def as_json(self) -> dict[str, Any]:
        return {"at": self.at.isoformat(), "partition": self.partition, "offset": self.offset,
                "source_id": self.source_id, "event_id": self.event_id, "reason": self.reason,
                "message": self.message, "feed": self.feed, "value": self.value_preview}


def parse_dead_letter(partition: int, offset: int, timestamp_ms: int, key: bytes | None,
                      value: bytes | None, headers: Any) -> DeadLetterRow:
    """One dead-letter message as the console shows it (never raises on bad bytes)."""
    h = {k: (v or b"").decode("utf-8", "replace") for k, v in (headers or ())}
    raw = value or b""
    department = h.get("ioc-department") or None
    event_id = None
    with contextlib.suppress(Exception):
        doc = orjson.loads(raw)
        if isinstance(doc, dict):
            eid = doc.get("event_id")
            event_id = eid if isinstance(eid, str) else None
    return DeadLetterRow(
        at=datetime.fromtimestamp(timestamp_ms / 1000, UTC), partition=partition,
        offset=offset, source_id=key.decode("utf-8", "replace") if key else None,
        department=department, event_id=event_id, reason=h.get("ioc-reason", "unknown"),
        message=h.get("ioc-message", "")[:500], feed=h.get("ioc-feed", "unknown"),
        value_preview=raw[:VALUE_PREVIEW_BYTES].decode("utf-8", "replace"))


async def read_tail(res: Resources, per_partition: int = TAIL_PER_PARTITION
                    ) -> list[DeadLetterRow]:
    """The last ``per_partition`` messages of each dead-letter partition, oldest first."""
    kafka = res.settings.kafka
    topic = kafka.topics.deadletter.name
    consumer = AIOKafkaConsumer(
        bootstrap_servers=kafka.bootstrap_servers, client_id=f"{kafka.client_id}-console",
        group_id=None, enable_auto_commit=False, auto_offset_reset="earliest",
        max_partition_fetch_bytes=kafka.max_message_bytes + 65_536, request_timeout_ms=10_000,
        **kafka.client_options())
    out: list[DeadLetterRow] = []
    await consumer.start()
    try:
        partitions: set[int] = set(range(kafka.topics.deadletter.partitions))
        if res.producer is not None:  # the topic as it is, not as configured
            cluster = await res.producer.client.fetch_all_metadata()
            partitions = cluster.partitions_for_topic(topic) or set()
        tps = [TopicPartition(topic, p) for p in sorted(partitions)]
        if not tps:
            return []
        consumer.assign(tps)
        ends = await consumer.end_offsets(tps)
        begins = await consumer.beginning_offsets(tps)
        todo = {}
        for tp in tps:
            start = max(begins[tp], ends[tp] - per_partition)
            if ends[tp] > start:
                consumer.seek(tp, start)
                todo[tp] = ends[tp]
        deadline = time.monotonic() + _READ_TIMEOUT_S
        while todo and time.monotonic() < deadline:
            batch = await consumer.getmany(*todo.keys(), timeout_ms=500, max_records=500)
            for tp, messages in batch.items():
                for m in messages:
                    if m.offset < todo.get(tp, -1):
                        out.append(parse_dead_letter(tp.partition, m.offset, m.timestamp,
                                                     m.key, m.value, m.headers))
                if messages and messages[-1].offset + 1 >= todo.get(tp, 0):
                    todo.pop(tp, None)
    finally:
        await consumer.stop()
    out.sort(key=lambda d: d.at)
    return out


class TailCache:
    """One read of the tail at a time; answers reused for :data:`CACHE_S` seconds."""

    def __init__(self) -> None:
        self._at = 0.0
        self._rows: list[DeadLetterRow] = []
        self._error: str | None = None
        self._lock = asyncio.Lock()

    async def get(self, res: Resources) -> tuple[list[DeadLetterRow], str | None]:
        async with self._lock:
            if time.monotonic() - self._at > CACHE_S:
                try:
                    self._rows, self._error = await read_tail(res), None
                except Exception as exc:  # Kafka down: the page still shows the rest
                    # the text stays in the log: it can name hosts, principals, paths
                    log.warning("dead-letter tail not read: %s", exc, exc_info=exc)
                    self._error = TAIL_UNAVAILABLE
                self._at = time.monotonic()
            return self._rows, self._error


TAIL_UNAVAILABLE: Final = "the dead-letter topic could not be read; see the API's log"
"""What an answer says when the tail failed (never the exception's text)."""


def _tail(res: Resources) -> TailCache:
    cache = res.extras.get("console_tail")
    if not isinstance(cache, TailCache):
        cache = res.extras["console_tail"] = TailCache()
    return cache


_RATES = """
SELECT department, %(feed)s AS feed, count(*) AS events_5m
FROM {table}
WHERE time > now() - interval '1 hour' AND stored_at > now() - interval '5 minutes'
  AND (%(dep)s::text IS NULL OR department = %(dep)s::text)
GROUP BY department
"""
# Rows stored in the last 5 minutes whose event time is within the hour: the time bound
# keeps the scan to the newest chunk (no index on stored_at); a replay of old events is
# not a live rate.
_TABLES: Final = (("sensor", "sensor_readings"), ("traffic", "traffic_observations"),
                  ("service", "service_events"))


@router.get("/feeds", summary="Feed health per department (a department key: its own)")
async def feeds(key: AnyKey, res: ResourcesDep) -> dict[str, Any]:
    if key.role == "department":
        only = key.department
        if only is None:
            raise ForbiddenError("a department key without a department", code="no_department")
    else:
        only = None
    async with res.pool.connection() as conn, conn.cursor(row_factory=dict_row) as cur:
        await cur.execute("SELECT clock_timestamp() AS now")
        now_row = await cur.fetchone()
        now: datetime = now_row["now"] if now_row else datetime.now(UTC)
        # Registered departments, and departments seen only as owners of sources (their
        # events came over Kafka without an API key).
        await cur.execute(
            "SELECT code, name, feeds FROM departments"
            " WHERE %(d)s::text IS NULL OR code = %(d)s::text"
            " UNION ALL SELECT department, department, array_agg(DISTINCT feed) FROM sources"
            " WHERE (%(d)s::text IS NULL OR department = %(d)s::text)"
            " AND department NOT IN (SELECT code FROM departments) GROUP BY department"
            " ORDER BY 1", {"d": only})
        deps = {r["code"]: {"code": r["code"], "name": r["name"], "feeds": r["feeds"],
                            "sources": [], "sources_total": 0, "sources_silent": 0,
                            "rates": {}, "rejections": {}, "dead_letters": []}
                for r in await cur.fetchall()}
        await cur.execute(
            "SELECT department, count(*) AS total,"
            " count(*) FILTER (WHERE last_received_at < %(now)s - make_interval(secs => %(s)s))"
            " AS silent FROM sources WHERE %(d)s::text IS NULL OR department = %(d)s::text"
            " GROUP BY department", {"d": only, "now": now, "s": SILENT_AFTER_S})
        for r in await cur.fetchall():
            if r["department"] in deps:
                deps[r["department"]]["sources_total"] = r["total"]
                deps[r["department"]]["sources_silent"] = r["silent"]
        await cur.execute(
            "SELECT * FROM (SELECT source_id, department, feed, commune_code, last_seen,"
            " last_received_at, row_number() OVER (PARTITION BY department"
            " ORDER BY last_received_at) AS n FROM sources"
            " WHERE %(d)s::text IS NULL OR department = %(d)s::text) s WHERE n <= %(m)s",
            {"d": only, "m": SOURCES_PER_DEPARTMENT})
        for r in await cur.fetchall():
            if r["department"] in deps:
                deps[r["department"]]["sources"].append({
                    "source_id": r["source_id"], "feed": r["feed"],
                    "commune_code": r["commune_code"], "last_seen": r["last_seen"].isoformat(),
                    "last_received_at": r["last_received_at"].isoformat(),
                    "silent": (now - r["last_received_at"]).total_seconds() > SILENT_AFTER_S})
        for feed, table in _TABLES:
            await cur.execute(_RATES.format(table=table), {"feed": feed, "dep": only})
            for r in await cur.fetchall():
                if r["department"] in deps:
                    deps[r["department"]]["rates"][feed] = r["events_5m"] / 300.0
    tail, error = await _tail(res).get(res)
    counts: dict[str, Counter[str]] = {}
    for d in reversed(tail):  # newest first
        dep = d.department
        if dep is None or dep not in deps:
            continue
        counts.setdefault(dep, Counter())[d.reason] += 1
        if len(deps[dep]["dead_letters"]) < SAMPLE_PER_DEPARTMENT:
            deps[dep]["dead_letters"].append(d.as_json())
    for dep, c in counts.items():
        deps[dep]["rejections"] = dict(c.most_common())
    return {"as_of": now.isoformat(), "scope": only or "all",
            "silent_after_s": SILENT_AFTER_S,
            "dead_letter_tail": {"per_partition": TAIL_PER_PARTITION, "messages": len(tail),
                                 "since": tail[0].at.isoformat() if tail else None,
                                 "error": error},
            "departments": list(deps.values())}
