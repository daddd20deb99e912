"""The worker's periodic work: idle and singleton rules, outbox delivery, consumer lag,
maintenance.

None of these may take the worker down: each catches and logs (bounded by the
rate-limited handler) and tries again on its next round.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

import faust
import psycopg

from alerts.outbox import OutboxDelivery
from ioccore import metrics
from streams.singleton_rules import SingletonRules

log = logging.getLogger(__name__)

IDLE_TICK_EVERY_S = 10.0


def register_timers(app: faust.App, *, conninfo: str, singleton: SingletonRules | None,
                    outbox: OutboxDelivery | None, stop: asyncio.Event,
                    idle_tick: Callable[[], Awaitable[int]] | None = None) -> None:
    """Add the timers and the delivery task to ``app``; ``stop`` ends the delivery loop;
    ``idle_tick`` evaluates partition rules when no batch arrives."""
    if idle_tick is not None:
        tick = idle_tick

        @app.timer(interval=IDLE_TICK_EVERY_S, on_leader=False)  # type: ignore[untyped-decorator]
        async def evaluate_partition_rules_idle() -> None:
            await tick()

    if singleton is not None and singleton.has_rules:
        rules = singleton
        every = min(k.every_s for k in singleton.kinds)

        @app.timer(interval=every, on_leader=False)  # type: ignore[untyped-decorator]
        async def evaluate_singleton_rules() -> None:
            await rules.tick()

    if outbox is not None:
        delivery = outbox

        @app.task  # type: ignore[untyped-decorator]
        async def deliver_notifications() -> None:
            await delivery.run(stop)

    @app.timer(interval=5.0, on_leader=False)  # type: ignore[untyped-decorator]
    async def consumer_lag() -> None:
        """Messages behind each assigned partition's high watermark (committed offset)."""
        try:
            consumer = app.consumer
            assigned = list(consumer.assignment())
            if not assigned:
                return
            highwaters = await consumer.highwaters(*assigned)
            committed = getattr(consumer, "_committed_offset", {})
            for tp in assigned:
                high = highwaters.get(tp)
                if high is None:
                    continue
                lag = max(0, int(high) - int(committed.get(tp) or 0))
                metrics.CONSUMER_LAG.labels(tp.topic, str(tp.partition)).set(lag)
        except Exception as exc: # a metric must never take the worker down
            log.debug("consumer lag not available: %s", type(exc).__name__)

    @app.timer(interval=300.0, on_leader=False)  # type: ignore[untyped-decorator]
    async def maintenance() -> None:
        from ioccore.db.maintenance import run_maintenance

        try:
            for line in await asyncio.to_thread(run_maintenance, conninfo):
                log.info("maintenance: %s", line)
        except psycopg.Error as exc:
            log.warning("maintenance failed: %s", type(exc).__name__)
