"""The faust app: stage 1 and stage 2 agents, maintenance timer, health and metrics pages.

One worker process runs both stages; run more processes (same app id) to scale: Kafka
spreads the raw partitions (stage 1) and the commune partitions (stage 2) across them.
Per-message work in faust is the cost to design around, so both agents take batches
bounded by messages and bytes (``streams/batching.py``) and the hot path works on lists:
one validator call per message, one geo lookup per batch, one database transaction per
batch. A batch's I/O (Kafka deliveries, the database transaction) overlaps the next
batch's CPU work; its messages are acknowledged only when that I/O is done, in order
(``streams/inorder.py``).
"""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import faust
import orjson
import prometheus_client
import psycopg

from alerts.outbox import OutboxDelivery
from ioc.core import metrics
from ioc.core.events.record import RECORDS_ENCODER, Feed, Record, encode_records
from ioc.core.settings import Settings
from streams.alerting import AlertStage
from streams.batching import BoundedStream
from streams.global_alerts import GlobalAlerts
from streams.inorder import InOrder
from streams.sinks.timescale import TimescaleSink
from streams.stage1 import CommuneIndexLike, DeadLetter, InMessage, Stage1, ValidatorLike
from streams.stage2 import Stage2

log = logging.getLogger(__name__)

_PROM_TYPE = "text/plain; version=0.0.4"  # aiohttp refuses a charset in content_type
ENRICHED_CHUNK = 1000
"""Records per enriched message at most (keeps messages far below max.message.bytes)."""
IN_FLIGHT = 1
"""Batches per stage whose I/O may still be in flight while the next one is prepared
(``streams/inorder.py``); their messages are acknowledged only when it is done."""
STAGE1_BATCH_BYTES = 4 * 1024 * 1024
"""A stage-1 batch closes at this many bytes of raw messages (about 12,000 events) or at
``stream.batch_max`` messages, whichever comes first (``streams/batching.py``)."""
STAGE2_BATCH_BYTES = 8 * 1024 * 1024
"""The same for stage 2 (about 30,000 encoded records): one transaction per batch, big
enough that a window's rollup is upserted rarely, small enough to keep memory flat."""
STREAM_BUFFER_MESSAGES = 256
"""faust's per-stream buffer, in messages: with 100-event envelopes 256 messages are
about 9 MB (the former 10,000 held a whole 1M-event backlog in memory)."""
FETCH_BYTES = 1024 * 1024
"""Bytes fetched per partition at a time (Kafka still returns one larger message)."""


@dataclass(frozen=True, slots=True)
class Parts:
    """What the agents need, built by the caller (real or, in unit tests, small)."""

    validator: ValidatorLike
    index: CommuneIndexLike
    conninfo: str
    alerts: AlertStage | None = None
    global_alerts: GlobalAlerts | None = None
    outbox: OutboxDelivery | None = None


