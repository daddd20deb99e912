"""Which partition of ``ioc.enriched.v1`` a commune's records go to, grouped per batch.

Stage 2 keeps a commune's windows and alerts in exactly one partition, so every record
of a commune must land where a message keyed by its commune code would: the partition
the producer's own partitioner gives that key (aiokafka's ``DefaultPartitioner``:
``murmur2(key) & 0x7fffffff % partitions``, faust's default), over the partitions the
producer's metadata knows. Stage 1 computes that partition itself and sends one message
per *partition* (chunked) instead of one per commune: a 5,000-message one-event batch
spans 100-130 communes but only as many partitions as the topic has, and each message
costs an encode, a send and an acknowledgement in stage 1, and a fetch, faust's
per-message machinery and a decode in stage 2. Stage 2 never reads the key.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Set

from ioccore.events.record import Record

Partitioner = Callable[[bytes, list[int], list[int]], int]
"""aiokafka's partitioner contract: ``(key, all_partitions, available) -> partition``."""

Lookup = Callable[[], Awaitable[tuple[Partitioner, Set[int]]]]
"""The producer's partitioner and the topic's partitions from its metadata."""


class EnrichedPartitions:
    """Commune code -> partition, exactly as a send keyed by the code would choose.

    The mapping is cached per commune and dropped whenever the producer's metadata shows
    another partition set (partitions added to the topic move keyed messages too, so the
    grouping follows the same rule as before).
    """

    def __init__(self, lookup: Lookup) -> None:
        self._lookup = lookup
        self._known: frozenset[int] = frozenset()
        self._cache: dict[str, int] = {}

    async def mapper(self) -> Callable[[str], int]:
        """The commune -> partition function for one batch (asks the producer's
        metadata first: it answers from memory once the topic is known)."""
        partitioner, known = await self._lookup()
        if known != self._known:
            self._known = frozenset(known)
            self._cache = {}
        ordered = sorted(self._known)
        cache = self._cache

        def partition_of(code: str) -> int:
            p = cache.get(code)
            if p is None:
                # all partitions as "available" too: with a key, DefaultPartitioner
                # uses only all_partitions, as aiokafka's own send does
                p = cache[code] = partitioner(code.encode(), ordered, ordered)
            return p

        return partition_of


def by_partition(enriched: dict[str, list[Record]], partition_of: Callable[[str], int],
                 chunk: int) -> list[tuple[int, list[Record]]]:
    """``(partition, records)`` messages: every commune's records on its partition, at
    most ``chunk`` records a message. Within a partition the records keep the order the
    per-commune messages had (communes in the order of ``enriched``, each commune's
    records in batch order), so stage 2 sees the same record sequence per partition."""
    groups: dict[int, list[Record]] = {}
    for code, records in enriched.items():
        p = partition_of(code)
        group = groups.get(p)
        if group is None:
            groups[p] = list(records)
        else:
            group.extend(records)
    return [(p, records[i:i + chunk]) for p, records in groups.items()
            for i in range(0, len(records), chunk)]
