"""Batches bounded by bytes as well as by messages.

faust's ``take_events(max, within)`` counts messages, but one message can hold one event
or a thousand: a 5,000-message batch of 100-event envelopes is half a million events,
which is what made a draining worker hold its whole backlog in memory and write it in a
few huge transactions. :class:`BoundedStream` (the app's ``Stream`` class) adds
``take_bounded(max_messages, max_bytes, within)``: a batch closes when it has
``max_messages`` messages, or ``max_bytes`` of message values (a proxy for events that
is known before decoding: about 350 bytes per event), or ``within`` seconds have passed.
A message larger than ``max_bytes`` makes a batch on its own. With ``adaptive`` a batch
also closes as soon as faust's buffer holds nothing more: a light input is taken as it
comes instead of waiting ``within`` for company (the latency of a reading that arrives
alone), while a backed-up input, which fills the buffer while the previous batch is
written, still makes full batches. An :class:`~streams.inflight.InFlight` given counts
the bytes taken and not yet acknowledged, and reads the buffer's bytes when asked.

It works like ``take_events``: a processor appends each event to the batch and blocks
the stream while the batch is full or being read, so memory stays bounded by the
stream buffer plus one batch; the batch's events are acknowledged after the loop body
returns, so the body (``streams.retry.run_batch``) returns only once the batch is
durable.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from typing import Any, cast

import faust
from mode.utils.locks import Event

from ioccore import metrics
from streams.inflight import InFlight


def _buffer(stream: faust.Stream[Any]) -> tuple[Callable[[], bool], Callable[[], int]]:
    """Whether faust's buffer for ``stream`` is empty, and its bytes (values of the
    messages queued; at most ``stream_buffer_maxsize`` of them, counted when asked)."""
    queue: Any = getattr(stream.channel, "queue", None)
    items: Any = getattr(queue, "_queue", None)  # asyncio.Queue's deque
    if queue is None or items is None:
        return (lambda: False), (lambda: 0)

    def queued_bytes() -> int:
        return sum(len(e.message.value or b"") for e in tuple(items))

    return cast(Callable[[], bool], queue.empty), queued_bytes


class BoundedStream(faust.Stream[Any]):
    """faust's stream with batches bounded by bytes."""

    async def take_bounded(self, max_messages: int, max_bytes: int, within: float, *,
                           adaptive: bool = False, inflight: InFlight | None = None,
                           stage: str = "stage2") -> AsyncIterator[list[Any]]:
        """Yield lists of events; see the module docstring for when a batch closes."""
        events: list[Any] = []
        size = 0
        first_at = 0.0
        buffer_empty, buffer_bytes = _buffer(self)
        if inflight is not None:
            inflight.queued = buffer_bytes
        observe_fill = metrics.STAGE_PHASE_SECONDS.labels(stage, "fill").observe
        observe_lag = metrics.STAGE_PHASE_SECONDS.labels(stage, "fetch_lag").observe
        observe_messages = metrics.STAGE_BATCH_MESSAGES.labels(stage).observe
        full = Event()
        consumed = Event()
        reading: asyncio.Future[None] | None = None
        """Set while the caller holds a batch: nothing is added to it meanwhile."""

        async def collect(value: Any) -> Any:
            nonlocal size, reading, first_at
            if reading is not None:
                try:
                    await reading
                finally:
                    reading = None
            event = self.current_event
            if event is None:
                raise RuntimeError("take_bounded: no current event")
            if not events:
                first_at = time.monotonic()
            events.append(event)
            n = len(event.message.value or b"")
            size += n
            if inflight is not None:
                inflight.take(n)
            if len(events) >= max_messages or size >= max_bytes:
                full.set()
                consumed.clear()
                await self.wait(consumed)
            elif adaptive and buffer_empty():
                full.set()  # nothing more queued: take what is there now
            return value

        acks_before = self.enable_acks
        self.enable_acks = False  # acknowledged below, after the caller is done
        self.add_processor(collect)
        self._enable_passive(cast(Any, aiter(self.channel)))
        try:
            while not self.should_stop:
                await self.wait_for_stopped(full, timeout=within)
                if not events:
                    continue
                reading = asyncio.get_running_loop().create_future()
                observe_fill(time.monotonic() - first_at)
                observe_messages(len(events))
                oldest = min(e.message.timestamp for e in events)
                if oldest > 0:
                    observe_lag(max(0.0, time.time() - oldest))
                taken_bytes = size
                try:
                    yield list(events)
                finally:
                    taken = list(events)
                    events.clear()
                    size = 0
                    if inflight is not None:
                        inflight.release(taken_bytes)
                    for event in taken:
                        await self.ack(event)
                    if reading is not None and not reading.done():
                        reading.set_result(None)
                    full.clear()
                    consumed.set()
        finally:
            if inflight is not None:
                inflight.release(size)  # collected, never taken: not held any more
            self.enable_acks = acks_before
            self._processors.remove(collect)