def build_app(settings: Settings, parts: Parts, *, app_id: str | None = None,
              web_port: int | None = None, topic_names: dict[str, str] | None = None
              ) -> faust.App:
    """A configured faust app; ``topic_names`` overrides names (tests use unique ones)."""
    stream = settings.stream
    names = {
        "sensor": settings.kafka.topics.sensor.name,
        "traffic": settings.kafka.topics.traffic.name,
        "service": settings.kafka.topics.service.name,
        "enriched": settings.kafka.topics.enriched.name,
        "deadletter": settings.kafka.topics.deadletter.name,
        "alerts": settings.kafka.topics.alerts.name,
    }
    names.update(topic_names or {})
    app = faust.App(
        app_id or stream.app_id,
        broker=f"kafka://{settings.kafka.bootstrap_servers}",
        broker_client_id=settings.kafka.client_id,
        store="memory://",
        key_serializer="raw",
        value_serializer="raw",
        web_enabled=True,
        web_bind=stream.worker_web_host,
        web_host=stream.worker_web_host,
        web_port=web_port or stream.worker_web_port,
        topic_disable_leader=True,
        topic_allow_declare=False,
        producer_acks=-1,
        producer_max_request_size=settings.kafka.max_message_bytes,
        consumer_max_fetch_size=FETCH_BYTES,
        stream_buffer_maxsize=STREAM_BUFFER_MESSAGES,
        broker_commit_interval=stream.commit_interval_s,
        stream_wait_empty=False,
        logging_config=None,
        Stream=BoundedStream,
    )
    feed_of_topic: dict[str, Feed] = {
        names["sensor"]: "sensor", names["traffic"]: "traffic", names["service"]: "service"}
    raw_topic = app.topic(names["sensor"], names["traffic"], names["service"],
                          key_serializer="raw", value_serializer="raw")
    enriched_topic = app.topic(names["enriched"], key_serializer="raw",
                               value_serializer="raw")
    deadletter_topic = app.topic(names["deadletter"], key_serializer="raw",
                                 value_serializer="raw")
    alerts_topic = app.topic(names["alerts"], key_serializer="raw", value_serializer="raw")
    stage1 = Stage1(parts.validator, parts.index, feed_of_topic)
    stage1_chain = InOrder("stage1", depth=IN_FLIGHT)
    stage2_chain = InOrder("stage2", depth=IN_FLIGHT)
    alert_stage_forget: Callable[[], None] | None = None
    if parts.alerts is not None:
        async def publish(transitions: list[Any]) -> None:
            pending = [await alerts_topic.send(key=t.fingerprint.encode(),
                                               value=orjson.dumps(t.to_json()))
                       for t in transitions]
            await asyncio.gather(*pending)

        parts.alerts.publish = publish
        alert_stage = parts.alerts
        if parts.global_alerts is not None:
            parts.global_alerts.publish = publish

        alert_stage_forget = alert_stage.forget

    if parts.global_alerts is not None and parts.global_alerts.has_rules:
        global_alerts = parts.global_alerts

        @app.timer(interval=30.0, on_leader=False)  # type: ignore[untyped-decorator]
        async def evaluate_global_rules() -> None:
            await global_alerts.tick()

    if parts.outbox is not None:
        outbox = parts.outbox

        @app.task  # type: ignore[untyped-decorator]
        async def deliver_notifications() -> None:
            stop = asyncio.Event()
            try:
                await outbox.run(stop)
            finally:
                stop.set()

    sink = TimescaleSink(parts.conninfo)
    stage2 = Stage2(sink, allowed_lateness_s=stream.allowed_lateness_s,
                    on_windows=parts.alerts, max_rows=stream.sink_buffer_max_rows)

    async def dead_letter_rows(rejected: list[tuple[Record, str]]) -> None:
        pending = []
        for rec, reason in rejected:
            dead = DeadLetter(key=rec.source_id.encode(), value=RECORDS_ENCODER.encode(rec),
                              reason="storage_rejected", message=reason, feed=rec.feed,
                              source_topic=names["enriched"], source_partition=-1,
                              source_offset=-1, batch_index=None)
            metrics.EVENTS_REJECTED.labels(rec.feed, "storage_rejected").inc()
            pending.append(await deadletter_topic.send(key=dead.key, value=dead.value,
                                                       headers=dead.headers()))
        await asyncio.gather(*pending)

    stage2.on_rejected = dead_letter_rows


    @app.agent(raw_topic, name="stage1-validate-enrich")
    async def validate_enrich(events: Any) -> None:  # faust.Stream: take_events is untyped
        async for batch in events.take_bounded(stream.batch_max, STAGE1_BATCH_BYTES,
                                               stream.batch_within_s):
            messages = [InMessage(e.message.topic, e.message.partition, e.message.offset,
                                  e.message.key, e.message.value) for e in batch]
            out = stage1.process(messages)
            pending: list[Any] = []
            for code, records in out.enriched.items():
                for chunk in _chunks(records, ENRICHED_CHUNK):
                    pending.append(await enriched_topic.send(
                        key=code.encode(), value=encode_records(chunk)))
            for dead in out.deadletters:
                pending.append(await deadletter_topic.send(
                    key=dead.key, value=dead.value, headers=dead.headers()))
            # acknowledged once every enriched and dead-letter message is delivered;
            # meanwhile the next batch is taken and validated
            await stage1_chain.submit(batch, functools.partial(asyncio.gather, *pending))

    @app.agent(enriched_topic, name="stage2-aggregate-evaluate")
    async def aggregate(events: Any) -> None:
        async for batch in events.take_bounded(stream.batch_max, STAGE2_BATCH_BYTES,
                                               stream.batch_within_s):
            prepared = stage2.prepare([e.message.value for e in batch])
            # acknowledged once committed (and alerts evaluated); meanwhile the next
            # batch is taken and decoded
            await stage2_chain.submit(batch, functools.partial(stage2.commit, prepared))

    @app.on_partitions_revoked.connect  # type: ignore[arg-type]
    async def _revoked(app_: Any, *args: Any, signal: Any = None, **kwargs: Any) -> None:
        await stage1_chain.drain()  # finish what was taken before partitions move
        await stage2_chain.drain()
        if alert_stage_forget is not None:  # after the drain: its evaluations are done
            alert_stage_forget()  # reload state from the database when communes return

    @app.page("/metrics")
    async def metrics_page(web: Any, request: Any) -> Any:
        return web.bytes(prometheus_client.generate_latest(), content_type=_PROM_TYPE)

    @app.page("/healthz")
    async def healthz(web: Any, request: Any) -> Any:
        return web.json({"status": "ok"})

    @app.page("/readyz")
    async def readyz(web: Any, request: Any) -> Any:
        checks = {"kafka": await _kafka_ready(settings.kafka.bootstrap_servers),
                  "database": await _db_ready(parts.conninfo)}
        ok = all(checks.values())
        return web.json({"ready": ok, "checks": checks}, status=200 if ok else 503)

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
                done = committed.get(tp)
                high = highwaters.get(tp)
                if high is None:
                    continue
                lag = max(0, int(high) - int(done or 0))
                metrics.CONSUMER_LAG.labels(tp.topic, str(tp.partition)).set(lag)
        except Exception as exc:  # a metric must never take the worker down
            log.debug("consumer lag not available: %s", exc)

    @app.timer(interval=300.0, on_leader=False)  # type: ignore[untyped-decorator]
    async def maintenance() -> None:
        from ioc.core.db.maintenance import run_maintenance

        try:
            for line in await asyncio.to_thread(run_maintenance, parts.conninfo):
                log.info("maintenance: %s", line)
        except psycopg.Error as exc:
            log.warning("maintenance failed: %s", exc)

    app.ioc_stage2 = stage2  # type: ignore[attr-defined]
    app.ioc_chains = (stage1_chain, stage2_chain)  # type: ignore[attr-defined]
    app.ioc_sink = sink  # type: ignore[attr-defined]
    return app


def _chunks(records: list[Record], size: int) -> list[list[Record]]:
    return [records[i:i + size] for i in range(0, len(records), size)]


async def _kafka_ready(bootstrap: str) -> bool:
    """A broker of the bootstrap list accepts a connection within two seconds."""
    for server in bootstrap.split(","):
        host, _, port = server.strip().rpartition(":")
        try:
            _, writer = await asyncio.wait_for(asyncio.open_connection(host, int(port)), 2.0)
            writer.close()
            return True
        except (OSError, TimeoutError, ValueError):
            continue
    return False


async def _db_ready(conninfo: str) -> bool:
    try:
        async with await psycopg.AsyncConnection.connect(conninfo, connect_timeout=2) as conn:
            await conn.execute("SELECT 1")
        return True
    except psycopg.Error:
        return False
