"""Overlap one batch's I/O with the next batch's CPU work, acknowledging in order.

faust's ``take_events`` acknowledges a batch's messages when the loop body returns, so a
body that awaits its database write (or its Kafka deliveries) leaves the agent idle
while it waits: no next batch is taken, decoded, validated or geo-joined meanwhile, and
PostgreSQL waits in turn while the next batch is collected. :class:`InOrder` lets the
body return early without acknowledging early:

- ``submit(events, work)`` holds every message of the batch with one extra reference
  (``Message.incref``: faust's own acknowledgement then leaves it unacknowledged) and
  starts ``work`` once every earlier batch's work has finished;
- when ``work`` finished, the batch's messages are released (``Event.ack``), so offsets
  are acknowledged strictly in submission order and only after the batch's effects are
  durable;
- at most ``depth`` batches are in flight: ``submit`` waits for room first, which is the
  backpressure (memory stays bounded by the stream buffer plus ``depth`` batches);
- if ``work`` raises, the error is logged and the batch stays unacknowledged: faust then
  commits nothing past it, and it is delivered again after a restart or rebalance
  (at-least-once; the sink is idempotent). Later batches still run, because one bad
  batch must not stall the whole worker;
- ``drain()`` waits for every batch in flight (partitions revoked, shutdown).
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, Protocol

log = logging.getLogger(__name__)


class EventLike(Protocol):
    """What is used of a faust event: its message (``incref``) and ``ack``."""

    @property
    def message(self) -> Any: ...

    def ack(self) -> bool: ...


Work = Callable[[], Awaitable[object]]


class InOrder:
    """A chain of batches whose work runs one after another and whose messages are
    acknowledged in submission order once their work is done."""

    def __init__(self, name: str, depth: int = 1) -> None:
        if depth < 1:
            raise ValueError("depth must be at least 1")
        self.name = name
        self.depth = depth
        self._flight: deque[asyncio.Task[None]] = deque()
        self.failed = 0
        """Batches whose work raised (left unacknowledged)."""

    @property
    def in_flight(self) -> int:
        return sum(1 for t in self._flight if not t.done())

    async def submit(self, events: Sequence[EventLike], work: Work) -> None:
        """Hold ``events``, queue ``work`` after every earlier batch, return when it is
        queued and at most ``depth`` batches are in flight (this one included)."""
        while self._flight and self._flight[0].done():
            self._flight.popleft()
        while len(self._flight) >= self.depth:
            await asyncio.wait([self._flight[0]])
            self._flight.popleft()
        for event in events:
            event.message.incref()
        previous = self._flight[-1] if self._flight else None
        task = asyncio.create_task(self._run(previous, events, work),
                                   name=f"{self.name}-batch")
        self._flight.append(task)

    async def _run(self, previous: asyncio.Task[None] | None, events: Sequence[EventLike],
                   work: Work) -> None:
        if previous is not None:
            await asyncio.wait([previous])  # order only: its outcome is its own business
        try:
            await work()
        except asyncio.CancelledError:
            raise
        except Exception:
            self.failed += 1
            log.exception("%s: a batch of %d messages failed; left unacknowledged "
                          "(delivered again after a restart or rebalance)",
                          self.name, len(events))
            return
        for event in events:
            event.ack()

    async def drain(self) -> None:
        """Wait until every submitted batch has finished (acknowledged or failed)."""
        while self._flight:
            task = self._flight[0]
            await asyncio.wait([task])
            if self._flight and self._flight[0] is task:
                self._flight.popleft()
