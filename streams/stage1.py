"""Stage 1 under the :class:`~streams.stage.Stage` contract: a chain of small steps.

    raw batch ─► Prepare (validate + geo, a time budget per message: on the event loop
                 in slices of bounded bytes, a message larger than a slice in a thread)
              ─► checks, in order (ownership, geographic scope, ...: passed in)
              ─► duplicate memory (only events every check passed)
              ─► send enriched records (one message per enriched partition, each
                 commune on its own partition) and dead letters, await delivery

Contract: ``process(batch)`` never raises for bad input. Every event of every message
ends up either in ``enriched`` or in ``deadletters`` (its original bytes, a reason, where
it came from, the publishing department). It returns once Kafka has every message, so the
raw batch is acknowledged only then; a retried batch sends again (at-least-once: its
messages' offsets are below the per-partition mark, so stage 1 does not call its own
re-delivery a duplicate, and stage 2 stores each event once). ``process_ahead(batch)``
returns once the messages are queued, with the delivery in ``Stage1Output.delivered``:
the reader processes the next batch while the broker acknowledges this one, and commits
this one's offsets only after it did (``streams.raw_reader``, "send ahead").

**Ownership before memory.** The duplicate memory comes last: an event a check refused
(another department's source, an unregistered one, one outside its area) is not
remembered, so it cannot make a later genuine event look like a duplicate. Checks see
only validated, enriched records and answer with refusals; they never touch the output.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Mapping, Sequence, Set
from dataclasses import dataclass, field
from typing import Any, Protocol

from ioccore import metrics
from ioccore.events.dedupe import SeenKeys
from ioccore.events.reasons import Reason
from ioccore.events.record import Feed, Record
from ioccore.source_registry import Refusal
from streams import deadletters
from streams.deadletters import DeadLetter, Elements, Publisher
from streams.prepare import (
    CommuneIndexLike,
    InMessage,
    Prepare,
    Prepared,
    ValidatorLike,
    elements_of,
    slices,
)
from streams.stage import TopicPartition

__all__ = ["Check", "CommuneIndexLike", "DeadLetter", "InMessage", "SendEnriched", "Stage1",
           "Stage1Output", "ValidatorLike", "observe_latency"]

log = logging.getLogger(__name__)

SendEnriched = Callable[[dict[str, list[Record]], list[DeadLetter]],
                        Awaitable[Awaitable[Any] | None]]
"""Sends enriched records (by commune) and dead letters; returns once they are queued,
with an awaitable that completes when Kafka has them all (None: it has them already)."""


class Check(Protocol):
    """One link of stage 1's chain of checks (after getsentry/arroyo's chained steps)."""

    name: str
    """Short and stable (a log field)."""

    async def refuse(self, records: Sequence[Record]) -> Mapping[int, Refusal]:
        """Which of ``records`` are refused (by position) and why; the others go on.

        May: do I/O, and wait out an outage of what it asks (backoff; the batch is not
        acknowledged meanwhile). Must not: turn an outage into refusals, change the
        records, or keep state that a refused record changes (another department's
        events must not depend on it).
        """
        ...

    async def close(self) -> None:
        """Release connections; called once when the worker stops."""
        ...


@dataclass(slots=True)
class Stage1Output:
    enriched: dict[str, list[Record]] = field(default_factory=dict)
    deadletters: list[DeadLetter] = field(default_factory=list)
    valid: int = 0
    delivered: Awaitable[None] | None = None
    """From :meth:`Stage1.process_ahead`: completes once Kafka has every message (and
    the batch's metrics are counted); raises if a delivery failed."""


class Stage1:
    """Validate, enrich, check, remember, send: the stage-1 chain (module docstring)."""

    name = "stage1"

    def __init__(self, validator: ValidatorLike, index: CommuneIndexLike,
                 feed_of_topic: dict[str, Feed], send: SendEnriched, *,
                 checks: Sequence[Check] = (), dedupe_capacity: int = 1_000_000,
                 publisher: Publisher = deadletters.named_department,
                 message_budget_s: float | None = None, inline_slice_bytes: int = 0) -> None:
        """``checks`` run in order on the records the previous ones passed.
        ``dedupe_capacity``: (source_id, event_id) pairs remembered (0: none).
        ``publisher``: the department a dead letter belongs to, from its topic.
        ``message_budget_s``: the time one message may take to validate (``over_budget``
        beyond). ``inline_slice_bytes``: validate on the event loop in slices of at most
        this many bytes of values, yielding between them (Kafka heartbeats, the other
        stages), and only a message larger than a slice in a worker thread; 0: every
        batch in the thread. The thread cost one-event drains 7-15 % of their rate on two
        cores: its GIL hand-offs with the loop and faust's consumer thread (BENCHMARKS.md,
        "Session 9")."""
        self._prepare = Prepare(validator, index, feed_of_topic,
                                publisher=publisher, message_budget_s=message_budget_s)
        self._send = send
        self._checks = tuple(checks)
        self._seen = SeenKeys(dedupe_capacity) if dedupe_capacity > 0 else None
        self._publisher = publisher
        self._slice_bytes = inline_slice_bytes

    async def process(self, batch: Sequence[InMessage]) -> Stage1Output:
        out = await self.process_ahead(batch)
        if out.delivered is not None:
            await out.delivered
        return out

    async def process_ahead(self, batch: Sequence[InMessage]) -> Stage1Output:
        """:meth:`process` up to the queued sends; await ``delivered`` before the batch
        is acknowledged (a failed delivery means processing the batch again)."""
        now = time.time()
        if self._slice_bytes > 0:
            prepared = await self._prepare_in_slices(batch, now)
        else:
            prepared = await asyncio.to_thread(self._prepare.run, batch, now)
        out = Stage1Output(deadletters=prepared.deadletters)
        found: Elements | None = None
        kept = prepared.records
        for check in self._checks:
            if not kept:
                break
            refusals = await check.refuse(kept)
            if not refusals:
                continue
            found = found or elements_of(batch)
            passed = []
            for i, rec in enumerate(kept):
                refusal = refusals.get(i)
                if refusal is None:
                    passed.append(rec)
                    continue
                out.deadletters.append(self._dead(rec, refusal, found, check.name))
                prepared.rejected[(rec.feed, str(refusal.reason))] += 1
            kept = passed
        kept = self._remember(kept, prepared, out, batch)
        for rec in kept:
            out.enriched.setdefault(rec.commune_code, []).append(rec)
        out.valid = len(kept)
        queued = await self._send(out.enriched, out.deadletters)
        out.delivered = asyncio.ensure_future(_settle(queued, prepared, kept, out))
        return out

    async def _prepare_in_slices(self, batch: Sequence[InMessage], now: float) -> Prepared:
        """:meth:`Prepare.run` over the batch's slices, in order, as one result."""
        prepared: Prepared | None = None
        for part, large in slices(batch, self._slice_bytes):
            if prepared is not None:
                await asyncio.sleep(0)  # the loop's other work between two slices
            got = (await asyncio.to_thread(self._prepare.run, part, now) if large
                   else self._prepare.run(part, now))
            prepared = got if prepared is None else prepared.merge(got)
        return prepared if prepared is not None else Prepared()

    def _remember(self, records: list[Record], prepared: Prepared, out: Stage1Output,
                  batch: Sequence[InMessage]) -> list[Record]:
        """Records not seen before (remembering them); duplicates become dead letters."""
        seen = self._seen
        if seen is None:
            return records
        kept: list[Record] = []
        found: Elements | None = None
        again = prepared.redelivered
        for rec in records:
            o = rec.origin
            if (o is not None and again and o.message in again) or \
                    seen.add(rec.source_id, rec.event_id):
                kept.append(rec)
                continue
            found = found or elements_of(batch)
            out.deadletters.append(deadletters.of_record(
                rec, Reason.DUPLICATE_EVENT_ID,
                f"event_id {rec.event_id!r} was already received from {rec.source_id!r}",
                found, self._publisher))
            prepared.rejected[(rec.feed, Reason.DUPLICATE_EVENT_ID)] += 1
        return kept

    def _dead(self, rec: Record, refusal: Refusal, found: Elements, check: str
              ) -> DeadLetter:
        log.info("rejected: %s", refusal.message, extra={
            "event_id": rec.event_id, "source_id": rec.source_id, "check": check,
            "reason": str(refusal.reason), "feed": rec.feed,
            "topic": rec.origin.topic if rec.origin else ""})
        return deadletters.of_record(rec, str(refusal.reason), refusal.message, found,
                                     self._publisher)

    def forget(self) -> None:
        """Drop the duplicate memory (tests; a worker keeps it across rebalances)."""
        if self._seen is not None:
            self._seen.clear()

    def on_assign(self, partitions: Set[TopicPartition]) -> None:
        """Nothing to prepare (the duplicate memory is per process, keyed by source)."""

    def on_revoke(self, partitions: Set[TopicPartition]) -> None:
        """Re-delivery marks and the duplicate memory are kept: a partition that comes
        back re-reads from its committed offset, and those messages are re-deliveries."""

    async def close(self) -> None:
        """Close every check (their connections); the producer belongs to the app."""
        for check in self._checks:
            try:
                await check.close()
            except Exception as exc:  # closing must not raise (Stage contract)
                log.warning("closing check %s failed: %s", check.name, type(exc).__name__)


async def _settle(queued: Awaitable[Any] | None, prepared: Prepared, kept: list[Record],
                  out: Stage1Output) -> None:
    """Await the batch's deliveries, then count it (a batch processed again after a
    failed delivery is counted once, by the attempt that was delivered)."""
    if queued is not None:
        await queued
    _count(prepared, kept)
    observe_latency(out)


def _count(prepared: Prepared, kept: list[Record]) -> None:
    for feed_name, n in prepared.received.items():
        metrics.EVENTS_RECEIVED.labels(feed_name).inc(n)
    for feed_name, n in Counter(r.feed for r in kept).items():
        metrics.EVENTS_VALID.labels(feed_name).inc(n)
    for (feed_name, reason), n in prepared.rejected.items():
        metrics.EVENTS_REJECTED.labels(feed_name, reason).inc(n)


_LATENCY_SAMPLE = 20  # observations per commune per batch, at most
_LATENCY_BATCH = 256  # observations per batch, at most


def observe_latency(out: Stage1Output) -> None:
    """occurred_at -> delivered, for a sample of the records just sent: from every commune,
    at most ``_LATENCY_BATCH`` in all (a one-event batch spans hundreds of communes, and
    20 a commune was one observation per message)."""
    delivered = time.time()
    if not out.enriched:
        return
    per = max(1, min(_LATENCY_SAMPLE, _LATENCY_BATCH // len(out.enriched)))
    by_feed: dict[str, Any] = {}
    for records in out.enriched.values():
        for rec in records[:per]:
            hist = by_feed.get(rec.feed)
            if hist is None:
                hist = by_feed[rec.feed] = metrics.LATENCY_PROCESSED.labels(rec.feed)
            hist.observe(max(0.0, delivered - rec.occurred_at.timestamp()))
