"""What the stages send to Kafka.

Built by the app from its faust topics and handed to the stages' constructors, so a stage
never sees faust. Every delivery is awaited before the input that caused it is
acknowledged: stage 2's and the alerts' sends return once the broker has the messages
(``acks=all``); stage 1's returns once they are queued, with the future of their delivery,
which its reader awaits before it commits the raw offsets (``streams.raw_reader``).
"""

from __future__ import annotations

import asyncio
from typing import Any

import orjson

from alerts.model import Transition
from ioccore import metrics
from ioccore.events.reasons import Reason
from ioccore.events.record import Origin, Record, encode_records
from streams import deadletters
from streams.deadletters import DeadLetter, Elements, Publisher
from streams.enriched_partitions import EnrichedPartitions, by_partition
from streams.originals import Originals
from streams.stage2 import Refused

ENRICHED_CHUNK = 1000
"""Records per enriched message at most (keeps messages far below max.message.bytes: the
bound a per-commune message had, now per partition)."""


class KafkaOutputs:
    """Enriched records, dead letters and alert transitions, delivered."""

    def __init__(self, *, enriched: Any, deadletter: Any, alerts: Any,
                 partitions: EnrichedPartitions, originals: Originals | None = None,
                 publisher: Publisher = deadletters.named_department) -> None:
        """``partitions``: where each commune's records go (one message per partition
        of ``ioc.enriched.v1``, ``streams.enriched_partitions``)."""
        self._enriched = enriched
        self._partitions = partitions
        self._deadletter = deadletter
        self._alerts = alerts
        self._originals = originals
        self._publisher = publisher

    async def enriched_and_dead(self, enriched: dict[str, list[Record]],
                                deadletters: list[DeadLetter]) -> asyncio.Future[list[Any]]:
        """Both, queued in the producer; the future returned completes once the broker
        acknowledged every message (stage 1's raw offsets commit only after it does).
        Enriched records go one message per enriched partition (no key: stage 2 reads only
        the value), each commune on the partition its key hashes to."""
        pending: list[Any] = []
        if enriched:
            partition_of = await self._partitions.mapper()
            for partition, records in by_partition(enriched, partition_of, ENRICHED_CHUNK):
                pending.append(await self._enriched.send(
                    key=None, value=encode_records(records), partition=partition))
        for dead in deadletters:
            pending.append(await self._deadletter.send(
                key=dead.key, value=dead.value, headers=dead.headers()))
        return asyncio.gather(*pending)

    async def storage_refused(self, refused: list[Refused]) -> None:
        """Records the database refused, dead-lettered with their original bytes and raw
        provenance (``streams.originals``), else as the enriched record."""
        origins = [r.record.origin for r in refused if r.record.origin is not None]
        raws = await self._originals.fetch(origins) if self._originals and origins else {}
        found = Elements(raws)
        pending: list[Any] = []
        for r in refused:
            dead = deadletters.of_record(r.record, Reason.STORAGE_REJECTED, r.reason, found,
                                         self._publisher,
                                         where=Origin(r.origin.topic, r.origin.partition,
                                                      r.origin.offset))
            metrics.EVENTS_REJECTED.labels(r.record.feed, Reason.STORAGE_REJECTED).inc()
            pending.append(await self._deadletter.send(key=dead.key, value=dead.value,
                                                       headers=dead.headers()))
        await asyncio.gather(*pending)

    async def transitions(self, transitions: list[Transition]) -> None:
        pending = [await self._alerts.send(key=t.fingerprint.encode(),
                                           value=orjson.dumps(t.to_json()))
                   for t in transitions]
        await asyncio.gather(*pending)
