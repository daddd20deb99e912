"""``ioc mqtt-bridge``: Mosquitto -> validation and ownership -> Kafka, at least once.

The MQTT side (client, batches, acknowledgements) is :mod:`streams.mqtt`; this module
builds its admission step out of the HTTP gateway's own functions, so an event arriving
over MQTT meets exactly the checks of ``POST /v1/events``:

1. :mod:`streams.mqtt.messages` has turned each message into envelopes (the department,
   feed and source from the topic; SenML converted; missing event ids derived);
2. an event without ``location``/``commune_code`` takes its source's registered place
   (``sources``: a fixed device registered once need not send its position);
3. :func:`ioc.api.validation.run` validates them in a validation process;
4. :func:`ioc.api.ingest.authorise_department` checks feed and source ownership for the
   topic's department (registering a new source within the department's quota);
5. :func:`ioc.api.ingest.publish_to` produces the accepted ones, one envelope per source,
   ``acks=all``, idempotent; every refusal is produced as a dead letter with its reason;
   the step returns only when Kafka acknowledged all of it, and raises otherwise (the
   bridge retries the batch and acknowledges nothing to Mosquitto meanwhile).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections import Counter, defaultdict
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import Any

import orjson
from aiokafka import AIOKafkaProducer
from psycopg_pool import AsyncConnectionPool

from ioc.api import ingest, validation
from ioccore.db import connections
from ioccore.metrics import MQTT_EVENTS
from ioccore.settings import Settings
from streams.mqtt.bridge import Bridge
from streams.mqtt.client import MqttClient
from streams.mqtt.messages import Inbound, Part
from streams.stage1 import DeadLetter

log = logging.getLogger("ioc.mqtt")

_PLACES = ("SELECT source_id, commune_code, lat, lon FROM sources "
           "WHERE department = %s AND source_id = ANY(%s)")


class NotDurableError(Exception):
    """Kafka did not acknowledge part of a batch: the batch is retried."""


class Admission:
    """The admission step (:data:`streams.mqtt.bridge.Admit`) over the gateway's code."""

    def __init__(self, settings: Settings, pool: AsyncConnectionPool[Any],
                 producer: AIOKafkaProducer, validators: ProcessPoolExecutor) -> None:
        self.settings = settings
        self.pool = pool
        self.producer = producer
        self.validators = validators
        kafka = settings.kafka
        self.topics = {feed: t.name for feed, t in kafka.topics.raw().items()}
        self.deadletter = kafka.topics.deadletter.name

    async def __call__(self, parts: list[Part]) -> None:
        events = [p for p in parts if p.reason is None and p.event is not None]
        await self._places(events)
        raws = [orjson.dumps(p.event) for p in events]
        verdicts: list[validation.Verdict] = []
        if raws:
            try:
                wire, err = await asyncio.get_running_loop().run_in_executor(
                    self.validators, validation.run, b"[" + b",".join(raws) + b"]",
                    "application/json", len(raws))
            except BrokenProcessPool:  # the validation process died: a new one, retry
                self.validators.shutdown(wait=False, cancel_futures=True)
                self.validators = new_validators(self.settings)
                raise
            if err is not None or wire is None:
                raise NotDurableError(f"validation refused the whole batch: {err}")
            verdicts = validation.from_wire(wire)
        by_department: dict[str, list[validation.Verdict]] = defaultdict(list)
        for part, v in zip(events, verdicts, strict=True):
            if v.record is not None:
                by_department[part.department].append(v)
        for department, group in by_department.items():
            await ingest.authorise_department(self.pool, department, None,
                                              f"mqtt:dept-{department}", group)
        await ingest.publish_to(self.producer, self.topics,
                                self.settings.kafka.max_message_bytes, verdicts)
        if any(v.reason == ingest.PUBLISH_FAILED for v in verdicts):
            raise NotDurableError("Kafka did not acknowledge every event")
        dead = [(p, str(p.reason), p.message or "") for p in parts if p.reason is not None]
        dead += [(p, str(v.reason), v.message or "")
                 for p, v in zip(events, verdicts, strict=True) if v.reason is not None]
        await self._dead_letters(dead)
        outcomes: Counter[tuple[str, str]] = Counter()
        for p, v in zip(events, verdicts, strict=True):
            outcomes[(p.feed, v.reason or "accepted")] += 1
        for p, reason, _ in dead:
            if p.event is None:
                outcomes[(p.feed or "unknown", reason)] += 1
        for (feed, outcome), n in outcomes.items():
            MQTT_EVENTS.labels(feed, outcome).inc(n)

    async def _places(self, events: list[Part]) -> None:
        """Registered places for events that give none."""
        wanted: dict[str, set[str]] = defaultdict(set)
        for p in events:
            assert p.event is not None
            if p.event.get("location") is None and p.event.get("commune_code") is None:
                wanted[p.department].add(p.source_id)
        if not wanted:
            return
        places: dict[tuple[str, str], tuple[str | None, float | None, float | None]] = {}
        async with self.pool.connection() as conn:
            for department, sources in wanted.items():
                cur = await conn.execute(_PLACES, (department, sorted(sources)))
                for source, code, lat, lon in await cur.fetchall():
                    places[(department, source)] = (code, lat, lon)
        for p in events:
            assert p.event is not None
            place = places.get((p.department, p.source_id))
            if place is None or p.event.get("location") is not None \
                    or p.event.get("commune_code") is not None:
                continue
            code, lat, lon = place
            if lat is not None and lon is not None:
                p.event["location"] = {"lat": lat, "lon": lon}
            elif code is not None:
                p.event["commune_code"] = code

    async def _dead_letters(self, dead: list[tuple[Part, str, str]]) -> None:
        sends = []
        for p, reason, message in dead:
            original = p.original or orjson.dumps(p.event)
            letter = DeadLetter(key=p.source_id.encode() or None, value=original,
                                reason=reason, message=message, feed=p.feed,
                                source_topic=p.topic, source_partition=-1,
                                source_offset=-1, batch_index=p.index)
            sends.append(await self.producer.send(self.deadletter, value=letter.value,
                                                  key=letter.key, headers=letter.headers()))
        for outcome in await asyncio.gather(*sends, return_exceptions=True):
            if isinstance(outcome, BaseException):
                raise NotDurableError(f"dead letter not acknowledged: {type(outcome).__name__}")


