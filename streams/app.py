"""The faust app: composes the stages, their readers, pages and timers. Nothing else.

One worker process runs both stages, or one of them (``stream.stages``: a process of
its own per stage; stage 1 alone starts no faust consumer, and only a process running
stage 2 runs the timers); run more processes (same app id) to scale: Kafka spreads the
raw partitions (stage 1) and the commune partitions (stage 2) across them.
Per-message work in faust is the cost to design around: stage 1 reads the raw topics,
where one message is often one event, with its own batching consumer
(``streams/raw_reader.py``, group ``<app_id>-stage1``); stage 2 stays a faust agent on
``ioc.enriched.v1``, whose messages hold up to 1,000 records, taking batches bounded by
messages and bytes (``streams/batching.py``). Either way a batch is acknowledged only
after it is durable: each goes through :func:`streams.retry.run_batch`, which returns
only once the stage's ``process`` did (docs/architecture.md, "Stage contract" and
"Exceptions"). Stages are built here, by their constructors, and closed when the worker
stops.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Mapping, Set
from dataclasses import dataclass
from typing import Any, ParamSpec, TypeVar

import faust
from faust.app.base import BootStrategy

from alerts.incidents.runner import IncidentRunner
from alerts.model import CommuneInfo
from alerts.outbox import OutboxDelivery
from alerts.rules import RuleSet
from ioccore import metrics
from ioccore.events.record import Feed
from ioccore.settings import Settings, stage1_group
from streams.alerting import PartitionAlerts
from streams.area_scope import AreaScope
from streams.batching import BoundedStream
from streams.deadletters import named_department
from streams.enriched_partitions import EnrichedPartitions, Partitioner
from streams.faust_options import faust_options
from streams.feedback_surges import FeedbackSurges
from streams.global_rules import GlobalRules
from streams.health import Health
from streams.inflight import InFlight
from streams.kpi_target_rules import KpiTargetRules
from streams.originals import Originals
from streams.outputs import KafkaOutputs
from streams.ownership import Ownership
from streams.pages import register_pages
from streams.raw_reader import Bounds, RawReader, raw_consumer, topics_pattern
from streams.retry import run_batch
from streams.singleton_rules import SingletonRules
from streams.stage import Stage, TopicPartition
from streams.stage1 import Check, CommuneIndexLike, Stage1, ValidatorLike
from streams.stage2 import Enriched, Stage2, make_pool
from streams.timers import register_timers

log = logging.getLogger(__name__)
P = ParamSpec("P")
R = TypeVar("R")

STREAM_BUFFER_MESSAGES = 256
"""faust's per-stream buffer, in messages: with 100-event envelopes about 9 MB (the
former 10,000 held a whole 1M-event backlog in memory, and let stage 1 read a whole
one-event backlog before stage 2 stored its first row)."""
FETCH_BYTES = 1024 * 1024
"""Bytes faust fetches per partition at a time (Kafka still returns one larger message);
stage 1's reader has its own bounds (``stream.stage1_*``)."""
READER_STOP_S = 10.0
"""How long a stopping worker waits for stage 1's reader to finish its batch, commit
what was delivered and leave its group before faust stops the producer."""


@dataclass(frozen=True, slots=True)
class WorkerResources:
    """What the stages need, built by the caller (real or, in unit tests, small)."""

    validator: ValidatorLike
    index: CommuneIndexLike
    conninfo: str
    rules: RuleSet | None = None
    communes: Mapping[str, CommuneInfo] | None = None
    outbox: OutboxDelivery | None = None
    ownership: Ownership | None = None
    """Registry checks for department topics (streams/ownership.py): the first check."""
    department_topics: tuple[str, ...] = ()
    checks: tuple[Check, ...] = ()
    """Further stage-1 checks, run in order after ownership (streams/stage1.py)."""
    incidents: IncidentRunner | None = None
    """Incident intake and escalation timers (alerts/incidents/runner.py)."""


def timed_phase(send: Callable[P, Awaitable[R]], stage: str, phase: str
                ) -> Callable[P, Awaitable[R]]:
    """``send`` observed as ``ioc_stream_phase_seconds{stage, phase}`` (one call a batch)."""
    observe = metrics.STAGE_PHASE_SECONDS.labels(stage, phase).observe

    async def timed(*args: P.args, **kwargs: P.kwargs) -> R:
        began = time.perf_counter()
        try:
            return await send(*args, **kwargs)
        finally:
            observe(time.perf_counter() - began)

    return timed


