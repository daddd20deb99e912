"""API load under abuse (issue 15), and the gateway with a worker behind it (issue 18):
20 honest clients at full speed against a real ``ioc api`` process on the local stack.

    python -m benchmarks.bench_api --seconds 60        # or: make bench-api
    python -m benchmarks.bench_api --with-worker --clients 20 --batch 500 --seconds 60
                                                       # or: make bench-gateway

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

``--with-worker`` (:func:`gateway`): no abuser; the API and one real ``ioc worker`` on a
fresh pipeline (topics, consumer group, database; :func:`iocdev.sandbox.pipeline`), the
clients only ``POST`` batches of ``--batch`` events. Printed: accepted ev/s, stored ev/s
during the load (raw rows whose ``stored_at`` falls in the load window / window), the
backlog at the end of the load (accepted - stored), the seconds the worker needed after
the load to store the rest, request p50/p99, 5xx, CPU seconds of the API, the worker,
PostgreSQL, Kafka and the load generator, and the load average.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import psycopg
from iocdev.sandbox import fresh_database, pipeline

from benchmarks.cpu import CpuMeter, descendants, kafka_pids, postgres_pids
from ioc.api.auth import create_key, ensure_department, settings_pepper
from ioccore.settings import ROOT, Settings, TopicSettings, get_settings
from ioccore.topics import delete_topics, ensure_topics

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


# --------------------------------------------------------------------- gateway + worker
_EVENT = ('{"schema_version":1,"feed":"sensor","event_id":"g%d-%d-%d","source_id":"gw-%d-%d",'
          '"department":"env","occurred_at":"%s","location":{"lat":%.5f,"lon":%.5f},'
          '"body":{"metric":"pm25","value":%d,"unit":"ug/m3"}}')
RAW_SQL = ("SELECT count(*) FILTER (WHERE stored_at <= %(end)s), "
           "count(*) FILTER (WHERE stored_at >= %(start)s AND stored_at <= %(end)s), "
           "count(*), count(DISTINCT (source_id, event_id)), max(stored_at) "
           "FROM sensor_readings WHERE source_id LIKE 'gw-%%'")


def batch(client: int, seq: int, n: int, sources: int, places: list[tuple[float, float]]
          ) -> bytes:
    """``n`` valid sensor events of ``client``'s ``sources`` sources, occurred a second
    ago, at places of the province (a string template: the load generator shares the
    machine, so it must cost little)."""
    at = (datetime.now(UTC) - timedelta(seconds=1)).isoformat()
    return ("[" + ",".join(_EVENT % (client, seq, i, client, i % sources, at,
                                     *places[(seq * n + i) % len(places)], 20 + i % 60)
                           for i in range(n)) + "]").encode()


async def poster(i: int, url: str, key: str, n: int, sources: int,
                 places: list[tuple[float, float]], stop: float, stats: Stats,
                 interval: float = 0.0, phase: float = 0.0) -> None:
    """Back to back, or with ``interval`` one request every ``interval`` seconds at most
    (a paced client: the load generator offers a fixed rate)."""
    headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}
    async with httpx.AsyncClient(base_url=url, timeout=30) as client:
        seq = 0
        first = time.monotonic() + interval * phase
        while time.monotonic() < stop:
            if interval:
                due = first + seq * interval - time.monotonic()
                if due > 0:
                    await asyncio.sleep(due)
                if time.monotonic() >= stop:
                    return
            seq += 1
            body = batch(i, seq, n, sources, places)
            t0 = time.monotonic()
            try:
                r = await client.post("/v1/events", content=body, headers=headers)
                took = time.monotonic() - t0
                if r.status_code == 200:
                    stats.events += n
                elif r.status_code == 207:
                    stats.events += int(r.json()["accepted"])
                stats.add(r.status_code, took)
            except httpx.HTTPError as exc:
                stats.add(type(exc).__name__, time.monotonic() - t0)


async def gateway_load(url: str, keys: list[str], seconds: float, n: int, sources: int,
                       places: list[tuple[float, float]], worker_port: int,
                       meters: dict[str, CpuMeter], rate: float = 0.0
                       ) -> tuple[Stats, datetime, datetime, list[tuple[float, int, float]]]:
    """The clients for ``seconds``; (stats, window start, window end, the series of
    (second, accepted so far, rows the worker inserted so far) every 5 s)."""
    from benchmarks.pipeline import _scrape

    stats = Stats()
    start = datetime.now(UTC)
    t0 = time.monotonic()
    stop = t0 + seconds
    for meter in meters.values():
        meter.start()
    interval = len(keys) * n / rate if rate else 0.0
    tasks = [asyncio.create_task(poster(i, url, key, n, sources, places, stop, stats,
                                        interval, i / len(keys)))
             for i, key in enumerate(keys)]
    series: list[tuple[float, int, float]] = []
    while not all(t.done() for t in tasks):
        await asyncio.sleep(1.0)
        for meter in meters.values():
            meter.sample()
        if int(time.monotonic() - t0) % 5 == 0:
            inserted = (await asyncio.to_thread(_scrape, worker_port))[
                "ioc_sink_rows_inserted_total"]
            series.append((round(time.monotonic() - t0, 1), stats.events, inserted))
    await asyncio.gather(*tasks)  # each finishes its request in flight at the stop
    end = datetime.now(UTC)
    for meter in meters.values():
        meter.sample()
    return stats, start, end, series


def gateway(settings: Settings, tmp: Path, *, seconds: float = 60.0, clients: int = 20,
            batch_events: int = 500, sources: int = 1, port: int = 30200,
            catch_up_timeout_s: float = 120.0, profile: Path | None = None,
            api_nice: int = 0, rate: float = 0.0) -> dict[str, Any]:
    """The gateway with one real worker behind it on this machine: does the stored rate
    keep up with the accepted rate? (issue 18, target 5). Callable from ``make bench``."""
    from benchmarks.workload import places as province_places

    spots = [(lat, lon) for _, lat, lon in province_places()]
    with pipeline(settings, tmp, partitions=6) as pipe:
        pepper = settings_pepper(settings.api)
        with psycopg.connect(pipe.conninfo, autocommit=True) as conn:
            ensure_department(conn, "env", ["sensor"], "env")
            conn.execute("UPDATE departments SET source_quota = greatest(source_quota, %s)"
                         " WHERE code = 'env'", (clients * sources + 10,))
            keys = [create_key(conn, role="department", department="env",
                               name=f"gw-{i}", pepper=pepper)[1] for i in range(clients)]
        env = pipe.env(0)
        # the API keeps the pipeline's app id: its admission control reads that group's lag
        for k in ("IOC__STREAM__WORKER_WEB_PORT", "IOC__STREAM__BATCH_WITHIN_S"):
            env.pop(k, None)
        spawned = time.monotonic()
        worker = pipe.start_worker()
        with api_process(env, port, tmp / "api.log", nice=api_nice) as (url, api_pid):
            warm = _warm_up(pipe.conninfo, url, keys[0], spots)
            ready_s = time.monotonic() - spawned
            meters = {"api_main": CpuMeter(lambda: {api_pid}),
                      "api_validation": CpuMeter(lambda: descendants([api_pid]) - {api_pid}),
                      "worker": CpuMeter(lambda: descendants([worker.pid])),
                      "postgres": CpuMeter(postgres_pids),
                      "kafka": CpuMeter(lambda: kafka_pids(settings)),
                      "load_generator": CpuMeter(lambda: {os.getpid()})}
            spies = [] if profile is None else _spy(profile, seconds, {
                "api": api_pid, "worker": worker.pid, **{
                    f"validation-{n}": p for n, p in enumerate(
                        sorted(descendants([api_pid]) - {api_pid}))}})
            waited = {"worker": run_queue_wait_s({worker.pid}),
                      "api": run_queue_wait_s(descendants([api_pid]))}
            stats, start, end, series = asyncio.run(gateway_load(
                url, keys, seconds, batch_events, sources, spots, pipe.web_ports[0], meters,
                rate))
            waited = {"worker": run_queue_wait_s({worker.pid}) - waited["worker"],
                      "api": run_queue_wait_s(descendants([api_pid])) - waited["api"]}
            load_avg = os.getloadavg()
            held = _backpressure_counts(url)
            window = (end - start).total_seconds()
            accepted = stats.events
            deadline = time.monotonic() + catch_up_timeout_s
            while True:
                by_end, in_window, total, distinct, last = _raw(pipe.conninfo, start, end)
                if total - warm >= accepted or time.monotonic() > deadline:
                    break
                if worker.poll() is not None:
                    raise SystemExit(worker.describe())
                time.sleep(0.5)
        for spy in spies:
            spy.wait()
        pipe.stop_workers()
    stored = total - warm
    lat = stats.latencies
    five = sum(c for s, c in stats.status.items() if s.startswith("5"))
    backlog = accepted - (by_end - warm)
    accepted_rate = accepted / window
    catch_up = max(0.0, (last - end).total_seconds()) if last and stored >= accepted else None
    cpu = {k: round(m.used, 1) for k, m in meters.items()}
    figures: dict[str, Any] = {
        "mode": "gateway + one worker", "offered_per_s": rate or "back to back",
        "api_nice": api_nice, "seconds": round(window, 1),
        "clients": clients,
        "events_per_request": batch_events, "sources_per_client": sources,
        "requests": len(lat), "accepted_events": accepted,
        "accepted_per_s": round(accepted_rate),
        "stored_per_s_during_load": round(in_window / window),
        "backlog_at_end_events": backlog,
        "backlog_at_end_s": round(backlog / accepted_rate, 2) if accepted_rate else None,
        "catch_up_s": round(catch_up, 2) if catch_up is not None else "not within "
                      f"{catch_up_timeout_s:.0f} s",
        "stored_events": stored, "duplicates": total - distinct,
        "p50_s": round(percentile(lat, 0.50), 3), "p99_s": round(percentile(lat, 0.99), 3),
        "max_s": round(max(lat, default=float("nan")), 3), "status": dict(stats.status),
        "5xx": five, "cpu_s": cpu,
        "cpu_us_per_event": {k: round(1e6 * v / max(1, accepted)) for k, v in cpu.items()},
        "run_queue_wait_s": {k: round(v, 1) for k, v in waited.items()},
        "series_s_accepted_inserted": series,
        "worker_start_to_ready_s": round(ready_s, 1),
        "load_average_1_5_15": [round(x, 2) for x in load_avg],
        "backpressure": settings.api.backpressure.model_dump(),
        "backpressure_requests": held,
    }
    figures["keeps_up"] = bool(catch_up is not None and catch_up <= 5.0
                               and figures["backlog_at_end_s"] is not None
                               and figures["backlog_at_end_s"] <= 5.0)
    return figures


def _backpressure_counts(url: str) -> dict[str, float]:
    """The API's admission-control counters (held and admitted, refused, lag errors)."""
    page = httpx.get(f"{url}/metrics", timeout=10).text
    out: dict[str, float] = {}
    for line in page.splitlines():
        if line.startswith(("ioc_api_backpressure_requests_total{",
                            "ioc_api_backpressure_lag_errors_total ")):
            name, value = line.rsplit(" ", 1)
            out[name.removeprefix("ioc_api_backpressure_")] = float(value)
    return out