def new_validators(settings: Settings) -> ProcessPoolExecutor:
    """One validation process (as the gateway's: ioc.api.validation)."""
    return validation.new_pool(1, max_message_bytes=settings.kafka.max_message_bytes,
                               max_future_skew_s=settings.stream.max_future_skew_s,
                               max_events=ingest.ENVELOPE_MAX_EVENTS * 10)


async def run(settings: Settings, *, metrics_port: int | None = None) -> None:
    """Run one bridge until SIGTERM/SIGINT: the batch in hand is finished and
    acknowledged, the rest stays with Mosquitto."""
    if metrics_port is not None:
        from prometheus_client import start_http_server

        start_http_server(metrics_port, addr="127.0.0.1")
    kafka, mqtt = settings.kafka, settings.mqtt
    pool: AsyncConnectionPool[Any] = connections.pool(
        settings.database.conninfo(), purpose="mqtt", min_size=1, max_size=4, autocommit=True)
    await pool.open(wait=False)
    producer = AIOKafkaProducer(
        bootstrap_servers=kafka.bootstrap_servers, client_id=f"{kafka.client_id}-mqtt",
        acks="all", enable_idempotence=True, request_timeout_ms=15_000,
        max_request_size=kafka.max_message_bytes + 65_536, linger_ms=5,
        **kafka.client_options())
    while True:
        try:
            await producer.start()
            break
        except Exception as exc:  # Kafka not there yet: nothing is taken from MQTT
            log.warning("kafka producer not started (%s); retrying", type(exc).__name__)
            await asyncio.sleep(2.0)
    validators = new_validators(settings)
    await validation.warm_up(validators, 1)
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue[Inbound] = asyncio.Queue()
    client = MqttClient(mqtt, queue, loop, password=mqtt.secret())
    admission = Admission(settings, pool, producer, validators)
    bridge = Bridge(client, queue, admission,
                    root=mqtt.topic_root, max_bytes=mqtt.max_payload_bytes,
                    batch_max=mqtt.batch_max, within_s=mqtt.batch_within_s)
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, bridge.stopping.set)
    client.start()
    log.info("mqtt bridge %s subscribing to %s:%s as %s", mqtt.client_id, mqtt.host,
             mqtt.bridge_port, mqtt.username)
    try:
        await bridge.run()
    finally:
        client.stop()
        with contextlib.suppress(Exception):
            await producer.stop()
        await pool.close()
        admission.validators.shutdown(wait=False, cancel_futures=True)
        log.info("mqtt bridge stopped after acknowledging %d messages", bridge.acked)
