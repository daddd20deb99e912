"""Stage 1's grouping of enriched records by partition (pure: no broker; the broker's
own placement is tests/integration/pipeline/test_enriched_partitions.py)."""

from __future__ import annotations

import asyncio
from collections.abc import Set
from datetime import UTC, datetime

from aiokafka.partitioner import DefaultPartitioner, murmur2
from hypothesis import given
from hypothesis import strategies as st

from ioccore.events.record import Record
from streams.enriched_partitions import EnrichedPartitions, Partitioner, by_partition

T = datetime(2026, 12, 7, tzinfo=UTC)


def record(code: str, n: int) -> Record:
    return Record(event_id=f"{code}-{n}", source_id="s", department="d", feed="sensor",
                  occurred_at=T, received_at=0.0, commune_code=code)


def partitions(count: int) -> EnrichedPartitions:
    async def lookup() -> tuple[Partitioner, Set[int]]:
        return DefaultPartitioner(), set(range(count))

    return EnrichedPartitions(lookup)


def test_a_commune_goes_where_its_key_would() -> None:
    partition_of = asyncio.run(partitions(6).mapper())
    for code in ("00004", "26734", "unassigned", "31117"):
        assert partition_of(code) == (murmur2(code.encode()) & 0x7FFFFFFF) % 6


def test_a_new_partition_count_drops_the_cache() -> None:
    counts = [6, 6, 12]

    async def lookup() -> tuple[Partitioner, Set[int]]:
        return DefaultPartitioner(), set(range(counts.pop(0)))

    parts = EnrichedPartitions(lookup)
    codes = [f"{i:05d}" for i in range(200)]
    six = asyncio.run(parts.mapper())
    first = [six(c) for c in codes]
    again = asyncio.run(parts.mapper())
    assert [again(c) for c in codes] == first
    twelve = asyncio.run(parts.mapper())
    assert [twelve(c) for c in codes] == \
        [(murmur2(c.encode()) & 0x7FFFFFFF) % 12 for c in codes]


@given(st.lists(st.tuples(st.sampled_from([f"{i:05d}" for i in range(40)]),
                          st.integers(0, 2500)), max_size=60),
       st.integers(1, 8), st.integers(1, 1200))
def test_per_partition_sequence_is_the_per_commune_messages_concatenated(
        sizes: list[tuple[str, int]], count: int, chunk: int) -> None:
    """Each partition receives the records the per-commune messages gave it, in the same
    order; no message holds more than ``chunk``; no record is lost or repeated."""
    enriched = {code: [record(code, i) for i in range(n)] for code, n in sizes}
    partition_of = asyncio.run(partitions(count).mapper())
    before: dict[int, list[str]] = {}
    for code, records in enriched.items():
        before.setdefault(partition_of(code), []).extend(r.event_id for r in records)
    after: dict[int, list[str]] = {}
    messages = by_partition(enriched, partition_of, chunk)
    for p, records in messages:
        assert 0 < len(records) <= chunk
        assert {partition_of(r.commune_code) for r in records} == {p}
        after.setdefault(p, []).extend(r.event_id for r in records)
    assert after == {p: ids for p, ids in before.items() if ids}
    assert len(messages) == sum(-(-len(ids) // chunk) for ids in after.values())
