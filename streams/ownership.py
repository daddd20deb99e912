"""Stage 1's ownership check for events departments write to their own Kafka topics.

Kafka tells a consumer nothing about who produced a message, so the binding is the
topic: only department ``d``'s principal may write ``ioc.dept.<d>.<feed>.v1`` (broker
ACLs, ``ioc kafka principals create``). For a message from such a topic, every event
must name department ``d`` (else ``forbidden_department``), ``d`` must publish the feed,
and the source must be registered to ``d`` for that feed (:mod:`ioccore.source_registry`, the
registry the HTTP gateway uses too). The shared topics ``ioc.<feed>.v1`` are written
only by the gateway, which made the same checks before producing.

Refused events are dead-lettered like any invalid event (by :class:`streams.stage1.Stage1`,
which runs this check in its chain): their original bytes, with the topic, partition and
offset they came from, attributed to the department whose topic carried them. A database
outage is waited out with backoff (the batch is not acknowledged meanwhile), never
turned into refusals.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections import defaultdict
from collections.abc import Sequence
from typing import Any

import psycopg

from ioccore.db.connections import aconnect
from ioccore.events.reasons import Reason
from ioccore.events.record import FEEDS, Feed, Record
from ioccore.source_registry import Location, Refusal, authorise

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

    def publisher(self, topic: str, claimed: str | None) -> str:
        """The department that published on ``topic``: the topic's own department (only
        its principal may write it), else (a shared topic, written only by the gateway
        after authorising each event) the department the event names."""
        parsed = self.parse(topic)
        return parsed[0] if parsed is not None else (claimed or "")

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
    """The registry checks for the records of department topics: a stage-1
    :class:`~streams.stage1.Check` (records know their topic: ``Record.origin``)."""

    name = "ownership"

    def __init__(self, conninfo: str, topics: DepartmentTopics, *, actor: str = "stage1",
                 retry_max_s: float = 30.0) -> None:
        self.conninfo = conninfo
        self.topics = topics
        self._actor = actor
        self._retry_max_s = retry_max_s
        self._conn: psycopg.AsyncConnection[Any] | None = None

    def feeds(self, fixed: dict[str, Feed]) -> TopicFeeds:
        return TopicFeeds(fixed, self.topics)

    async def refuse(self, records: Sequence[Record]) -> dict[int, Refusal]:
        """Refusals (by position in ``records``) of events from department topics."""
        groups: dict[tuple[str, Feed], list[int]] = defaultdict(list)
        for i, rec in enumerate(records):
            parsed = self.topics.parse(rec.origin.topic) if rec.origin else None
            if parsed is not None:
                groups[parsed].append(i)
        refusals: dict[int, Refusal] = {}
        for (department, feed), positions in groups.items():
            claims: dict[str, str] = {}
            locations: dict[str, Location] = {}
            first = records[positions[0]].origin
            topic = first.topic if first else ""
            for i in positions:
                rec = records[i]
                if rec.department != department:
                    refusals[i] = Refusal(Reason.FORBIDDEN_DEPARTMENT, (
                        f"department {rec.department!r} written to {department}'s topic "
                        f"{topic}"))
                else:
                    claims.setdefault(rec.source_id, feed)
                    locations.setdefault(rec.source_id, Location(
                        None if rec.geo == "unassigned" else rec.commune_code,
                        rec.lat, rec.lon))
            by_source = await self._authorise(department, claims, locations)
            for i in positions:
                refusal = by_source.get(records[i].source_id)
                if i not in refusals and refusal is not None:
                    refusals[i] = refusal
        return refusals

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
