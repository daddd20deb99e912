"""Stage 1's geographic scope check: a reading outside its source's area is a dead letter.

A department, or one source, may be bound to an area (province and commune codes,
:class:`ioccore.source_registry.Area`, set with ``ioc sources area``). After the commune
lookup, every record whose source has an area and whose commune lies outside it is
refused ``out_of_area`` (stage 1 dead-letters it with its original bytes), whatever
topic it came from: a department's own topic or the gateway's shared topics (the
gateway refuses events that name an outside ``commune_code`` already, but only stage 1
knows the commune of a lat/lon reading). Sources without an area, or not in the
registry (the admin tooling), pass.

Areas change rarely, so they are cached per source for ``ttl_s`` (a change takes effect
within that time) and read for a whole batch in one query. A database outage is waited
out with backoff like the ownership check: the batch is not acknowledged meanwhile.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Sequence
from typing import Any, Final

import psycopg

from ioccore.db.connections import aconnect
from ioccore.events.record import Record
from ioccore.source_registry import Area, Refusal, areas

log = logging.getLogger(__name__)

CACHE_MAX: Final = 200_000
"""Sources remembered at most (cleared when full: a refill costs one query per batch)."""


class AreaScope:
    """Refuses the records of a batch that lie outside their source's area: a stage-1
    :class:`~streams.stage1.Check` (run after ownership; stage 1 dead-letters them)."""

    name = "area"

    def __init__(self, conninfo: str, *, ttl_s: float = 30.0, retry_max_s: float = 30.0,
                 clock: Any = time.monotonic) -> None:
        self._conninfo = conninfo
        self._ttl_s = ttl_s
        self._retry_max_s = retry_max_s
        self._clock = clock
        self._cache: dict[str, tuple[Area | None, float]] = {}
        self._conn: psycopg.AsyncConnection[Any] | None = None

    async def refuse(self, records: Sequence[Record]) -> dict[int, Refusal]:
        """Refusals (by position in ``records``) of readings outside their source's area."""
        sources = {rec.source_id for rec in records}
        if not sources:
            return {}
        bound = await self._areas(sources)
        if not any(bound.values()):
            return {}
        refusals: dict[int, Refusal] = {}
        for i, rec in enumerate(records):
            area = bound.get(rec.source_id)
            refusal = (area.refusal(rec.source_id, rec.commune_code, rec.province_code)
                       if area is not None else None)
            if refusal is not None:
                refusals[i] = refusal
        return refusals

    async def _areas(self, sources: set[str]) -> dict[str, Area | None]:
        now = self._clock()
        found: dict[str, Area | None] = {}
        missing: list[str] = []
        for s in sources:
            hit = self._cache.get(s)
            if hit is not None and now - hit[1] < self._ttl_s:
                found[s] = hit[0]
            else:
                missing.append(s)
        if missing:
            read = await self._read(missing)
            if len(self._cache) + len(missing) > CACHE_MAX:
                self._cache.clear()
            for s in missing:
                found[s] = read.get(s)
                self._cache[s] = (found[s], now)
        return found

    async def _read(self, sources: list[str]) -> dict[str, Area | None]:
        delay = 0.5
        while True:
            try:
                if self._conn is None or self._conn.closed:
                    self._conn = await aconnect(self._conninfo, purpose="area-scope",
                                                autocommit=True)
                return await areas(self._conn, sources)
            except psycopg.OperationalError as exc:
                log.warning("source areas unavailable (%s); retrying in %.1f s", exc, delay)
                if self._conn is not None:
                    await self._conn.close()
                self._conn = None
                await asyncio.sleep(delay)
                delay = min(delay * 2, self._retry_max_s)

    async def close(self) -> None:
        if self._conn is not None:
            await self._conn.close()

