"""The contract every stream stage keeps (after getsentry/arroyo's processing strategies).

A stage is one step between a topic and its effects. The faust app composes stages through
their constructors and drives them only through these four methods; a stage never sees
faust, and faust never sees a stage's internals.

The runner (:func:`streams.retry.run_batch`) calls ``process`` until it returns, so the
messages of a batch are acknowledged (their offsets committed) only after everything the
batch causes is durable. Everything a stage does for one batch is therefore either done
completely or not at all (and then done again from the start).
"""

from __future__ import annotations

from collections.abc import Set
from typing import Protocol, TypeVar

TopicPartition = tuple[str, int]
"""(topic, partition), free of faust's types so that stages are testable alone."""

BatchT_contra = TypeVar("BatchT_contra", contravariant=True)


class Stage(Protocol[BatchT_contra]):
    """One step of the pipeline. Each method says what it may and may not do."""

    name: str
    """Short, stable (a metric label and a log field): ``stage1``, ``stage2``."""

    async def process(self, batch: BatchT_contra) -> object:
        """Make every effect of ``batch`` durable, then return (the result is for tests).

        May: do I/O, await Kafka deliveries and database commits, take as long as the
        batch needs. Must: return only after every effect is durable (rows committed,
        messages delivered); leave no in-memory state advanced when it raises (state is
        applied after the commit, or rebuilt from the database on the next attempt);
        stay idempotent, because a batch that raised is processed again from the start.
        May raise: anything; the runner classifies it, backs off and calls again with the
        same batch. Must not: acknowledge, commit offsets, swallow an exception that
        leaves an effect undone, or drop an input it could not make durable (bad input is
        dead-lettered, which is itself a durable effect).
        """
        ...

    def on_assign(self, partitions: Set[TopicPartition]) -> None:
        """Partitions were assigned to this worker.

        May: note them, prepare empty per-partition state. Must not: block or do I/O
        (called inside the rebalance; state a stage needs is loaded lazily by ``process``).
        """
        ...

    def on_revoke(self, partitions: Set[TopicPartition]) -> None:
        """Partitions were taken away: forget what was kept for them.

        May: drop caches and per-partition state (another worker owns them now). Must not:
        block, do I/O, or write on behalf of a partition it no longer holds.
        """
        ...

    async def close(self) -> None:
        """The worker stops: release connections and pools. Called once; idempotent.

        May: wait for in-flight I/O to finish. Must not: start new work or raise.
        """
        ...
