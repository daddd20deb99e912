"""Admission control of the ingest gateway: accept no faster than the pipeline stores.

Without it 20 clients were accepted at ~48,000 ev/s while one worker stored ~28,000
ev/s (issue 18, target 5): the backlog grew for as long as the load lasted. A sampler
reads, every ``api.backpressure.sample_interval_s``, the lag of the pipeline's consumer
groups on the topics the gateway's events pass through (stage 1's ``<app_id>-stage1``
on the shared raw topics, stage 2's faust group ``<app_id>`` on the enriched topic),
turns each into seconds with the group's recently observed consumption rate (at least
``min_rate_per_s``: a stopped worker consumes nothing) and adds them up (both stages
share the worker's CPU). While that backlog is longer than ``max_lag_s``,
``POST /v1/events`` is admitted one request after the other at 90 % of the rate stage 1
drains (its message rate times the gateway's events per message), or, while the pipeline
drains nothing (worker stopped), held; a request that would wait more than ``max_wait_s``
is answered 503 with ``Retry-After``. A binary gate (all held, then all let in) made
requests wait for whole sampling rounds: a p99 of 2.7 s. Health, readiness, alert and
console routes never wait.

If the lag cannot be read (broker down, ACL missing) the gate stays open: a warning at
most every 30 s and ``ioc_api_backpressure_lag_errors_total``, never a refused request.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

from ioc.api.errors import BackloggedError
from ioccore.metrics import (
    API_BACKLOG_SECONDS,
    API_BACKPRESSURE_ERRORS,
    API_BACKPRESSURE_REQUESTS,
)
from ioccore.settings import BackpressureSettings, Settings, stage1_group

log = logging.getLogger("ioc.api.backpressure")

_WARN_EVERY_S: Final = 30.0


# --------------------------------------------------------------------------- pure logic
def group_lag(end: dict[Any, int], committed: dict[Any, int],
              beginning: dict[Any, int] | None = None) -> int:
    """Messages between each partition's committed offset (or its first offset when the
    group has committed none) and its end, summed."""
    total = 0
    for tp, last in end.items():
        start = (beginning or {}).get(tp, 0)
        done = committed.get(tp, -1)
        total += max(0, last - max(done, start))
    return total


def consumption_rate(history: Sequence[tuple[float, int]]) -> float:
    """Messages/s consumed over ``history`` ((time, committed offsets summed), oldest
    first); 0 when it spans no time or the offsets went back (a reset)."""
    if len(history) < 2:
        return 0.0
    (t0, c0), (t1, c1) = history[0], history[-1]
    if t1 <= t0 or c1 < c0:
        return 0.0
    return (c1 - c0) / (t1 - t0)


def lag_seconds(lag: int, rate: float, floor: float) -> float:
    """How long the group needs for ``lag`` messages at ``rate`` (at least ``floor``)."""
    if lag <= 0:
        return 0.0
    return lag / max(rate, floor, 1e-9)


@dataclass
class GroupLag:
    """One consumer group's lag history on its topics."""

    stage: str
    group: str
    topics: tuple[str, ...]
    window_s: float
    floor: float
    history: deque[tuple[float, int]] = field(default_factory=deque)
    lag: int = 0
    seconds: float = 0.0
    rate: float = 0.0
    """Messages/s consumed over the window (no floor)."""

    def observe(self, t: float, committed_total: int, lag: int) -> float:
        """Record one reading; the lag in seconds. The rate is measured only while the
        group has lag: an idle group consumes what arrives, not what it could."""
        if self.lag == 0:  # the last caught-up reading starts the measurement
            while len(self.history) > 1:
                self.history.popleft()
        self.history.append((t, committed_total))
        while len(self.history) > 2 and self.history[1][0] <= t - self.window_s:
            self.history.popleft()
        self.lag = lag
        self.rate = consumption_rate(self.history)
        self.seconds = lag_seconds(lag, self.rate, self.floor)
        return self.seconds


