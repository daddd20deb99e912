"""Reading an event's original bytes back from its raw topic (the storage-refused path).

Every record carries its :class:`~ioccore.events.record.Origin` (raw topic, partition,
offset: about 30 bytes). When the database refuses a row that passed validation, which
is rare (the validator should refuse whatever the database would), stage 2 fetches those
raw messages once, cuts each once and takes the element at the record's batch position
(``Origin.index``; :class:`streams.deadletters.Elements`), and dead-letters exactly those
bytes with their provenance and batch index. Carrying the
bytes themselves instead would roughly double the enriched topic for a path that
almost never runs. If a message cannot be read back (retention passed, broker down for
longer than the timeout), the dead letter holds the enriched record and says so
(``ioc-value-kind: enriched-record``): refused rows are never held back or dropped.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition

from ioccore.events.record import Origin
from streams.deadletters import Raw

log = logging.getLogger(__name__)

class Originals:
    """Fetches raw messages by origin with a short-lived, group-less consumer."""

    def __init__(self, bootstrap: str, client_options: dict[str, Any], *,
                 timeout_s: float = 10.0, max_fetch_bytes: int = 4 * 1024 * 1024) -> None:
        self._bootstrap = bootstrap
        self._options = client_options
        self._timeout_s = timeout_s
        self._max_fetch_bytes = max_fetch_bytes

    async def fetch(self, origins: Iterable[Origin]) -> dict[Origin, Raw]:
        """The raw messages at these origins, by :attr:`Origin.message`; missing ones are
        left out (never raises)."""
        wanted = sorted({o.message for o in origins},
                        key=lambda o: (o.topic, o.partition, o.offset))
        if not wanted:
            return {}
        consumer = AIOKafkaConsumer(bootstrap_servers=self._bootstrap, group_id=None,
                                    enable_auto_commit=False,
                                    max_partition_fetch_bytes=self._max_fetch_bytes,
                                    **self._options)
        found: dict[Origin, Raw] = {}
        try:
            await asyncio.wait_for(consumer.start(), self._timeout_s)
            for origin in wanted:
                tp = TopicPartition(origin.topic, origin.partition)
                consumer.assign([tp])
                consumer.seek(tp, origin.offset)
                msg = await asyncio.wait_for(consumer.getone(tp), self._timeout_s)
                if msg.offset == origin.offset and msg.value is not None:
                    found[origin] = (msg.key, msg.value)
        except Exception as exc:  # the fallback is the enriched record, never a loss
            log.warning("storage-refused: original messages not readable (%s)",
                        type(exc).__name__)
        finally:
            try:
                await consumer.stop()
            except Exception as exc:
                log.debug("consumer stop failed: %s", type(exc).__name__)
        return found
