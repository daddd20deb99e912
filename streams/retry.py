"""Running one batch through a stage until it is durable: classify, back off, never escape.

:func:`run_batch` is the only place that decides what an exception from a stage means
(docs/architecture.md, "Exceptions"). Nothing it catches is re-raised, so no exception
reaches faust's agent supervisor (which would restart the agent and could let the
consumer commit past a batch that never became durable); and it returns only when
``process`` returned, so the agent acknowledges a batch only after its effects commit.

- ``database``: ``psycopg.OperationalError`` (connection lost, ``AdminShutdown``, pool
  timeout, serialisation failure, deadlock) and ``psycopg.InterfaceError``: retry the
  whole batch; ``ioc_stream_dependency_up{dependency="database"}`` goes to 0.
- ``kafka``: aiokafka's ``KafkaError``, ``OSError``, ``TimeoutError``: the same.
- ``unexpected``: anything else (a bug, a data error outside the rows): retry the whole
  batch too, log the traceback at most every 30 s, count
  ``ioc_stream_batch_retries_total{cause="unexpected"}`` (alert ``IocStreamInternalError``;
``IocStreamBatchStalled`` when any batch keeps failing for 5 minutes).

Data errors on the rows themselves never get here: the sink isolates them by halving the
batch and the stage dead-letters them (``storage_rejected``), which is a durable effect.
Back-off doubles from 0.1 s up to ``retry_max_s`` (2 s by default), so the first attempt
after a dependency returns starts within that cap.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from typing import TypeVar

import psycopg
from aiokafka.errors import KafkaError

from ioccore import metrics
from streams.health import Health
from streams.stage import Stage

log = logging.getLogger(__name__)

B = TypeVar("B")

_UNEXPECTED_LOG_EVERY_S = 30.0


def classify(exc: BaseException) -> str:
    """``database``, ``kafka`` or ``unexpected`` (see the module table)."""
    if isinstance(exc, psycopg.OperationalError | psycopg.InterfaceError):
        return "database"
    if isinstance(exc, KafkaError | OSError | TimeoutError):
        return "kafka"
    return "unexpected"


def backoff_s(attempt: int, cap_s: float, base_s: float = 0.1) -> float:
    """Delay before attempt ``attempt + 1`` (0-based failures), with ±10 % jitter."""
    delay: float = min(cap_s, base_s * 2.0 ** attempt)
    return delay * random.uniform(0.9, 1.1)


async def run_batch(stage: Stage[B], batch: B, *, messages: int, health: Health,
                    retry_max_s: float = 2.0) -> int:
    """Process ``batch`` until it is durable; returns the number of failed attempts.

    Cancellation (the worker stopping) propagates: the batch stays unacknowledged and is
    re-delivered to whichever worker gets the partition.
    """
    failures = 0
    first_failure = 0.0
    logged_at = 0.0
    causes: set[str] = set()
    health.waiting[stage.name] = messages
    try:
        while True:
            try:
                await stage.process(batch)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                cause = classify(exc)
                now = time.monotonic()
                if failures == 0:
                    first_failure = now
                failures += 1
                causes.add(cause)
                metrics.BATCH_RETRIES.labels(stage.name, cause).inc()
                metrics.BATCH_FAILING.labels(stage.name).set(now - first_failure)
                if cause == "unexpected":
                    if now - logged_at >= _UNEXPECTED_LOG_EVERY_S:
                        logged_at = now
                        log.error("%s: batch of %d messages failed (attempt %d), retrying",
                                  stage.name, messages, failures, exc_info=exc,
                                  extra={"stage": stage.name})
                else:
                    health.failed(cause, exc)
                await asyncio.sleep(backoff_s(failures - 1, retry_max_s))
            else:
                for dependency in causes - {"unexpected"}:
                    health.ok(dependency)
                metrics.BATCH_FAILING.labels(stage.name).set(0)
                return failures
    finally:
        health.waiting[stage.name] = 0
