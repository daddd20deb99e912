"""Batches bounded by bytes as well as by messages.

faust's ``take_events(max, within)`` counts messages, but one message can hold one event
or a thousand: a 5,000-message batch of 100-event envelopes is half a million events,
which is what made a draining worker hold its whole backlog in memory and write it in a
few huge transactions. :class:`BoundedStream` (the app's ``Stream`` class) adds
``take_bounded(max_messages, max_bytes, within)``: a batch closes when it has
``max_messages`` messages, or ``max_bytes`` of message values (a proxy for events that
is known before decoding: about 350 bytes per event), or ``within`` seconds have passed.
A message larger than ``max_bytes`` makes a batch on its own.

It works like ``take_events``: a processor appends each event to the batch and blocks
the stream while the batch is full or being read, so memory stays bounded by the
stream buffer plus one batch; the batch's events are acknowledged after the loop body
returns, so the body (``streams.retry.run_batch``) returns only once the batch is
durable.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any, cast

import faust
from mode.utils.locks import Event


class BoundedStream(faust.Stream[Any]):
    """faust's stream with batches bounded by bytes."""

    async def take_bounded(self, max_messages: int, max_bytes: int, within: float
                           ) -> AsyncIterator[list[Any]]:
        """Yield lists of events; see the module docstring for when a batch closes."""
        events: list[Any] = []
        size = 0
        full = Event()
        consumed = Event()
        reading: asyncio.Future[None] | None = None
        """Set while the caller holds a batch: nothing is added to it meanwhile."""

        async def collect(value: Any) -> Any:
            nonlocal size, reading
            if reading is not None:
                try:
                    await reading
                finally:
                    reading = None
            event = self.current_event
            if event is None:
                raise RuntimeError("take_bounded: no current event")
            events.append(event)
            size += len(event.message.value or b"")
            if len(events) >= max_messages or size >= max_bytes:
                full.set()
                consumed.clear()
                await self.wait(consumed)
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
                try:
                    yield list(events)
                finally:
                    taken = list(events)
                    events.clear()
                    size = 0
                    for event in taken:
                        await self.ack(event)
                    if reading is not None and not reading.done():
                        reading.set_result(None)
                    full.clear()
                    consumed.set()
        finally:
            self.enable_acks = acks_before
            self._processors.remove(collect)
