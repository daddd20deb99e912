"""Producing a benchmark's backlog before the measured part starts."""

from __future__ import annotations

from datetime import datetime

from iocdev.sandbox import Pipeline
from kafka import KafkaProducer

from benchmarks.workload import Workload


def producer(pipe: Pipeline, linger_ms: int = 20) -> KafkaProducer:
    """A producer with the connection options every client takes from Settings."""
    return KafkaProducer(bootstrap_servers=pipe.settings.kafka.bootstrap_servers,
                         acks="all", linger_ms=linger_ms, batch_size=1_000_000,
                         max_request_size=2_000_000, compression_type=None,
                         **pipe.settings.kafka.client_options())


def preload(pipe: Pipeline, workload: Workload, n_events: int,
            start: datetime | None = None, span_s: float = 0.0) -> int:
    """Send ``n_events`` of ``workload`` to the pipeline's raw topics; events sent."""
    p = producer(pipe)
    total = 0
    send = p.send
    for feed, key, value, n in workload.messages(n_events, start=start, span_s=span_s):
        send(pipe.topics[feed], key=key, value=value)
        total += n
    p.flush()
    p.close()
    return total
