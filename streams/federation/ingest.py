"""The nation's reader of the provinces' replicated federation topics.

MirrorMaker 2 copies each province's ``ioc.federation.v1`` to the national cluster as
``<alias>.ioc.federation.v1``. This reader subscribes to exactly the configured aliases'
copies, and a record is accepted only from the topic of the province it names: the
alias -> province map (``federation.origins``) is the trust boundary, so one province's
credentials cannot change another's figures even if its records claim to be another's.

Per batch: decode and check every record (a refused one becomes a dead letter with its
reason, sent and acknowledged), store the accepted ones in one transaction, commit it,
and only then commit the Kafka offsets. A crash in between re-reads the batch, which the
store's ``as_of`` guard makes harmless.
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any, Final

import orjson
import psycopg
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRecord, TopicPartition
from aiokafka.errors import KafkaError

from ioccore.federation import Record, RecordError, decode
from streams.federation import store

log = logging.getLogger("ioc.federation.ingest")
MAX_BATCH: Final = 5000


@dataclass(frozen=True, slots=True)
class Refusal:
    topic: str
    partition: int
    offset: int
    reason: str
    detail: str
    value: bytes


def topic_pattern(origins: Mapping[str, str], topic: str) -> str:
    """The regex of the replicated topics of the configured aliases."""
    aliases = "|".join(re.escape(a) for a in sorted(origins))
    return rf"^({aliases})\.{re.escape(topic)}$"


def sort_batch(messages: Mapping[TopicPartition, list[ConsumerRecord[bytes, bytes]]],
               origins: Mapping[str, str], topic: str
               ) -> tuple[list[Record], list[Refusal]]:
    """Accepted records and refusals of one fetched batch."""
    accepted: list[Record] = []
    refused: list[Refusal] = []
    suffix = "." + topic
    for tp, msgs in messages.items():
        alias = tp.topic[: -len(suffix)] if tp.topic.endswith(suffix) else ""
        province = origins.get(alias)
        for m in msgs:
            value = m.value or b""
            try:
                if province is None:
                    raise RecordError("unknown_origin", f"topic {tp.topic} is not configured")
                record = decode(value)
                if record.province_code != province:
                    raise RecordError("foreign_province", (
                        f"topic of {alias} ({province}) carries a record of "
                        f"{record.province_code}"))
            except RecordError as exc:
                refused.append(Refusal(tp.topic, tp.partition, m.offset, exc.reason,
                                       exc.detail, value[:65536]))
                continue
            accepted.append(record)
    return accepted, refused


def dead_letter(r: Refusal) -> tuple[bytes, list[tuple[str, bytes]]]:
    """Value and headers of a refused record's dead letter (docs/federation.md)."""
    headers = [("ioc-reason", r.reason.encode()), ("ioc-message", r.detail.encode()[:1000]),
               ("ioc-feed", b"federation"), ("ioc-source-topic", r.topic.encode()),
               ("ioc-source-partition", str(r.partition).encode()),
               ("ioc-source-offset", str(r.offset).encode()),
               ("ioc-value-kind", b"original")]
    return r.value, headers


class Ingest:
    """Reads, stores, then commits; one per national process (several share a group)."""

    def __init__(self, consumer: AIOKafkaConsumer, producer: AIOKafkaProducer,
                 connect: Callable[[], Awaitable[psycopg.AsyncConnection[Any]]], *,
                 origins: Mapping[str, str], topic: str, deadletter_topic: str) -> None:
        self._consumer = consumer
        self._producer = producer
        self._connect = connect
        self._origins = dict(origins)
        self._topic = topic
        self._deadletter = deadletter_topic
        self.stored = 0
        self.refused = 0

    async def step(self, conn: psycopg.AsyncConnection[Any], timeout_ms: int = 500) -> int:
        """One batch: how many records it held (0 when none arrived)."""
        batch = await self._consumer.getmany(timeout_ms=timeout_ms, max_records=MAX_BATCH)
        if not batch:
            return 0
        t_fetched = time.time()
        accepted, refused = sort_batch(batch, self._origins, self._topic)
        for r in refused:
            value, headers = dead_letter(r)
            await (await self._producer.send(self._deadletter, value=value,
                                             key=r.topic.encode(), headers=headers))
            log.warning("federation record refused: %s", orjson.dumps(
                {"reason": r.reason, "topic": r.topic, "offset": r.offset}).decode())
        if accepted:
            async with conn.transaction():
                await store.apply(conn, accepted)
        t_stored = time.time()
        await self._consumer.commit({tp: msgs[-1].offset + 1 for tp, msgs in batch.items()})
        if log.isEnabledFor(logging.DEBUG):  # the benchmark's per-stage timing
            log.debug("federation batch", extra={
                "offsets": {f"{tp.topic}:{tp.partition}": [msgs[0].offset, msgs[-1].offset]
                            for tp, msgs in batch.items()},
                "t_fetched": t_fetched, "t_stored": t_stored, "t_committed": time.time()})
        self.stored += len(accepted)
        self.refused += len(refused)
        return sum(len(m) for m in batch.values())

    async def run(self, stop: asyncio.Event) -> None:
        """Until ``stop``: steps, reconnecting to PostgreSQL after an error (the batch is
        then read again: its offsets were not committed)."""
        while not stop.is_set():
            try:
                async with await self._connect() as conn:
                    while not stop.is_set():
                        await self.step(conn)
            except (psycopg.Error, OSError, KafkaError) as exc:
                log.warning("federation ingest: %s; retrying", exc)
                await self._rewind()
                await asyncio.sleep(1.0)

    async def _rewind(self) -> None:
        """Seek every assigned partition back to its committed offset."""
        for tp in self._consumer.assignment():
            committed = await self._consumer.committed(tp)
            if committed is None:
                await self._consumer.seek_to_beginning(tp)
            else:
                self._consumer.seek(tp, committed)
