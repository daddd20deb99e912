"""The federation processes' composition roots: ``ioc federation publish|ingest``.

A province runs one publisher (more are safe: they share the key queue); the nation
runs one or more ingest processes in one consumer group. Both stop on SIGTERM/SIGINT
after the step in progress, having committed nothing they did not finish.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
from typing import Any

import psycopg
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from ioccore.db.connections import aconnect
from ioccore.errors import ConfigError
from ioccore.settings import Settings
from streams.federation import Ingest, Publisher, topic_pattern
from streams.federation import publisher as publishing


def _stop_event() -> asyncio.Event:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, stop.set)
    return stop


def _connector(settings: Settings, database: str | None) -> Any:
    conninfo = settings.database.conninfo(database)

    async def connect() -> psycopg.AsyncConnection[Any]:
        return await aconnect(conninfo, purpose="federation", autocommit=True)
    return connect


def _producer(settings: Settings) -> AIOKafkaProducer:
    kafka = settings.kafka
    return AIOKafkaProducer(
        bootstrap_servers=kafka.bootstrap_servers, client_id=f"{kafka.client_id}-federation",
        acks="all", enable_idempotence=True, linger_ms=20,
        max_request_size=kafka.max_message_bytes, **kafka.client_options())


async def publish(settings: Settings, *, database: str | None = None,
                  once: bool = False) -> None:
    """The province's publisher until stopped (``once``: one round, then return)."""
    fed = settings.federation
    if fed.role != "province" or not fed.province_code:
        raise ConfigError("federation publish needs federation.role=province and "
                          "federation.province_code (IOC__FEDERATION__PROVINCE_CODE)")
    stop = _stop_event()
    producer = _producer(settings)
    await producer.start()
    try:
        async def send(key: bytes, value: bytes) -> Any:
            return await producer.send(fed.topic, key=key, value=value)

        pub = Publisher(fed.province_code, send, batch_keys=fed.batch_keys)
        await publishing.run(pub, _connector(settings, database), every_s=fed.publish_every_s,
                             snapshot_every_s=fed.snapshot_every_s, stop=stop, once=once)
    finally:
        await producer.stop()


async def ingest(settings: Settings, *, database: str | None = None) -> None:
    """The nation's reader until stopped."""
    fed = settings.federation
    if fed.role != "national" or not fed.origins:
        raise ConfigError("federation ingest needs federation.role=national and "
                          "federation.origins (alias: province code)")
    kafka = settings.kafka
    stop = _stop_event()
    consumer = AIOKafkaConsumer(
        bootstrap_servers=kafka.bootstrap_servers, client_id=f"{kafka.client_id}-fed-ingest",
        group_id=fed.ingest_group, enable_auto_commit=False, auto_offset_reset="earliest",
        metadata_max_age_ms=5000, **kafka.client_options())
    consumer.subscribe(pattern=topic_pattern(fed.origins, fed.topic))
    producer = _producer(settings)
    await consumer.start()
    await producer.start()
    try:
        reader = Ingest(consumer, producer, _connector(settings, database),
                        origins=fed.origins, topic=fed.topic,
                        deadletter_topic=kafka.topics.deadletter.name)
        await reader.run(stop)
    finally:
        await consumer.stop()
        await producer.stop()