def _names(settings: Settings, overrides: dict[str, str] | None) -> dict[str, str]:
    t = settings.kafka.topics
    names = {"sensor": t.sensor.name, "traffic": t.traffic.name, "service": t.service.name,
             "enriched": t.enriched.name, "deadletter": t.deadletter.name,
             "alerts": t.alerts.name}
    return names | (overrides or {})


def make_faust_app(settings: Settings, app_id: str, web_port: int,
                   instance_id: str | None) -> faust.App:
    stream = settings.stream
    data_dir = settings.faust_data_dir()
    data_dir.mkdir(parents=True, exist_ok=True)
    return faust.App(
        app_id, datadir=str(data_dir / "{conf.name}-data"), broker=f"kafka://{settings.kafka.bootstrap_servers}",
        broker_client_id=settings.kafka.client_id, store="memory://",
        key_serializer="raw", value_serializer="raw", web_enabled=True,
        web_bind=stream.worker_web_host, web_host=stream.worker_web_host, web_port=web_port,
        topic_disable_leader=True, topic_allow_declare=False, producer_acks=-1,
        producer_max_request_size=settings.kafka.max_message_bytes,
        consumer_max_fetch_size=FETCH_BYTES, stream_buffer_maxsize=STREAM_BUFFER_MESSAGES,
        Stream=BoundedStream,
        broker_commit_interval=stream.commit_interval_s,
        broker_session_timeout=stream.session_timeout_s,
        broker_heartbeat_interval=stream.heartbeat_interval_s,
        broker_rebalance_timeout=stream.rebalance_timeout_s,
        consumer_group_instance_id=instance_id,
        stream_wait_empty=False, logging_config=None,
        **faust_options(settings.kafka))  # SASL/TLS: faust ignores kafka-python names


