"""The retry runner on pure stages: nothing escapes, every failure is classified and
counted, the batch is processed until it succeeds, back-off is capped, and outage logs
are bounded (in-memory stages: this is the runner's own logic, no service involved)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Set

import psycopg
import pytest
from aiokafka.errors import KafkaConnectionError

from ioccore import metrics
from streams.health import Health, RateLimitFilter
from streams.retry import backoff_s, classify, run_batch
from streams.stage import TopicPartition


class Flaky:
    """Fails with the given exceptions, in order, then succeeds."""

    name = "flaky"

    def __init__(self, *errors: BaseException) -> None:
        self.errors = list(errors)
        self.seen: list[list[int]] = []

    async def process(self, batch: list[int]) -> None:
        self.seen.append(list(batch))
        if self.errors:
            raise self.errors.pop(0)

    def on_assign(self, partitions: Set[TopicPartition]) -> None: ...

    def on_revoke(self, partitions: Set[TopicPartition]) -> None: ...

    async def close(self) -> None: ...


def test_classification() -> None:
    assert classify(psycopg.errors.AdminShutdown("x")) == "database"
    assert classify(psycopg.OperationalError("x")) == "database"
    assert classify(psycopg.errors.SerializationFailure("x")) == "database"
    assert classify(psycopg.InterfaceError("the connection is closed")) == "database"
    assert classify(KafkaConnectionError()) == "kafka"
    assert classify(ConnectionResetError()) == "kafka"
    assert classify(KeyError("bug")) == "unexpected"
    assert classify(psycopg.DataError("jsonb NUL")) == "unexpected"


def test_every_failure_is_retried_with_the_same_batch_and_nothing_escapes() -> None:
    stage = Flaky(psycopg.errors.AdminShutdown("restart"), KafkaConnectionError(),
                  ZeroDivisionError("bug"))
    health = Health()
    before = {c: metrics.BATCH_RETRIES.labels("flaky", c)._value.get()
              for c in ("database", "kafka", "unexpected")}
    failures = asyncio.run(run_batch(stage, [1, 2, 3], messages=3, health=health,
                                     retry_max_s=0.01))
    assert failures == 3
    assert stage.seen == [[1, 2, 3]] * 4
    for cause in before:
        assert metrics.BATCH_RETRIES.labels("flaky", cause)._value.get() - before[cause] == 1
    assert health.down() == {}  # recovered
    assert health.pending() == 0
    assert metrics.BATCH_FAILING.labels("flaky")._value.get() == 0


def test_cancellation_propagates_unacknowledged() -> None:
    class Cancelled(Flaky):
        async def process(self, batch: list[int]) -> None:
            raise asyncio.CancelledError

    with pytest.raises(asyncio.CancelledError):
        asyncio.run(run_batch(Cancelled(), [1], messages=1, health=Health()))


def test_backoff_is_capped() -> None:
    delays = [backoff_s(n, 2.0) for n in range(20)]
    assert delays[0] < 0.12
    assert max(delays) <= 2.0 * 1.1
    assert delays[-1] >= 2.0 * 0.9


def test_an_outage_logs_a_bounded_number_of_lines(caplog: pytest.LogCaptureFixture) -> None:
    health = Health(summary_every_s=3600)
    with caplog.at_level(logging.WARNING, logger="streams.health"):
        for _ in range(10_000):
            health.failed("database", psycopg.OperationalError("down"))
        assert health.down().keys() == {"database"}
        health.ok("database")
    assert len(caplog.records) == 2  # down, back
    assert "OperationalError" in caplog.records[0].getMessage()
    assert metrics.DEPENDENCY_UP.labels("database")._value.get() == 1


def test_the_rate_limit_lets_a_burst_through_then_counts() -> None:
    limit = RateLimitFilter(burst=3, window_s=3600)
    records = [logging.LogRecord("aiokafka", logging.ERROR, "conn.py", 42, "fail %s", (i,),
                                 None) for i in range(1000)]
    passed = [r for r in records if limit.filter(r)]
    assert len(passed) == 3
    other = logging.LogRecord("aiokafka", logging.ERROR, "conn.py", 43, "other", (), None)
    assert limit.filter(other)
