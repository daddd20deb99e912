"""Stage 2: make enriched events durable, fold them into windows, evaluate alert rules.

Runs on ``ioc.enriched.v1``, keyed and so partitioned by commune: one commune's windows
and alerts live in exactly one worker at a time. Contract of ``process``:
- returns only after the batch's rows and window totals are committed (the caller then
  acknowledges the messages, so offsets never run ahead of the database);
- an undecodable message is logged and skipped (stage 1 wrote it, so this is a bug, and
  a bug must not stall the partition);
- window totals come back from the database after the write, so what rules see is
  exactly what Grafana sees.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

import msgspec

from ioc.core import metrics
from ioc.core.errors import RowsRejectedError
from ioc.core.events.record import Record, decode_records
from streams.sinks.timescale import TimescaleSink, WindowTotal, WriteResult

log = logging.getLogger(__name__)

WindowHook = Callable[[list[WindowTotal], list[Record], float], Awaitable[None]]
"""Called after each committed batch with (windows, records, watermark epoch seconds)."""

RejectHook = Callable[[list[tuple[Record, str]]], Awaitable[None]]
"""Receives records the database refused, with the reason (sent to the dead letter)."""

_SAMPLE = 500  # latency observations per feed per batch: enough for the histogram


@dataclass(slots=True)
class Prepared:
    """A decoded batch with its late flags and the watermark after it."""

    records: list[Record]
    late: list[bool]
    watermark: float


@dataclass(slots=True)
class Stage2Result:
    records: int
    write: WriteResult
    watermark: float


class Stage2:
    """Decode, mark late events against the watermark, write, then hand windows on."""

    def __init__(self, sink: TimescaleSink, *, allowed_lateness_s: float,
                 on_windows: WindowHook | None = None,
                 on_rejected: RejectHook | None = None,
                 max_rows: int = 200_000) -> None:
        self._sink = sink
        self._max_rows = max_rows
        self.on_rejected = on_rejected
        self._lateness = allowed_lateness_s
        self._on_windows = on_windows
        self.watermark = 0.0
        """Largest occurred_at seen (epoch seconds): event time, never wall time."""

    async def process(self, values: Sequence[bytes]) -> Stage2Result:
        return await self.commit(self.prepare(values))

    def prepare(self, values: Sequence[bytes]) -> Prepared:
        """Decode and mark late events (CPU only, in order: it moves the watermark)."""
        records: list[Record] = []
        for value in values:
            try:
                records.extend(decode_records(value))
            except (msgspec.DecodeError, msgspec.ValidationError) as exc:
                log.error("stage 2: undecodable enriched message skipped: %s", exc)
        if not records:
            return Prepared([], [], self.watermark)
        cutoff = self.watermark - self._lateness
        times = [r.occurred_at.timestamp() for r in records]
        late = [t < cutoff for t in times]
        self.watermark = max(self.watermark, max(times))
        metrics.WATERMARK.set(self.watermark)
        return Prepared(records, late, self.watermark)

    async def commit(self, prepared: Prepared) -> Stage2Result:
        """Write a prepared batch, then hand its windows on; returns once committed."""
        records, late = prepared.records, prepared.late
        if not records:
            return Stage2Result(0, WriteResult(), prepared.watermark)
        rejected: list[tuple[Record, str]] = []
        result = WriteResult()
        for i in range(0, len(records), self._max_rows):  # bounded transactions
            j = i + self._max_rows
            result.merge(await self._write(records[i:j], late[i:j], rejected))
        if rejected:
            log.error("stage 2: %d records refused by the database, dead-lettered: %s",
                      len(rejected), rejected[0][1])
            if self.on_rejected is not None:
                await self.on_rejected(rejected)
        self._observe(records, result)
        if self._on_windows is not None:
            await self._on_windows(result.windows, records, prepared.watermark)
        return Stage2Result(len(records), result, prepared.watermark)

    async def _write(self, records: list[Record], late: list[bool],
                     rejected: list[tuple[Record, str]]) -> WriteResult:
        """Write; if the database refuses the rows, halve until the bad ones are alone.

        A refused row would otherwise be retried forever and stall its partition; the
        halving costs log2(batch) extra transactions per bad row, and only then.
        """
        try:
            return await self._sink.write(records, late)
        except RowsRejectedError as exc:
            if len(records) == 1:
                rejected.append((records[0], str(exc)))
                return WriteResult()
            mid = len(records) // 2
            first = await self._write(records[:mid], late[:mid], rejected)
            return first.merge(await self._write(records[mid:], late[mid:], rejected))

    def _observe(self, records: list[Record], result: WriteResult) -> None:
        for feed, n in result.inserted.items():
            metrics.EVENTS_STORED.labels(feed).inc(n)
        for feed, n in result.duplicates.items():
            metrics.EVENTS_DUPLICATE.labels(feed).inc(n)
        for feed, n in result.late.items():
            if n:
                metrics.EVENTS_LATE.labels(feed).inc(n)
        metrics.ROLLUP_UPSERTS.inc(len(result.windows))
        committed = result.committed_at or time.time()
        seen: dict[str, int] = {}
        for rec in records:
            n = seen.get(rec.feed, 0)
            if n < _SAMPLE:
                seen[rec.feed] = n + 1
                metrics.LATENCY_STORED.labels(rec.feed).observe(
                    max(0.0, committed - rec.occurred_at.timestamp()))
