"""Stage 1's ownership check for events departments write to their own Kafka topics.

Kafka tells a consumer nothing about who produced a message, so the binding is the
topic: only department ``d``'s principal may write ``ioc.dept.<d>.<feed>.v1`` (broker
ACLs, ``ioc kafka principals create``). For a message from such a topic, every event
must name department ``d`` (else ``forbidden_department``), ``d`` must publish the feed,
and the source must be registered to ``d`` for that feed (:mod:`ioccore.source_registry`, the
registry the HTTP gateway uses too). The shared topics ``ioc.<feed>.v1`` are written
only by the gateway, which made the same checks before producing.

Refused events are dead-lettered like any invalid event: their original bytes, with
the topic, partition and offset they came from. A database outage is waited out with
backoff (the batch is not acknowledged meanwhile), never turned into refusals.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections import defaultdict
from collections.abc import Sequence
from typing import Any

import psycopg

from ioccore import metrics
from ioccore.db.connections import aconnect
from ioccore.events.reasons import Reason
from ioccore.events.record import FEEDS, Feed, Record
from ioccore.source_registry import Location, Refusal, authorise
from streams.area_scope import AreaScope
from streams.stage1 import (
    DeadLetter,
    InMessage,
    SendEnriched,
    Stage1,
    Stage1Output,
    ValidateEnrich,
    _dead_record,
    observe_latency,
)

log = logging.getLogger(__name__)


class DepartmentTopics:
    """Reads department and feed out of a topic name made from the configured pattern."""

    def __init__(self, pattern: str) -> None:
        regex = re.escape(pattern)
        regex = regex.replace(re.escape("{department}"),
                              r"(?P<department>[a-z0-9][a-z0-9_-]{0,31})")
        regex = regex.replace(re.escape("{feed}"), "(?P<feed>" + "|".join(FEEDS) + ")")
        self._re = re.compile(f"^{regex}$")

    @property
    def regex(self) -> str:
        """The anchored regular expression every department topic name matches."""
        return self._re.pattern

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
    """The registry checks for the records of department topics, between validation and
    sending (records know their topic: ``Record.origin``)."""

    def __init__(self, conninfo: str, topics: DepartmentTopics, *, actor: str = "stage1",
                 retry_max_s: float = 30.0) -> None:
        self.conninfo = conninfo
        self.topics = topics
        self._actor = actor
        self._retry_max_s = retry_max_s
        self._conn: psycopg.AsyncConnection[Any] | None = None

    def feeds(self, fixed: dict[str, Feed]) -> TopicFeeds:
        return TopicFeeds(fixed, self.topics)

    async def enforce(self, out: Stage1Output, batch: Sequence[InMessage]) -> None:
        """Move every refused record of ``out`` to its dead letters (original bytes)."""
        groups: dict[tuple[str, Feed], list[Record]] = defaultdict(list)
        for recs in out.enriched.values():
            for rec in recs:
                parsed = self.topics.parse(rec.origin.topic) if rec.origin else None
                if parsed is not None:
                    groups[parsed].append(rec)
        if not groups:
            return
        refusals: dict[int, tuple[Refusal, str]] = {}
        for (department, feed), records in groups.items():
            claims: dict[str, str] = {}
            locations: dict[str, Location] = {}
            topic = records[0].origin.topic if records[0].origin else ""
            for rec in records:
                if rec.department != department:
                    refusals[id(rec)] = (Refusal(Reason.FORBIDDEN_DEPARTMENT, (
                        f"department {rec.department!r} written to {department}'s topic "
                        f"{topic}")), topic)
                else:
                    claims.setdefault(rec.source_id, feed)
                    locations.setdefault(rec.source_id, Location(
                        None if rec.geo == "unassigned" else rec.commune_code,
                        rec.lat, rec.lon))
            by_source = await self._authorise(department, claims, locations)
            for rec in records:
                refusal = by_source.get(rec.source_id)
                if id(rec) not in refusals and refusal is not None:
                    refusals[id(rec)] = (refusal, topic)
        if not refusals:
            return
        by_origin = {(m.topic, m.partition, m.offset): m for m in batch}
        for code in list(out.enriched):
            kept = []
            for rec in out.enriched[code]:
                if id(rec) in refusals:
                    refusal, topic = refusals[id(rec)]
                    out.deadletters.append(self._dead(rec, refusal, topic, by_origin))
                else:
                    kept.append(rec)
            if kept:
                out.enriched[code] = kept
            else:
                del out.enriched[code]
        out.valid -= len(refusals)

    def _dead(self, rec: Record, refusal: Refusal, topic: str,
              by_origin: dict[tuple[str, int, int], InMessage]) -> DeadLetter:
        metrics.EVENTS_REJECTED.labels(rec.feed, str(refusal.reason)).inc()
        log.info("rejected: %s", refusal.message, extra={
            "event_id": rec.event_id, "source_id": rec.source_id,
            "reason": str(refusal.reason), "feed": rec.feed, "topic": topic})
        return _dead_record(rec, str(refusal.reason), refusal.message, by_origin)

    async def _authorise(self, department: str, claims: dict[str, str],
                         locations: dict[str, Location]) -> dict[str, Refusal]:
        delay = 0.5
        while True:
            try:
                if self._conn is None or self._conn.closed:
                    self._conn = await aconnect(self.conninfo, purpose="ownership")
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


class OwnedValidateEnrich(ValidateEnrich):
    """:class:`ValidateEnrich` with the ownership checks between validation and sending."""

    def __init__(self, stage1: Stage1, send: SendEnriched, ownership: Ownership,
                 area: AreaScope | None = None) -> None:
        super().__init__(stage1, send)
        self._ownership = ownership
        self._area = area or AreaScope(ownership.conninfo)

    async def process(self, batch: Sequence[InMessage]) -> Stage1Output:
        out = self._stage1.process(batch)
        await self._ownership.enforce(out, batch)
        await self._area.enforce(out, batch)  # geographic scope (streams/area_scope.py)
        await self._send(out.enriched, out.deadletters)
        observe_latency(out)
        return out

    async def close(self) -> None:
        await self._ownership.close()
        await self._area.close()
