"""MQTT ingest through the bridge, beside direct Kafka, in one run (issue 26).

    python -m benchmarks.bench_mqtt --seconds 10          # or: make bench-mqtt

Setup: a fresh pipeline (topics with 3 partitions, database; :func:`iocdev.sandbox.pipeline`),
department ``env`` with its MQTT user, a private Mosquitto, one ``ioc mqtt-bridge`` and
one ``ioc worker``. Every message is one ioc envelope (a PM2.5 reading) from one of 50
sources, QoS 1.

1. **throughput**: publish as fast as the client goes for ``--seconds``; printed: messages
   per second Mosquitto acknowledged, and stored rows per second from the first publish to
   the last of them stored;
2. **latency at ``--rate`` msg/s** (5,000): paced for ``--seconds``; each event's
   ``occurred_at`` is its publish time, so ``stored_at - occurred_at`` of its row is
   publish -> stored row; printed p50/p99/max;
3. **direct Kafka at the same rate**: the same events produced one per message
   (``acks=all``) to the raw topic; the same percentiles.

A benchmark, not a test; on a shared machine its figures move with the neighbours' load.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import psycopg
from iocdev.mqtt import Publisher, department_user, private_broker, start_bridge
from iocdev.sandbox import Pipeline, pipeline
from kafka import KafkaProducer

from ioc.api.auth import ensure_department
from ioccore.settings import get_settings

SOURCES = 50


def event(tag: str, i: int) -> dict[str, Any]:
    return {"schema_version": 1, "feed": "sensor", "event_id": f"{tag}-{i}",
            "source_id": f"b{tag}-{i % SOURCES}", "department": "env",
            "occurred_at": datetime.now(UTC).isoformat(), "commune_code": "00004",
            "body": {"metric": "pm25", "value": float(i % 90), "unit": "ug/m3"}}


def stored(pipe: Pipeline, tag: str) -> int:
    return int(pipe.query("SELECT count(*) FROM sensor_readings WHERE event_id LIKE %s",
                          (f"{tag}-%",))[0][0])


def wait_stored(pipe: Pipeline, tag: str, n: int, timeout: float = 300.0) -> float:
    deadline = time.monotonic() + timeout
    while stored(pipe, tag) < n and time.monotonic() < deadline:
        time.sleep(0.2)
    return time.monotonic()


def latency(pipe: Pipeline, tag: str) -> dict[str, float]:
    row = pipe.query(
        "SELECT percentile_cont(ARRAY[0.5, 0.99]) WITHIN GROUP (ORDER BY d), max(d), "
        "count(*) FROM (SELECT extract(epoch FROM stored_at - time) AS d "
        "FROM sensor_readings WHERE event_id LIKE %s) x", (f"{tag}-%",))[0]
    return {"p50_s": float(row[0][0]), "p99_s": float(row[0][1]), "max_s": float(row[1]),
            "n": int(row[2])}


def paced(rate: float, seconds: float, send: Any) -> int:
    n = int(rate * seconds)
    t0 = time.monotonic()
    for i in range(n):
        send(i)
        ahead = t0 + (i + 1) / rate - time.monotonic()
        if ahead > 0.002:
            time.sleep(ahead)
    return n


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--rate", type=float, default=5000.0)
    args = parser.parse_args(argv)
    settings = get_settings()
    out: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="bench-mqtt-") as t:
        tmp = Path(t)
        with pipeline(settings, tmp, partitions=3) as pipe, private_broker(tmp) as broker:
            with psycopg.connect(pipe.conninfo, autocommit=True) as conn:
                ensure_department(conn, "env", ["sensor"], "env")
                conn.execute("UPDATE departments SET source_quota = 1000")
            user, password = department_user(settings, pipe.conninfo, "env")
            broker.sync(pipe.conninfo)
            pipe.start_worker()
            bridge = start_bridge(pipe, broker, tmp)
            pub = Publisher(broker.port, user, password, "bench")
            pub.start()
            # warm-up: registrations and the worker's first batches
            tag = uuid.uuid4().hex[:6]
            for i in range(200):
                e = event(tag, i)
                pub.publish(f"ioc/env/sensor/{e['source_id']}", orjson.dumps(e), i)
            wait_stored(pipe, tag, 200)

            tag = uuid.uuid4().hex[:6]
            pub.acked.clear()
            t0 = time.monotonic()
            i = 0
            while time.monotonic() - t0 < args.seconds:
                e = event(tag, i)
                pub.publish(f"ioc/env/sensor/{e['source_id']}", orjson.dumps(e), i)
                i += 1
            pub.drain()
            acked_s = time.monotonic() - t0
            done = wait_stored(pipe, tag, i)
            out["throughput"] = {"messages": i, "acked_per_s": round(i / acked_s),
                                 "stored_rows_per_s": round(i / (done - t0))}
            print(f"throughput: {i} messages, {i / acked_s:,.0f} msg/s acknowledged by "
                  f"Mosquitto, {i / (done - t0):,.0f} rows/s stored", flush=True)

            tag = uuid.uuid4().hex[:6]
            t0 = time.monotonic()
            n = paced(args.rate, args.seconds, lambda k: pub.publish(
                f"ioc/env/sensor/b{tag}-{k % SOURCES}", orjson.dumps(event(tag, k)), k))
            achieved = n / (time.monotonic() - t0)
            wait_stored(pipe, tag, n)
            out["mqtt"] = {"rate_target": args.rate, "rate_achieved": round(achieved),
                           **latency(pipe, tag)}
            print(f"mqtt   @ {achieved:,.0f} msg/s: {out['mqtt']}", flush=True)

            tag = uuid.uuid4().hex[:6]
            producer = KafkaProducer(bootstrap_servers=settings.kafka.bootstrap_servers,
                                     acks="all", linger_ms=2, **settings.kafka.client_options())
            topic = pipe.topics["sensor"]
            t0 = time.monotonic()
            n = paced(args.rate, args.seconds, lambda k: producer.send(
                topic, key=f"b{tag}-{k % SOURCES}".encode(),
                value=orjson.dumps(event(tag, k))))
            producer.flush()
            achieved = n / (time.monotonic() - t0)
            producer.close()
            wait_stored(pipe, tag, n)
            out["kafka"] = {"rate_target": args.rate, "rate_achieved": round(achieved),
                            **latency(pipe, tag)}
            print(f"kafka  @ {achieved:,.0f} msg/s: {out['kafka']}", flush=True)
            pub.stop()
            bridge.stop(timeout=20)
    out["load_average"] = os.getloadavg()
    print(orjson.dumps(out, option=orjson.OPT_INDENT_2).decode())


if __name__ == "__main__":
    main()
