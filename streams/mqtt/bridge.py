"""The bridge loop: batches of MQTT messages through an admission step, then PUBACK.

Contract of the admission step (:class:`Admit`): given the parts of a batch it
validates, authorises and publishes them (accepted events to their feed topic, refused
ones as dead letters with their reason) and returns only when Kafka acknowledged every
record; it raises when anything is not durable (Kafka or the database down). The loop
then retries the *same* batch with capped back-off and acknowledges nothing meanwhile,
so Mosquitto keeps the messages; a bridge killed at any point leaves them unacknowledged
and Mosquitto delivers them again (to this client id's session, or another bridge of the
group). A retried or redelivered batch produces the same events again, which the
worker stores once (``(source_id, event_id)``).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Final

from ioccore.metrics import MQTT_BATCH_RETRIES, MQTT_MESSAGES
from streams.mqtt.client import MqttClient
from streams.mqtt.messages import Inbound, Part, decode

log = logging.getLogger("ioc.mqtt.bridge")

Admit = Callable[[list[Part]], Awaitable[None]]
RETRY_MIN_S: Final = 0.2
RETRY_MAX_S: Final = 5.0


BATCH_BYTES: Final = 8 << 20
"""A batch closes past this many payload bytes (500 messages of 256 KiB would be 128 MB)."""


async def take(queue: asyncio.Queue[Inbound], *, batch_max: int, within_s: float,
               max_bytes: int = BATCH_BYTES) -> list[Inbound]:
    """At least one message, then whatever arrives within ``within_s``, up to
    ``batch_max`` messages or ``max_bytes`` of payload."""
    batch = [await queue.get()]
    size = len(batch[0].payload)
    deadline = time.monotonic() + within_s
    while len(batch) < batch_max and size < max_bytes:
        if queue.empty():
            left = deadline - time.monotonic()
            if left <= 0:
                break
            try:
                msg = await asyncio.wait_for(queue.get(), left)
            except TimeoutError:
                break
        else:
            msg = queue.get_nowait()
        batch.append(msg)
        size += len(msg.payload)
    return batch


class Bridge:
    def __init__(self, client: MqttClient, queue: asyncio.Queue[Inbound], admit: Admit, *,
                 root: str, max_bytes: int, batch_max: int, within_s: float) -> None:
        self.client = client
        self.queue = queue
        self.admit = admit
        self.root = root
        self.max_bytes = max_bytes
        self.batch_max = batch_max
        self.within_s = within_s
        self.stopping = asyncio.Event()
        self.acked = 0

    async def run(self) -> None:
        """Until :attr:`stopping` is set; the batch in hand is finished first."""
        while not self.stopping.is_set():
            getter = asyncio.ensure_future(take(self.queue, batch_max=self.batch_max,
                                                within_s=self.within_s))
            stop = asyncio.ensure_future(self.stopping.wait())
            done, _ = await asyncio.wait({getter, stop}, return_when=asyncio.FIRST_COMPLETED)
            if getter not in done:
                getter.cancel()
                stop.cancel()
                return
            stop.cancel()
            await self.handle(getter.result())

    async def handle(self, batch: list[Inbound]) -> None:
        """Admit the batch (retried until it is durable), then acknowledge it in order."""
        parts = [part for msg in batch
                 for part in decode(msg, root=self.root, max_bytes=self.max_bytes)]
        delay = RETRY_MIN_S
        while True:
            try:
                await self.admit(parts)
                break
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # not durable: nothing is acknowledged, try again
                MQTT_BATCH_RETRIES.labels(type(exc).__name__).inc()
                log.warning("batch of %d messages not admitted (%s); retrying in %.1f s",
                            len(batch), type(exc).__name__, delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, RETRY_MAX_S)
        acked = sum(self.client.ack(msg) for msg in batch)
        self.acked += acked
        MQTT_MESSAGES.labels("acknowledged").inc(acked)
        if acked < len(batch):  # the connection dropped meanwhile: Mosquitto re-sends
            MQTT_MESSAGES.labels("redelivery_expected").inc(len(batch) - acked)
