"""API load under abuse (issue 15): 20 honest clients at full speed plus one abusive
client for a set time against a real ``ioc api`` process on the local stack.

    python -m benchmarks.bench_api --seconds 60        # or: make bench-api

Setup: a fresh migrated database, fresh one-partition feed topics, one department key
per honest client and two for the abuser (department + viewer); the API runs as its own
process (``python -m ioc.cli api``, port 30300 by default) with the shipped limits.

* honest client (x20): back to back, ``POST /v1/events`` with 50 valid sensor events
  (4 of 5 requests) or ``GET /v1/alerts`` (1 of 5); latency per request.
* abusive client, all at once: 48 MB unauthenticated bodies (declared and chunked) to
  operator routes; 5 MiB authenticated bodies of junk to the gateway; floods of junk
  NDJSON lines; 100 open live streams (with its viewer key).

Printed: honest requests, rate, p50/p95/p99/max latency, status counts; the abuser's
status counts; 5xx of anyone; the API process's peak RSS. A benchmark, not a test.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import psycopg
from iocdev.sandbox import fresh_database

from ioc.api.auth import create_key, ensure_department, settings_pepper
from ioc.core.settings import ROOT, Settings, TopicSettings, get_settings
from ioc.core.topics import delete_topics, ensure_topics

HONEST = 20
EVENTS_PER_REQUEST = 50


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def events(client: int, n: int) -> bytes:
    at = (datetime.now(UTC) - timedelta(minutes=1)).isoformat()
    return json.dumps([{
        "schema_version": 1, "feed": "sensor", "event_id": f"b{client}-{uuid.uuid4().hex}",
        "source_id": f"bench-{client}", "department": "env", "occurred_at": at,
        "location": {"lat": 21.0285, "lon": 105.8542},
        "body": {"metric": "pm25", "value": 30.0 + i % 50, "unit": "ug/m3"}}
        for i in range(n)]).encode()


class Stats:
    def __init__(self) -> None:
        self.latencies: list[float] = []
        self.status: Counter[str] = Counter()
        self.events = 0

    def add(self, status: int | str, seconds: float | None = None) -> None:
        self.status[str(status)] += 1
        if seconds is not None:
            self.latencies.append(seconds)


async def honest(i: int, url: str, key: str, viewer: str, stop: float, stats: Stats
                 ) -> None:
    headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}
    reader = {"Authorization": f"Bearer {viewer}"}
    async with httpx.AsyncClient(base_url=url, timeout=30) as client:
        n = 0
        while time.monotonic() < stop:
            n += 1
            t0 = time.monotonic()
            try:
                if n % 5 == 0:
                    r = await client.get("/v1/alerts?limit=10", headers=reader)
                else:
                    r = await client.post("/v1/events", content=events(i, EVENTS_PER_REQUEST),
                                          headers=headers)
                    if r.status_code == 200:
                        stats.events += EVENTS_PER_REQUEST
                stats.add(r.status_code, time.monotonic() - t0)
            except httpx.HTTPError as exc:
                stats.add(type(exc).__name__, time.monotonic() - t0)


async def chunks(total: int, size: int = 1 << 20) -> AsyncIterator[bytes]:
    sent = 0
    block = b"x" * size
    while sent < total:
        sent += size
        yield block


async def abuse_bodies(url: str, dept: str, stop: float, stats: Stats) -> None:
    junk5m = b"[" + b"1," * (5 * 1024 * 1024 // 2 - 4) + b"1]"
    async with httpx.AsyncClient(base_url=url, timeout=30) as client:
        n = 0
        while time.monotonic() < stop:
            n += 1
            try:
                if n % 3 == 0:
                    r = await client.post("/v1/silences", content=chunks(48 << 20),
                                          headers={"Content-Type": "application/json"})
                elif n % 3 == 1:
                    stats.add(await lying_length(url, "/v1/alerts/x/ack", 48 << 20))
                    continue
                else:
                    r = await client.post("/v1/events", content=junk5m, headers={
                        "Authorization": f"Bearer {dept}", "Content-Type": "application/json"})
                stats.add(r.status_code)
            except Exception as exc:  # the abuser counts its own failures
                stats.add(type(exc).__name__)


async def lying_length(url: str, path: str, declared: int) -> int | str:
    """A request declaring a 48 MB body, of which it sends 1 KB (a raw socket: HTTP
    clients refuse to lie); the status line of the answer."""
    host, port = url.removeprefix("http://").split(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    try:
        writer.write(f"POST {path} HTTP/1.1\r\nHost: {host}\r\nContent-Type: "
                     f"application/json\r\nContent-Length: {declared}\r\n\r\n".encode()
                     + b"x" * 1024)
        await writer.drain()
        line = await asyncio.wait_for(reader.readline(), 30)
        parts = line.split()
        return int(parts[1]) if len(parts) > 1 else "no-answer"
    finally:
        writer.close()


async def abuse_lines(url: str, dept: str, stop: float, stats: Stats) -> None:
    lines = b'{"x": 1}\n' * 4999 + b"[[[[[[[[\n"
    headers = {"Authorization": f"Bearer {dept}", "Content-Type": "application/x-ndjson"}
    async with httpx.AsyncClient(base_url=url, timeout=30) as client:
        while time.monotonic() < stop:
            try:
                r = await client.post("/v1/events", content=lines, headers=headers)
                stats.add(r.status_code)
            except httpx.HTTPError as exc:
                stats.add(type(exc).__name__)


async def abuse_streams(url: str, viewer: str, stop: float, stats: Stats) -> None:
    async def one(client: httpx.AsyncClient) -> None:
        while time.monotonic() < stop:
            try:
                async with client.stream("GET", "/v1/alerts/stream", headers={
                        "Authorization": f"Bearer {viewer}"}) as r:
                    stats.add(f"stream-{r.status_code}")
                    if r.status_code == 200:
                        async for _ in r.aiter_raw():
                            if time.monotonic() >= stop:
                                return
                    else:
                        await asyncio.sleep(1.0)
            except httpx.HTTPError as exc:
                stats.add(type(exc).__name__)
                await asyncio.sleep(1.0)

    limits = httpx.Limits(max_connections=200, max_keepalive_connections=200)
    async with httpx.AsyncClient(base_url=url, timeout=httpx.Timeout(30, read=None),
                                 limits=limits) as client:
        await asyncio.gather(*(one(client) for _ in range(100)))


def rss_mb(pid: int) -> float:
    """Resident memory of ``pid`` and its children (the validation workers), in MB."""
    total = 0.0
    pids = [pid]
    try:
        for task in Path(f"/proc/{pid}/task").iterdir():
            pids += [int(c) for c in (task / "children").read_text().split()]
    except OSError:
        pass
    for p in pids:
        try:
            for line in Path(f"/proc/{p}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1]) / 1024
        except OSError:
            pass
    return total


async def sample_rss(pid: int, stop: float, peak: list[float]) -> None:
    while time.monotonic() < stop:
        peak[0] = max(peak[0], rss_mb(pid))
        await asyncio.sleep(0.5)


async def load(url: str, keys: list[tuple[str, str]], dept_abuser: str, viewer: str,
               pid: int, seconds: float, abuse: bool = True) -> dict[str, Any]:
    stop = time.monotonic() + seconds
    good, bad = Stats(), Stats()
    peak = [rss_mb(pid)]
    start_rss = peak[0]
    honest_tasks = [asyncio.create_task(honest(i, url, *keys[i], stop, good))
                    for i in range(HONEST)]
    coros: list[Any] = [sample_rss(pid, stop, peak)]
    if abuse:
        coros += [abuse_bodies(url, dept_abuser, stop, bad),
                  abuse_lines(url, dept_abuser, stop, bad), abuse_streams(url, viewer, stop, bad)]
    abusive = [asyncio.create_task(c) for c in coros]
    await asyncio.gather(*honest_tasks)  # each finishes its request in flight at the stop
    elapsed = seconds
    await asyncio.sleep(1.0)
    for task in abusive:  # streams wait for data; a 48 MB upload may be mid-way
        task.cancel()
    await asyncio.gather(*abusive, return_exceptions=True)
    lat = good.latencies
    five = sum(n for s, n in (good.status + bad.status).items()
               if s.removeprefix("stream-").startswith("5"))
    return {
        "seconds": round(elapsed, 1), "honest_clients": HONEST, "abusive_client": abuse,
        "honest_requests": len(lat), "honest_requests_per_s": round(len(lat) / elapsed, 1),
        "honest_events_per_s": round(good.events / elapsed),
        "honest_p50_s": round(percentile(lat, 0.50), 3),
        "honest_p95_s": round(percentile(lat, 0.95), 3),
        "honest_p99_s": round(percentile(lat, 0.99), 3),
        "honest_max_s": round(max(lat, default=float("nan")), 3),
        "honest_status": dict(good.status), "abusive_status": dict(bad.status),
        "5xx": five, "api_rss_mb_start": round(start_rss), "api_rss_mb_peak": round(peak[0]),
        "note": "RSS: the API process and its validation workers",
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--port", type=int, default=30300)
    parser.add_argument("--no-abuse", action="store_true",
                        help="honest clients only (the baseline)")
    args = parser.parse_args(argv)
    settings: Settings = get_settings()
    tag = uuid.uuid4().hex[:8]
    topics = {feed: f"bench-api-{tag}.{feed}" for feed in ("sensor", "traffic", "service")}
    ensure_topics(settings.kafka, [TopicSettings(name=n, partitions=1, retention_hours=1)
                                   for n in topics.values()])
    try:
        with fresh_database(settings, "ioc_bench_api") as (dbname, conninfo):
            pepper = settings_pepper(settings.api)
            with psycopg.connect(conninfo, autocommit=True) as conn:
                ensure_department(conn, "env", ["sensor"], "env")
                keys = [(create_key(conn, role="department", department="env",
                                    name=f"honest-{i}", pepper=pepper)[1],
                         create_key(conn, role="viewer", department=None,
                                    name=f"honest-viewer-{i}", pepper=pepper)[1])
                        for i in range(HONEST)]
                abuser = create_key(conn, role="department", department="env",
                                    name="abuser", pepper=pepper)[1]
                viewer = create_key(conn, role="viewer", department=None,
                                    name="abuser-viewer", pepper=pepper)[1]
            env = dict(os.environ, IOC__DATABASE__DBNAME=dbname,
                       **{f"IOC__KAFKA__TOPICS__{f.upper()}__NAME": n for f, n in topics.items()})
            log = Path(f"/tmp/bench-api-{tag}.log")
            proc = subprocess.Popen([sys.executable, "-m", "ioc.cli", "api", "--port",
                                     str(args.port), "--log-level", "warning"], cwd=ROOT,
                                    env=env, stdout=log.open("wb"), stderr=subprocess.STDOUT)
            try:
                url = f"http://127.0.0.1:{args.port}"
                for _ in range(200):
                    try:
                        if httpx.get(f"{url}/readyz", timeout=2).status_code == 200:
                            break
                    except httpx.HTTPError:
                        pass
                    time.sleep(0.2)
                else:
                    raise SystemExit(f"the API did not become ready; see {log}")
                figures = asyncio.run(load(url, keys, abuser, viewer, proc.pid, args.seconds,
                                           abuse=not args.no_abuse))
            finally:
                proc.terminate()
                try:
                    proc.wait(timeout=15)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()
    finally:
        delete_topics(settings.kafka, list(topics.values()))
    cores = len(os.sched_getaffinity(0))
    figures["machine"] = (f"{cores} cores, shared (Kafka, PostgreSQL, the API and this load "
                          "generator on the same machine)")
    print(json.dumps(figures, indent=2))
    ok = figures["honest_p99_s"] < 1.0 and figures["5xx"] == 0
    print("honest p99 < 1 s and no 5xx:", "yes" if ok else "NO")
    return 0


if __name__ == "__main__":
    sys.exit(main())