def build_app(settings: Settings, parts: WorkerResources, *, app_id: str | None = None,
              web_port: int | None = None, topic_names: dict[str, str] | None = None,
              instance_id: str | None = None) -> faust.App:
    """A configured faust app; ``topic_names`` overrides names (tests use unique ones);
    ``instance_id`` is the static group membership id (None: dynamic membership)."""
    stream = settings.stream
    names = _names(settings, topic_names)
    app = make_faust_app(settings, app_id or stream.app_id,
                         web_port or stream.worker_web_port, instance_id)
    run1, run2 = stream.stages in ("all", "stage1"), stream.stages in ("all", "stage2")
    if not run2:  # stage 1 alone reads with its own consumer: faust's group is stage 2's
        app.boot_strategy = BootStrategy(app, enable_kafka_consumer=False)
    fixed = (names["sensor"], names["traffic"], names["service"], *parts.department_topics)
    # with ownership checks: every department topic, present or future (one pattern)
    raw_topics: tuple[str, ...] | str = fixed if parts.ownership is None else \
        topics_pattern(fixed, parts.ownership.topics.regex)
    enriched, deadletter, alerts = (
        app.topic(names[n], key_serializer="raw", value_serializer="raw")
        for n in ("enriched", "deadletter", "alerts"))
    originals = Originals(settings.kafka.bootstrap_servers, settings.kafka.client_options(),
                          max_fetch_bytes=max(4 * 1024 * 1024, settings.kafka.max_message_bytes))
    own = parts.ownership
    publisher = own.topics.publisher if own is not None else named_department

    async def enriched_partitions() -> tuple[Partitioner, Set[int]]:
        """The producer's partitioner and its metadata's partitions of the enriched
        topic (aiokafka's ``partitions_for`` waits for the metadata once)."""
        producer: Any = await app.maybe_start_producer()
        known: Set[int] = await producer._ensure_producer().partitions_for(names["enriched"])
        return producer.partitioner, known

    outputs = KafkaOutputs(enriched=enriched, deadletter=deadletter, alerts=alerts,
                           partitions=EnrichedPartitions(enriched_partitions),
                           originals=originals, publisher=publisher)
    feeds: dict[str, Feed] = {names["sensor"]: "sensor", names["traffic"]: "traffic",
                              names["service"]: "service"}
    rules, communes = parts.rules, parts.communes or {}
    partition_alerts = (PartitionAlerts(settings, rules, communes,
                                        publish=outputs.transitions)
                        if rules and run2 else None)
    singleton = (SingletonRules(parts.conninfo, [
        GlobalRules(settings, rules, communes, publish=outputs.transitions),
        KpiTargetRules(settings, rules, communes, publish=outputs.transitions),
        FeedbackSurges(settings, rules, communes, publish=outputs.transitions)])
        if rules and run2 else None)
    checks: tuple[Check, ...] = (
        *(() if own is None else (own, AreaScope(own.conninfo))), *parts.checks)
    stage1 = Stage1(parts.validator, parts.index,
                    feeds if own is None else own.feeds(feeds),
                    timed_phase(outputs.enriched_and_dead, "stage1", "send"),
                    checks=checks, publisher=publisher,
                    dedupe_capacity=stream.stage1_dedupe_capacity,
                    message_budget_s=stream.stage1_message_budget_s,
                    inline_slice_bytes=stream.stage1_inline_slice_bytes)
    stage2 = Stage2(make_pool(parts.conninfo, min_size=settings.database.pool_min,
                              max_size=settings.database.pool_max,
                              check_idle_s=settings.database.check_idle_s),
                    allowed_lateness_s=stream.allowed_lateness_s,
                    alerts=partition_alerts, on_rejected=outputs.storage_refused,
                    max_rows=stream.sink_buffer_max_rows, lanes=stream.stage2_lanes)
    stages: tuple[Stage[Any], ...] = (*((stage1,) if run1 else ()),
                                      *((stage2,) if run2 else ()))
    faust_stages: tuple[Stage[Any], ...] = (stage2,) if run2 else ()
    """Partitions faust assigns (``ioc.enriched.v1``); stage 1's come from its reader."""
    health = Health(summary_every_s=stream.outage_summary_every_s)
    stop = asyncio.Event()

    group = stage1_group(app_id or stream.app_id)
    inflight = InFlight(stream.stage2_inflight_max_bytes)
    reader = RawReader(
        stage1, raw_topics, health=health, retry_max_s=stream.retry_max_s,
        commit_interval_s=stream.commit_interval_s,
        gate=inflight if run2 else None,  # stage 2 elsewhere: its bytes are not ours
        send_ahead=stream.stage1_send_ahead,
        bounds=Bounds(stream.batch_max, stream.stage1_batch_bytes, stream.batch_within_s,
                      adaptive=stream.batch_adaptive),
        make_consumer=lambda: raw_consumer(
            settings, group, instance_id,
            fetch_max_bytes=stream.stage1_fetch_max_bytes,
            partition_fetch_bytes=stream.stage1_partition_fetch_bytes))

    async def stage1_validate_enrich() -> None:
        await reader.run(stop)

    async def aggregate(events: Any) -> None:
        async for batch in events.take_bounded(stream.batch_max, stream.stage2_batch_bytes,
                                               stream.batch_within_s,
                                               adaptive=stream.batch_adaptive,
                                               inflight=inflight):
            messages = [Enriched(e.message.topic, e.message.partition, e.message.offset,
                                 e.message.value) for e in batch]
            await run_batch(stage2, messages, messages=len(messages), health=health,
                            retry_max_s=stream.retry_max_s)

    if run1:
        app.task(stage1_validate_enrich)
    if run2:
        app.agent(enriched, name="stage2-aggregate-evaluate")(aggregate)

    @app.on_partitions_assigned.connect  # type: ignore[arg-type]
    async def _assigned(app_: Any, assigned: Set[Any], **_: Any) -> None:
        tps: Set[TopicPartition] = {(tp.topic, tp.partition) for tp in assigned}
        for stage in faust_stages:
            stage.on_assign(tps)

    @app.on_partitions_revoked.connect  # type: ignore[arg-type]
    async def _revoked(app_: Any, revoked: Set[Any], **_: Any) -> None:
        tps: Set[TopicPartition] = {(tp.topic, tp.partition) for tp in revoked}
        for stage in faust_stages:
            stage.on_revoke(tps)

    @app.on_before_shutdown.connect  # type: ignore[arg-type]
    async def _close(app_: Any, **_: Any) -> None:
        stop.set()
        try:
            if run1:
                await asyncio.wait_for(reader.wait_stopped(), READER_STOP_S)
        except TimeoutError:
            log.warning("stage 1 reader still busy after %.0f s; its batch is re-read by "
                        "the next owner", READER_STOP_S)
        for closable in (*stages, singleton, parts.outbox if run2 else None):
            if closable is not None:
                with contextlib.suppress(Exception):
                    await closable.close()

    register_pages(app, health=health, conninfo=parts.conninfo,
                   bootstrap=settings.kafka.bootstrap_servers)
    if run2:
        register_timers(app, conninfo=parts.conninfo, singleton=singleton,
                        outbox=parts.outbox, stop=stop,
                        idle_tick=stage2.tick if partition_alerts is not None else None)
    if parts.incidents is not None and run2:
        incident_loop = parts.incidents

        @app.task  # type: ignore[untyped-decorator]
        async def run_incidents() -> None:  # any number of workers: each timer fires once
            await incident_loop.run(stop)

    return app