def run_queue_wait_s(pids: set[int]) -> float:
    """Seconds the threads of ``pids`` have spent runnable but waiting for a CPU
    (``/proc/<pid>/task/*/schedstat``, second field): a process that falls behind while
    this grows is short of CPU, one that falls behind without it waits for I/O."""
    total = 0
    for pid in pids:
        try:
            tasks = list(Path(f"/proc/{pid}/task").iterdir())
        except OSError:
            continue
        for task in tasks:
            with contextlib.suppress(OSError, IndexError, ValueError):
                total += int((task / "schedstat").read_text().split()[1])
    return total / 1e9


def _spy(out: Path, seconds: float, pids: dict[str, int]) -> list[subprocess.Popen[bytes]]:
    """py-spy (collapsed stacks, idle excluded) on each process for the load."""
    out.mkdir(parents=True, exist_ok=True)
    spy = str(Path(sys.executable).with_name("py-spy"))
    return [subprocess.Popen([spy, "record", "--pid", str(pid), "--duration",
                              str(int(seconds)), "--rate", "50", "--format", "raw",
                              "--nonblocking", "-o", str(out / f"{name}.txt")],
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            for name, pid in pids.items()]


def _raw(conninfo: str, start: datetime, end: datetime
         ) -> tuple[int, int, int, int, datetime | None]:
    with psycopg.connect(conninfo) as conn:
        row = conn.execute(RAW_SQL.encode(), {"start": start, "end": end}).fetchone()
    assert row is not None
    return int(row[0]), int(row[1]), int(row[2]), int(row[3]), row[4]


def _warm_up(conninfo: str, url: str, key: str, spots: list[tuple[float, float]]) -> int:
    """One small batch through the whole pipeline, so the load starts on a worker that
    has joined its group and stores; the rows it stored."""
    body = batch(999, 0, 10, 1, spots)
    r = httpx.post(f"{url}/v1/events", content=body, timeout=30, headers={
        "Authorization": f"Bearer {key}", "Content-Type": "application/json"})
    if r.status_code != 200:
        raise SystemExit(f"warm-up request: {r.status_code} {r.text[:300]}")
    deadline = time.monotonic() + 120
    now = datetime.now(UTC)
    while time.monotonic() < deadline:
        if _raw(conninfo, now, now)[2] >= 10:
            return 10
        time.sleep(0.3)
    raise SystemExit("the worker stored nothing within 120 s")


@contextlib.contextmanager
def api_process(env: dict[str, str], port: int, log: Path, nice: int = 0
                ) -> Iterator[tuple[str, int]]:
    """A real ``ioc api`` process (uvicorn, its validation workers) on ``port``, ready:
    ``(url, pid)``; SIGTERM (then SIGKILL) afterwards. ``nice``: its CPU niceness, as
    ``nice -n`` would set it (its validation workers inherit it)."""
    argv = [sys.executable, "-m", "ioc.cli", "api", "--port", str(port), "--log-level",
            "warning"]
    if nice:
        argv = ["nice", "-n", str(nice), *argv]
    proc = subprocess.Popen(argv, cwd=ROOT, env=env, stdout=log.open("wb"),
                            stderr=subprocess.STDOUT)
    try:
        url = f"http://127.0.0.1:{port}"
        for _ in range(200):
            try:
                if httpx.get(f"{url}/readyz", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if proc.poll() is not None:
                break
            time.sleep(0.2)
        else:
            raise SystemExit(f"the API did not become ready; see {log}")
        if proc.poll() is not None:
            raise SystemExit(f"the API exited with {proc.returncode}; see {log}")
        yield url, proc.pid
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--port", type=int, default=30200)
    parser.add_argument("--no-abuse", action="store_true",
                        help="honest clients only (the baseline)")
    parser.add_argument("--with-worker", action="store_true",
                        help="the gateway with one real worker behind it: stored vs "
                             "accepted rate (no abuser)")
    parser.add_argument("--clients", type=int, default=HONEST, help="with --with-worker")
    parser.add_argument("--batch", type=int, default=500,
                        help="events per request, with --with-worker")
    parser.add_argument("--sources", type=int, default=1,
                        help="sources per client (events spread over them), with "
                             "--with-worker")
    parser.add_argument("--profile", type=Path, default=None,
                        help="with --with-worker: py-spy the API, its validation workers "
                             "and the worker into this directory (collapsed stacks)")
    parser.add_argument("--api-nice", type=int, default=0,
                        help="with --with-worker: run the API under nice -n N (the worker "
                             "at 0), as a host running both should")
    parser.add_argument("--rate", type=float, default=0.0,
                        help="with --with-worker: offer this many events/s in all (each "
                             "client paced), instead of back to back")
    args = parser.parse_args(argv)
    settings: Settings = get_settings()
    if args.with_worker:
        with tempfile.TemporaryDirectory(prefix="bench-gw-") as tmp:
            result = gateway(settings, Path(tmp), seconds=args.seconds, clients=args.clients,
                             batch_events=args.batch, sources=args.sources,
                             port=args.port, profile=args.profile, api_nice=args.api_nice,
                             rate=args.rate)
        print(json.dumps(result, indent=2, default=str))
        print("stored rate keeps up (backlog and catch-up <= 5 s), p99 < 1 s, no 5xx:",
              "yes" if result["keeps_up"] and result["p99_s"] < 1.0 and not result["5xx"]
              else "NO")
        return 0
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
            with api_process(env, args.port, Path(f"/tmp/bench-api-{tag}.log")) as (url, pid):
                figures = asyncio.run(load(url, keys, abuser, viewer, pid, args.seconds,
                                           abuse=not args.no_abuse))
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
