"""Stage 1's ownership check for events departments write to their own Kafka topics.

Kafka tells a consumer nothing about who produced a message, so the binding is the
topic: only department ``d``'s principal may write ``ioc.dept.<d>.<feed>.v1`` (broker
ACLs, ``ioc kafka principals create``). For a message from such a topic, every event
must name department ``d`` (else ``forbidden_department``), ``d`` must publish the feed,
and the source must be registered to ``d`` for that feed (:mod:`ioc.core.registry`, the
registry the HTTP gateway uses too). The shared topics ``ioc.<feed>.v1`` are written
only by the gateway, which made the same checks before producing.

Refused events are dead-lettered like any invalid event (value: the event as stage 1
read it, re-encoded). A database outage is waited out with backoff (the batch is not
acknowledged meanwhile), never turned into refusals.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections import defaultdict
from collections.abc import Sequence
from typing import Any

import psycopg

from ioc.core import metrics
from ioc.core.events.reasons import Reason
from ioc.core.events.record import FEEDS, RECORDS_ENCODER, Feed, Record
from ioc.core.registry import Location, Refusal, authorise
from streams.stage1 import DeadLetter, InMessage, Stage1, Stage1Output

log = logging.getLogger(__name__)


class DepartmentTopics:
    """Reads department and feed out of a topic name made from the configured pattern."""

    def __init__(self, pattern: str) -> None:
        regex = re.escape(pattern)
        regex = regex.replace(re.escape("{department}"),
                              r"(?P<department>[a-z0-9][a-z0-9_-]{0,31})")
        regex = regex.replace(re.escape("{feed}"), "(?P<feed>" + "|".join(FEEDS) + ")")
        self._re = re.compile(f"^{regex}$")

    def parse(self, topic: str) -> tuple[str, Feed] | None:
        match = self._re.match(topic)
        if match is None:
            return None
        feed: Feed = match.group("feed")  # type: ignore[assignment]
        return match.group("department"), feed


class TopicFeeds(dict[str, Feed]):
    """Stage 1's topic -> feed map, which also answers for department topics."""

    def __init__(self, fixed: dict[str, Feed], topics: DepartmentTopics) -> None:
        super().__init__(fixed)
        self._topics = topics

    def get(self, key: str, default: Any = None) -> Any:
        found = super().get(key)
        if found is not None:
            return found
        parsed = self._topics.parse(key)
        return parsed[1] if parsed else default


class Ownership:
    """Wraps :meth:`Stage1.process`: department-topic events also pass the registry."""

    def __init__(self, conninfo: str, topics: DepartmentTopics, *, actor: str = "stage1",
                 retry_max_s: float = 30.0) -> None:
        self._conninfo = conninfo
        self.topics = topics
        self._actor = actor
        self._retry_max_s = retry_max_s
        self._conn: psycopg.AsyncConnection[Any] | None = None

    def feeds(self, fixed: dict[str, Feed]) -> TopicFeeds:
        return TopicFeeds(fixed, self.topics)

    async def process(self, stage1: Stage1, messages: Sequence[InMessage]) -> Stage1Output:
        """Stage 1 per department topic (a group of its own), then the registry checks."""
        groups: dict[str | None, list[InMessage]] = defaultdict(list)
        for msg in messages:
            groups[msg.topic if self.topics.parse(msg.topic) else None].append(msg)
        if list(groups) == [None]:
            return stage1.process(messages)
        merged = Stage1Output()
        for topic, group in groups.items():
            out = stage1.process(group)
            if topic is not None:
                await self._enforce(topic, out)
            for code, recs in out.enriched.items():
                merged.enriched.setdefault(code, []).extend(recs)
            merged.deadletters.extend(out.deadletters)
            merged.valid += out.valid
        return merged

    async def _enforce(self, topic: str, out: Stage1Output) -> None:
        parsed = self.topics.parse(topic)
        if parsed is None or not out.enriched:
            return
        department, feed = parsed
        refusals: dict[int, Refusal] = {}
        claims: dict[str, str] = {}
        locations: dict[str, Location] = {}
        records = [r for recs in out.enriched.values() for r in recs]
        for rec in records:
            if rec.department != department:
                refusals[id(rec)] = Refusal(Reason.FORBIDDEN_DEPARTMENT, (
                    f"department {rec.department!r} written to {department}'s topic {topic}"))
            else:
                claims.setdefault(rec.source_id, feed)
                locations.setdefault(rec.source_id, Location(
                    None if rec.geo == "unassigned" else rec.commune_code, rec.lat, rec.lon))
        by_source = await self._authorise(department, claims, locations)
        for rec in records:
            refusal = refusals.get(id(rec)) or by_source.get(rec.source_id)
            if refusal is not None:
                refusals[id(rec)] = refusal
        if not refusals:
            return
        for code in list(out.enriched):
            kept = [r for r in out.enriched[code] if id(r) not in refusals]
            for rec in out.enriched[code]:
                if id(rec) in refusals:
                    out.deadletters.append(self._dead(rec, refusals[id(rec)], topic))
            if kept:
                out.enriched[code] = kept
            else:
                del out.enriched[code]
        out.valid -= len(refusals)

    def _dead(self, rec: Record, refusal: Refusal, topic: str) -> DeadLetter:
        metrics.EVENTS_REJECTED.labels(rec.feed, str(refusal.reason)).inc()
        log.info("rejected: %s", refusal.message, extra={
            "event_id": rec.event_id, "source_id": rec.source_id,
            "reason": str(refusal.reason), "feed": rec.feed, "topic": topic})
        return DeadLetter(key=rec.source_id.encode(), value=RECORDS_ENCODER.encode(rec),
                          reason=str(refusal.reason), message=refusal.message, feed=rec.feed,
                          source_topic=topic, source_partition=-1, source_offset=-1,
                          batch_index=None)

    async def _authorise(self, department: str, claims: dict[str, str],
                         locations: dict[str, Location]) -> dict[str, Refusal]:
        delay = 0.5
        while True:
            try:
                if self._conn is None or self._conn.closed:
                    self._conn = await psycopg.AsyncConnection.connect(self._conninfo)
                return await authorise(self._conn, department, claims, actor=self._actor,
                                       locations=locations)
            except psycopg.OperationalError as exc:
                log.warning("source registry unavailable (%s); retrying in %.1f s", exc, delay)
                if self._conn is not None:
                    await self._conn.close()
                self._conn = None
                await asyncio.sleep(delay)
                delay = min(delay * 2, self._retry_max_s)

    async def close(self) -> None:
        if self._conn is not None:
            await self._conn.close()