# --------------------------------------------------------------------------- the gate
class Backpressure:
    """The sampler task and the gate ingest requests pass (:meth:`admit`)."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.cfg: BackpressureSettings = settings.api.backpressure
        t = settings.kafka.topics
        app_id = settings.stream.app_id
        raw = tuple(x.name for x in t.raw().values())
        self.groups = [GroupLag("stage1", stage1_group(app_id), raw, self.cfg.rate_window_s,
                                self.cfg.min_rate_per_s),
                       GroupLag("stage2", app_id, (t.enriched.name,), self.cfg.rate_window_s,
                                self.cfg.min_rate_per_s)]
        self.backlog_s = 0.0
        self._open = asyncio.Event()
        self._open.set()
        self._task: asyncio.Task[None] | None = None
        self._admin: AIOKafkaAdminClient | None = None
        self._consumer: AIOKafkaConsumer | None = None
        self._warned = -_WARN_EVERY_S
        self._next_slot = 0.0
        self.events_per_message = 1.0
        """Events per Kafka message the gateway produced (EWMA): stage 1's message rate
        times this is the pipeline's drain rate in events/s."""
        self.events_per_request = 1.0
        """Accepted events per ingest request (EWMA): what one admission costs."""

    @property
    def holding(self) -> bool:
        return not self._open.is_set()

    async def start(self) -> None:
        if self.cfg.enabled:
            self._task = asyncio.create_task(self._run(), name="ioc-api-backpressure")

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        await self._disconnect()
        self._open.set()

    def published(self, events: int, messages: int) -> None:
        """Record one request's accepted events and the messages they took."""
        if events <= 0 or messages <= 0:
            return
        self.events_per_message += 0.1 * (events / messages - self.events_per_message)
        self.events_per_request += 0.1 * (events - self.events_per_request)

    async def admit(self) -> None:
        """Return at once while the pipeline keeps up; while it is behind but draining,
        admit requests one after the other at its drain rate (a smooth queue, not a gate
        that lets every waiting client in at once); while it drains nothing, wait for it.
        A request that would wait more than ``max_wait_s`` is refused (503,
        ``Retry-After``)."""
        if self._open.is_set():
            return
        drain = self.groups[0].rate  # stage 1's messages/s: the pipeline's intake
        if drain >= self.cfg.min_rate_per_s:
            now = time.monotonic()
            slot = max(self._next_slot, now)
            wait = slot - now
            if wait > self.cfg.max_wait_s:
                raise self._refused(retry_after=wait)
            # 0.9: a little less than it drains, so the backlog shrinks back to the bound
            self._next_slot = slot + self.events_per_request / (
                0.9 * drain * self.events_per_message)
            if wait > 0:
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(wait):
                        await self._open.wait()
            API_BACKPRESSURE_REQUESTS.labels("paced").inc()
            return
        try:
            async with asyncio.timeout(self.cfg.max_wait_s):
                await self._open.wait()
        except TimeoutError:
            raise self._refused(
                retry_after=max(1.0, self.backlog_s - self.cfg.max_lag_s)) from None
        API_BACKPRESSURE_REQUESTS.labels("admitted_after_wait").inc()

    def _refused(self, *, retry_after: float) -> BackloggedError:
        """Count a refusal and say how far behind the pipeline is (the 503's body)."""
        API_BACKPRESSURE_REQUESTS.labels("refused").inc()
        return BackloggedError(
            f"the pipeline is {self.backlog_s:.1f} s behind (the bound is "
            f"{self.cfg.max_lag_s:g} s); send the events again later",
            retry_after=retry_after)

    # ------------------------------------------------------------------ sampling
    async def _run(self) -> None:
        while True:
            try:
                await self.sample()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # fail open: never refuse because lag is unknown
                self._failed(exc)
                await self._disconnect()
            await asyncio.sleep(self.cfg.sample_interval_s)

    def _failed(self, exc: BaseException) -> None:
        API_BACKPRESSURE_ERRORS.inc()
        self._open.set()
        now = time.monotonic()
        if now - self._warned >= _WARN_EVERY_S:
            self._warned = now
            log.warning("pipeline lag not readable, admitting every request: %s: %s",
                        type(exc).__name__, exc)

    async def _connect(self) -> tuple[AIOKafkaAdminClient, AIOKafkaConsumer]:
        if self._admin is None or self._consumer is None:
            kafka = self.settings.kafka
            opts = kafka.client_options()
            admin = AIOKafkaAdminClient(bootstrap_servers=kafka.bootstrap_servers,
                                        client_id=f"{kafka.client_id}-api-lag",
                                        request_timeout_ms=5000, **opts)
            consumer = AIOKafkaConsumer(bootstrap_servers=kafka.bootstrap_servers,
                                        client_id=f"{kafka.client_id}-api-lag",
                                        group_id=None, enable_auto_commit=False,
                                        request_timeout_ms=5000, **opts)
            try:
                await admin.start()
                await consumer.start()
            except BaseException:
                with contextlib.suppress(Exception):
                    await admin.close()
                with contextlib.suppress(Exception):
                    await consumer.stop()
                raise
            self._admin, self._consumer = admin, consumer
        return self._admin, self._consumer

    async def _disconnect(self) -> None:
        admin, consumer, self._admin, self._consumer = self._admin, self._consumer, None, None
        if admin is not None:
            with contextlib.suppress(Exception):
                await admin.close()
        if consumer is not None:
            with contextlib.suppress(Exception):
                await consumer.stop()

    async def sample(self) -> float:
        """Read every group's lag once; open or close the gate; the backlog in seconds."""
        admin, consumer = await self._connect()
        names = sorted({t for g in self.groups for t in g.topics})
        partitions: list[TopicPartition] = []
        for meta in await admin.describe_topics(names):
            if meta["error_code"]:
                raise RuntimeError(f"topic {meta['topic']}: error {meta['error_code']}")
            partitions += [TopicPartition(meta["topic"], p["partition"])
                           for p in meta["partitions"]]
        end = await consumer.end_offsets(partitions)
        first = await consumer.beginning_offsets(partitions)
        now = time.monotonic()
        total = 0.0
        for g in self.groups:
            mine = [tp for tp in partitions if tp.topic in g.topics]
            offsets = await admin.list_consumer_group_offsets(g.group, partitions=mine)
            committed = {tp: m.offset for tp, m in offsets.items()}
            seconds = g.observe(now, _committed_total(committed, first, mine),
                                group_lag({tp: end[tp] for tp in mine}, committed, first))
            API_BACKLOG_SECONDS.labels(g.stage).set(seconds)
            total += seconds
        self.backlog_s = total
        if total > self.cfg.max_lag_s:
            self._open.clear()
        else:
            self._open.set()
            self._next_slot = 0.0
        return total


def _committed_total(committed: dict[TopicPartition, int],
                     first: dict[TopicPartition, int], mine: Iterable[TopicPartition]
                     ) -> int:
    return sum(max(committed.get(tp, -1), first.get(tp, 0)) for tp in mine)
