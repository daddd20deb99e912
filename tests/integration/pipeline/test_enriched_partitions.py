"""One enriched message per partition keeps every commune on the partition its key chose.

Before, stage 1 sent one ``ioc.enriched.v1`` message per commune keyed by the commune
code, and the producer's partitioner placed it; now it sends one message per partition
with the partition computed by that same partitioner (streams/enriched_partitions.py).
On the real broker: every commune's records land where a keyed send puts the commune,
through a bare aiokafka producer and through a real worker, and the worker's rollups stay
exact.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Set
from datetime import UTC, datetime, timedelta

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.partitioner import DefaultPartitioner
from iocdev.sandbox import Pipeline, envelope

from geo.index import index_from_reference
from ioccore.events.record import Record, decode_records, encode_records
from ioccore.settings import Settings
from streams.enriched_partitions import EnrichedPartitions, Partitioner, by_partition
from streams.outputs import ENRICHED_CHUNK

pytestmark = [pytest.mark.integration]

T0 = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=5)


def communes(n: int) -> list[str]:
    codes = [str(c) for c in index_from_reference().codes]
    return [*codes[::max(1, len(codes) // n)][:n], "unassigned"]


def record(code: str, i: int) -> Record:
    return Record(event_id=f"{code}-{i}", source_id=f"src-{code}", department="d",
                  feed="sensor", occurred_at=T0, received_at=0.0, commune_code=code)


async def read_all(settings: Settings, topic: str, expected: int
                   ) -> list[tuple[int, bytes | None, bytes]]:
    """``(partition, key, value)`` of the first ``expected`` messages of ``topic``."""
    consumer = AIOKafkaConsumer(topic, bootstrap_servers=settings.kafka.bootstrap_servers,
                                auto_offset_reset="earliest", enable_auto_commit=False,
                                **settings.kafka.client_options())
    await consumer.start()
    out: list[tuple[int, bytes | None, bytes]] = []
    try:
        async with asyncio.timeout(60):
            while len(out) < expected:
                for tp, msgs in (await consumer.getmany(timeout_ms=1000)).items():
                    out.extend((tp.partition, m.key, m.value or b"") for m in msgs)
    finally:
        await consumer.stop()
    return out


def test_records_land_where_a_commune_keyed_send_puts_them(
        stack: Settings, new_topic: Callable[..., str]) -> None:
    keyed, grouped = new_topic(partitions=6, prefix="keyed"), new_topic(partitions=6,
                                                                       prefix="grouped")
    codes = communes(300)
    enriched = {c: [record(c, i) for i in range(1 + len(c) % 3)] for c in codes}

    async def run() -> tuple[dict[str, int], dict[str, set[int]], int]:
        producer = AIOKafkaProducer(bootstrap_servers=stack.kafka.bootstrap_servers,
                                    acks="all", **stack.kafka.client_options())
        await producer.start()
        try:
            before = {c: (await producer.send_and_wait(keyed, b"x", key=c.encode())).partition
                      for c in codes}

            async def lookup() -> tuple[Partitioner, Set[int]]:
                return DefaultPartitioner(), await producer.partitions_for(grouped)

            partition_of = await EnrichedPartitions(lookup).mapper()
            messages = by_partition(enriched, partition_of, ENRICHED_CHUNK)
            for p, recs in messages:
                await producer.send_and_wait(grouped, encode_records(recs), partition=p)
        finally:
            await producer.stop()
        after: dict[str, set[int]] = {}
        for p, _, value in await read_all(stack, grouped, len(messages)):
            for r in decode_records(value):
                after.setdefault(r.commune_code, set()).add(p)
        return before, after, len(messages)

    before, after, sent = asyncio.run(run())
    assert len(set(before.values())) == 6  # 301 communes spread over every partition
    assert after == {c: {p} for c, p in before.items()}
    assert sent == 6


@pytest.mark.slow
@pytest.mark.partitions(3)
def test_a_worker_sends_one_message_per_partition_and_stays_exact(pipe: Pipeline) -> None:
    codes = communes(120)[:-1]  # an input's code must be a real one
    events = [envelope("sensor", f"e{i}", f"src-{i % 40}", T0 + timedelta(milliseconds=7 * i),
                       {"metric": "pm25", "value": float(i % 13), "unit": "ug/m3"},
                       commune_code=codes[i % len(codes)]) for i in range(3000)]
    pipe.produce("sensor", ((e["source_id"].encode(), json.dumps(e).encode())
                            for e in events))
    pipe.start_worker()
    pipe.wait_for("SELECT count(*) FROM sensor_readings", 3000, timeout=120)
    pipe.wait_for("SELECT sum(count) FROM rollup_1m", 3000, timeout=60)

    async def keyed_partitions() -> dict[str, int]:
        producer = AIOKafkaProducer(bootstrap_servers=pipe.settings.kafka.bootstrap_servers,
                                    **pipe.settings.kafka.client_options())
        await producer.start()
        try:
            known = sorted(await producer.partitions_for(pipe.topics["enriched"]))
            return {c: DefaultPartitioner()(c.encode(), known, known) for c in codes}
        finally:
            await producer.stop()

    keyed = asyncio.run(keyed_partitions())
    # everything is stored, so every enriched message is in the topic
    messages = asyncio.run(read_all(pipe.settings, pipe.topics["enriched"], _count(pipe)))
    seen = 0
    for p, key, value in messages:
        assert key is None
        for r in decode_records(value):
            assert keyed[r.commune_code] == p, r.commune_code
            seen += 1
    assert seen == 3000
    # one message per commune per stage-1 batch would be at least 120 messages
    assert len(messages) < len(codes)


def _count(pipe: Pipeline) -> int:
    """Messages in the enriched topic (sum of end offsets)."""
    from kafka import KafkaConsumer
    from kafka.structs import TopicPartition

    consumer = KafkaConsumer(bootstrap_servers=pipe.settings.kafka.bootstrap_servers,
                             **pipe.settings.kafka.client_options())
    try:
        tps = [TopicPartition(pipe.topics["enriched"], p) for p in range(pipe.partitions)]
        return sum(consumer.end_offsets(tps).values())
    finally:
        consumer.close()
