"""Province commit -> national row, at a province's rate of dossier events (issue 25).

A federation of one province (the local stack's broker) and the nation (a broker of its
own), real MirrorMaker and ``ioc federation`` processes (``iocdev.federation.running``).
Dossier events are committed to the province's database at ``rate`` events/s, in
transactions of ``batch`` events written by the sink itself (``TimescaleSink.write``:
staging COPY, sources, the service statement that queues its rows for the dossier fold
set-based, migration 0125, rollups), so the write path measured is the deployed one.
``writers`` connections commit in parallel; a stage-2 worker's sink is one. Every
transaction also opens one probe dossier at an agency of its own, so it
creates exactly one new KPI key; its latency is the national row's ``stored_at`` minus
the province's clock just before that transaction committed (one PostgreSQL server, one
machine, so one clock). Also printed: what the nation spent per record (CPU of the
ingest process) and the bytes per stored row, the inputs of the 34-province sizing in
BENCHMARKS.md.

Per stage, the time since the probe's commit (p50/p99/max), so a backlog is located by
measurement, not guessed:

- ``read``: the publisher read the key's values (the record's ``as_of``): the wait in
  the province's key queue;
- ``acked``: Kafka acknowledged the publisher's round holding it (the publisher's debug
  timing line), ``claim_committed``: that round's removal from the queue committed;
- ``appended``: the province broker appended it (the topic's ``LogAppendTime``);
- ``mirrored``: MirrorMaker's copy was appended at the nation (``LogAppendTime`` of the
  replicated topic);
- ``fetched``/``stored``: the ingest's batch holding it was fetched, and its transaction
  committed (the ingest's debug timing line).

The generator's own cost is printed too (``generator``: seconds building rows in Python
and executing the statements): when ``events_per_s`` falls short of ``rate``, it says
whether this process or the database was the limit.

    python -m benchmarks.bench_federation --rate 5000 --seconds 60 [--writers 1]
        [--service-share 0.1]

``--service-share`` below 1 makes the rate a province's mix: that share of dossier
events, the rest PM2.5 readings through the same sink transactions. ``0.1`` is the
service share of ``benchmarks/workload.py``'s province (70 % sensor, 20 % traffic,
10 % service; traffic rows are written here as readings): a province's 5,000 events/s
are mostly readings, and only dossiers move KPI keys.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import os
import random
import statistics
import tempfile
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Literal

import psycopg
from iocdev.federation import mirror
from iocdev.settings import get_dev_settings
from kafka import KafkaConsumer, TopicPartition
from kafka.admin import ConfigResource, ConfigResourceType

from ioccore.events.record import Record
from ioccore.settings import KafkaSettings
from ioccore.topics import admin_client
from streams.sinks.timescale import TimescaleSink

Channel = Literal["online", "offline"]
Status = Literal["received", "in_progress", "resolved", "returned", "paid"]

STATUSES: tuple[Status, ...] = ("received", "in_progress", "resolved", "paid")


def _dossier(event_id: str, at: datetime, commune: str, dossier: str, agency: str,
             channel: Channel, status: Status, fee: bool, paid_online: bool,
             digitised: bool, source: str) -> Record:
    return Record(event_id=event_id, source_id=source, department="pscc", feed="service",
                  occurred_at=at, received_at=time.time(), commune_code=commune,
                  province_code="01", geo="code", dossier_id=dossier,
                  procedure_code="1.0001", agency=agency, channel=channel, status=status,
                  due_at=at + timedelta(days=5),
                  resolved_at=at + timedelta(days=1) if status == "resolved" else None,
                  fee_bearing=fee, paid_online=paid_online, digitised=digitised)


def _probe(i: int | str, t0: datetime) -> Record:
    """The transaction's one new KPI key: a dossier at an agency of its own."""
    return _dossier(f"p{i}", t0, "00004", f"p{i}", f"probe-{i}", "online", "received",
                    False, True, True, "desk-probe")


async def _commit(conn: psycopg.AsyncConnection[Any], sink: TimescaleSink,
                  records: list[Record]) -> datetime:
    """One transaction as the sink's worker commits a batch (``TimescaleSink.write``:
    staging COPY, sources, the service statement queueing its rows for the dossier fold,
    rollups); returns the province's clock just before the commit."""
    async with conn.transaction():
        await sink.write(conn, records, [False] * len(records))
        row = await (await conn.execute("SELECT clock_timestamp()")).fetchone()
    assert row is not None
    return row[0]  # type: ignore[no-any-return]


def _reading(i: int, rng: random.Random) -> Record:
    """A PM2.5 reading: part of a province's rate that federation never publishes."""
    return Record(event_id=f"r{i}", source_id=f"aq-{i % 500}", department="env",
                  feed="sensor", occurred_at=datetime.now(UTC), received_at=time.time(),
                  commune_code=f"{rng.randrange(1, 400):05d}", province_code="01",
                  geo="code", metric="pm25", value=float(rng.randrange(90)), unit="ug/m3")


def _events(n: int, start: int, rng: random.Random, t0: datetime,
            service_share: float = 1.0) -> list[Record]:
    rows = []
    channels: tuple[Channel, ...] = ("online", "offline")
    for i in range(start, start + n):
        if rng.random() >= service_share:
            rows.append(_reading(i, rng))
            continue
        dossier = f"d{rng.randrange(max(1, i // 3 + 1))}"
        status = rng.choice(STATUSES)
        at = t0 + timedelta(seconds=rng.randrange(7 * 86400))
        commune = f"{rng.randrange(1, 400):05d}"
        agency = f"agency-{rng.randrange(40)}"
        channel = rng.choice(channels)
        rows.append(_dossier(f"e{i}", at, commune, dossier, agency, channel, status,
                             rng.random() < 0.4, rng.random() < 0.5, rng.random() < 0.7,
                             f"desk-{i % 50}"))
    return rows


def _cpu_s(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _backend_cpu_s(pid: int) -> float:
    """CPU seconds of a PostgreSQL backend (same machine), from schedstat: its share of
    ``executing_s`` says whether the server worked or waited (locks, CPU queue, I/O)."""
    try:
        return int(Path(f"/proc/{pid}/schedstat").read_text().split()[0]) / 1e9
    except (OSError, IndexError, ValueError):
        return 0.0


def _warm_up(province: str, nation: str, t0: datetime, timeout_s: float = 180.0) -> None:
    """One probe through the whole path before the clock starts: MirrorMaker and the
    ingest take seconds to start, which is not the latency being measured."""
    async def commit() -> None:
        async with await psycopg.AsyncConnection.connect(province) as conn:
            await TimescaleSink.prepare(conn)
            await _commit(conn, TimescaleSink(), [_probe("warm-up", t0)])

    asyncio.run(commit())
    deadline = time.monotonic() + timeout_s
    with psycopg.connect(nation, autocommit=True) as nat:
        while time.monotonic() < deadline:
            if nat.execute("SELECT 1 FROM fed_kpi_counts WHERE agency = 'probe-warm-up'"
                           ).fetchone():
                nat.execute("DELETE FROM fed_kpi_counts WHERE agency = 'probe-warm-up'")
                return
            time.sleep(0.2)
    raise TimeoutError("the federation did not carry a first record")


def _log_append_time(kafka: KafkaSettings, topic: str) -> None:
    """Stamp the topic's records with the broker's append time (the stage clocks)."""
    admin = admin_client(kafka)
    try:
        admin.alter_configs([ConfigResource(ConfigResourceType.TOPIC, topic, configs={
            "message.timestamp.type": "LogAppendTime"})])
    finally:
        admin.close()


def _probe_stamps(kafka: KafkaSettings, topic: str) -> dict[str, tuple[float, str, int]]:
    """Per probe agency: its first record's timestamp (s), topic:partition and offset."""
    consumer = KafkaConsumer(bootstrap_servers=kafka.bootstrap_servers,
                             enable_auto_commit=False, consumer_timeout_ms=3000,
                             **kafka.client_options())
    try:
        parts = [TopicPartition(topic, p) for p in sorted(consumer.partitions_for_topic(topic)
                                                          or ())]
        consumer.assign(parts)
        consumer.seek_to_beginning(*parts)
        ends = consumer.end_offsets(parts)
        out: dict[str, tuple[float, str, int]] = {}
        for m in consumer:
            key = m.key or b""
            if b"|probe-" in key or b"probe-" in key:
                agency = next((p for p in key.decode().split("|") if p.startswith("probe-")),
                              None)
                if agency is not None and agency not in out:
                    out[agency] = (m.timestamp / 1000, f"{m.topic}:{m.partition}", m.offset)
            if all(consumer.position(tp) >= ends[tp] for tp in parts):
                break
        return out
    finally:
        consumer.close()


def _timing_lines(log: Path, msg: str) -> list[dict[str, Any]]:
    out = []
    for line in log.read_text(errors="replace").splitlines():
        if line.startswith("{") and f'"msg": "{msg}"' in line:
            out.append(json.loads(line))
    return out


def _quantiles(values: list[float]) -> dict[str, float | int | None]:
    if not values:
        return {"n": 0, "p50_s": None, "p99_s": None, "max_s": None}
    values = sorted(values)
    q = statistics.quantiles(values, n=100) if len(values) >= 2 else [values[0]] * 99
    return {"n": len(values), "p50_s": round(q[49], 3), "p99_s": round(q[98], 3),
            "max_s": round(values[-1], 3)}


def _stages(committed: dict[str, datetime], as_of: dict[str, datetime],
            province: dict[str, tuple[float, str, int]],
            national: dict[str, tuple[float, str, int]],
            rounds: list[dict[str, Any]], batches: list[dict[str, Any]],
            stored_at: dict[str, datetime]) -> dict[str, Any]:
    """Seconds from each probe's commit to each stage, as quantiles per stage."""
    by_as_of = {r["as_of"]: r for r in rounds}
    spans: dict[str, list[tuple[int, int, dict[str, Any]]]] = {}
    for b in batches:
        for tp, (first, last) in b["offsets"].items():
            spans.setdefault(tp, []).append((first, last, b))
    stages: dict[str, list[float]] = {s: [] for s in (
        "read", "acked", "claim_committed", "appended", "mirrored", "fetched", "stored",
        "row_stored_at")}
    for probe, at in committed.items():
        c = at.timestamp()
        if probe in as_of:
            stages["read"].append(as_of[probe].timestamp() - c)
            r = by_as_of.get(as_of[probe].isoformat())
            if r is not None:
                stages["acked"].append(r["t_acked"] - c)
                stages["claim_committed"].append(r["t_committed"] - c)
        if probe in province:
            stages["appended"].append(province[probe][0] - c)
        if probe in national:
            ts, tp, offset = national[probe]
            stages["mirrored"].append(ts - c)
            batch = next((b for first, last, b in spans.get(tp, ())
                          if first <= offset <= last), None)
            if batch is not None:
                stages["fetched"].append(batch["t_fetched"] - c)
                stages["stored"].append(batch["t_stored"] - c)
        if probe in stored_at:
            stages["row_stored_at"].append(stored_at[probe].timestamp() - c)
    return {name: _quantiles(v) for name, v in stages.items()}


def _round_spans(rounds: list[dict[str, Any]]) -> dict[str, Any]:
    """Where a publishing round spends its time: claiming and reading in the database,
    sending until every acknowledgement, committing the claim."""
    return {name: _quantiles([r[b] - r[a] for r in rounds]) for name, a, b in (
        ("claim_and_read", "t_start", "t_read"), ("send_until_acked", "t_read", "t_acked"),
        ("commit", "t_acked", "t_committed"))}


def _batches(batch: int, n: int, rng: random.Random, t0: datetime,
             service_share: float = 1.0) -> list[list[Record]]:
    """Every transaction's records, built before the clock starts (so the rate is the
    sink's and the database's, not this loop's)."""
    return [[*_events(batch - 1, i * batch, rng, t0, service_share), _probe(i, t0)]
            for i in range(n)]


class _Writer(threading.Thread):
    """One sink connection committing its share of the batches at its share of the rate
    (psycopg releases the GIL while the server works, so writers overlap there)."""

    def __init__(self, conninfo: str, statements: list[list[Record]], start: float,
                 interval: float, seconds: float, first: int, step: int) -> None:
        super().__init__(daemon=True)
        self._conninfo = conninfo
        self._statements = statements
        self._start = start + interval * first / step
        self._interval = interval
        self._seconds = seconds
        self._first = first
        self._step = step
        self.probes: dict[str, datetime] = {}
        self.sent = 0
        self.executing = 0.0
        self.backend_cpu = 0.0
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            asyncio.run(self._write())
        except BaseException as exc:  # reported by the main thread
            self.error = exc

    async def _write(self) -> None:
        sink = TimescaleSink()
        async with await psycopg.AsyncConnection.connect(self._conninfo) as conn:
            await TimescaleSink.prepare(conn)
            pid_row = await (await conn.execute("SELECT pg_backend_pid()")).fetchone()
            backend = int(pid_row[0]) if pid_row else 0
            await conn.commit()  # else every batch below is a savepoint of this transaction
            for n, records in enumerate(self._statements):
                if time.monotonic() - self._start >= self._seconds:
                    return
                t, cpu = time.monotonic(), _backend_cpu_s(backend)
                committed = await _commit(conn, sink, records)
                self.executing += time.monotonic() - t
                self.backend_cpu += _backend_cpu_s(backend) - cpu
                self.probes[f"probe-{self._first + n * self._step}"] = committed
                self.sent += len(records)
                await asyncio.sleep(max(0.0, self._start + (n + 1) * self._interval
                                        - time.monotonic()))


def run(rate: int = 5000, seconds: int = 60, batch: int = 500,
        writers_n: int = 2, port_base: int = 25000,
        service_share: float = 1.0) -> dict[str, Any]:
    """``port_base``: the nation's broker listens at ``port_base + 1000`` (+92, +94),
    clear of the integration suite's federations (27000-29000), which may be running.
    ``service_share``: the share of the rate that is dossier events; the rest are sensor
    readings, which a province stores and federation never publishes."""
    from iocdev.federation.running import federation

    settings = get_dev_settings()
    rng = random.Random(7)
    t0 = datetime(2026, 11, 1, tzinfo=UTC)
    statements = _batches(batch, -(-rate * seconds // batch), rng, t0, service_share)
    with tempfile.TemporaryDirectory() as tmp, \
            federation(settings, ["01"], Path(tmp), publish_every_s=2.0,
                       port_base=port_base, log_level="debug") as fed:
        province = fed.provinces["01"]
        national_topic = f"{mirror.alias_of('01')}.{fed.topic}"
        ingest = fed.processes[-1]
        publisher = province.publisher
        assert publisher is not None
        probes: dict[str, datetime] = {}
        sent = 0
        writers_n = max(1, writers_n)
        _log_append_time(province.kafka, fed.topic)
        _warm_up(province.conninfo, fed.nation_conninfo, t0)
        _log_append_time(fed.nation_kafka, national_topic)
        time.sleep(2.0)  # the brokers apply the topic configuration
        load0 = os.getloadavg()
        mm2 = province.mirror.process if province.mirror else None
        pids = {"ingest": ingest.pid, "publisher": publisher.pid,
                **({"mirrormaker": mm2.pid} if mm2 else {})}
        cpu0 = {k: _cpu_s(p) for k, p in pids.items()}
        gen0 = time.process_time()
        start = time.monotonic()
        writers = [_Writer(province.conninfo, statements[w::writers_n], start,
                           writers_n * batch / rate, seconds, w, writers_n)
                   for w in range(writers_n)]
        for w in writers:
            w.start()
        for w in writers:
            w.join()
        elapsed = time.monotonic() - start
        gen_cpu = time.process_time() - gen0
        for w in writers:
            if w.error is not None:
                raise w.error
            probes.update(w.probes)
            sent += w.sent
        executing = sum(w.executing for w in writers)
        deadline = time.monotonic() + 180
        got: dict[str, tuple[datetime, datetime]] = {}
        with psycopg.connect(fed.nation_conninfo) as nat:
            while time.monotonic() < deadline:
                got = {a: (s, o) for a, s, o in nat.execute(
                    "SELECT agency, stored_at, as_of FROM fed_kpi_counts "
                    "WHERE agency LIKE 'probe-%'").fetchall()}
                if len(got) >= len(probes):
                    break
                time.sleep(0.5)
            cpu = {k: _cpu_s(p) - cpu0[k] for k, p in pids.items()}
            stats = nat.execute("SELECT count(*), pg_total_relation_size('fed_kpi_counts') "
                                "FROM fed_kpi_counts").fetchone()
            total = nat.execute("SELECT coalesce(sum(records), 0) FROM fed_origins").fetchone()
        stages = _stages(
            probes, {a: v[1] for a, v in got.items()},
            _probe_stamps(province.kafka, fed.topic),
            _probe_stamps(fed.nation_kafka, national_topic),
            _timing_lines(Path(tmp) / "publish-01.log", "federation round"),
            _timing_lines(Path(tmp) / "ingest.log", "federation batch"),
            {a: v[0] for a, v in got.items()})
        rounds = _timing_lines(Path(tmp) / "publish-01.log", "federation round")
        snapshots = _timing_lines(Path(tmp) / "publish-01.log", "federation snapshots")
    lat = sorted((got[k][0] - probes[k]).total_seconds() for k in probes if k in got)
    rows_n, size = stats if stats else (0, 0)
    records = int(total[0]) if total else 0
    q = statistics.quantiles(lat, n=100) if len(lat) >= 2 else [float("nan")] * 99
    published = sum(r["keys"] for r in rounds)
    return {"rate_offered": rate, "service_share": service_share, "events": sent,
            "events_per_s": round(sent / elapsed),
            "generator": {"statements": len(probes), "writers": writers_n,
                          "executing_s": round(executing, 2),
                          "backend_cpu_s": round(sum(w.backend_cpu for w in writers), 2),
                          "python_cpu_s": round(gen_cpu, 2), "elapsed_s": round(elapsed, 2)},
            "probes": len(probes), "probes_arrived": len(lat),
            "latency_p50_s": round(q[49], 3), "latency_p99_s": round(q[98], 3),
            "latency_max_s": round(lat[-1], 3) if lat else None,
            "stages_since_commit": stages,
            "publisher": {"rounds": len(rounds), "records": published,
                          "keys_per_round_max": max((r["keys"] for r in rounds), default=0),
                          "cpu_s_per_1000_records": round(1000 * cpu["publisher"] / published,
                                                          4) if published else None},
            "national_rows": rows_n, "bytes_per_row": round(size / rows_n) if rows_n else None,
            "records_received": int(records or 0),
            "ingest_cpu_s_per_1000_records":
                round(1000 * cpu["ingest"] / records, 4) if records else None,
            "mirrormaker_cpu_s_per_1000_records":
                round(1000 * cpu["mirrormaker"] / records, 4)
                if records and "mirrormaker" in cpu else None,
            "publisher_rounds_s": _round_spans(rounds),
            "publisher_snapshots_s": _quantiles([s["t_acked"] - s["t_start"]
                                                 for s in snapshots]),
            "publisher_between_rounds_s": _quantiles(
                [b["t_start"] - a["t_committed"] for a, b in itertools.pairwise(rounds)]),
            "loadavg_start": load0, "loadavg_end": os.getloadavg()}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    ap.add_argument("--rate", type=int, default=5000)
    ap.add_argument("--seconds", type=int, default=60)
    ap.add_argument("--batch", type=int, default=500)
    ap.add_argument("--writers", type=int, default=2,
                    help="connections committing statements in parallel")
    ap.add_argument("--port-base", type=int, default=25000)
    ap.add_argument("--service-share", type=float, default=1.0,
                    help="share of dossier events in the rate (the rest: sensor readings)")
    args = ap.parse_args()
    print(json.dumps(run(args.rate, args.seconds, args.batch, args.writers, args.port_base,
                         args.service_share), indent=2, default=str))


if __name__ == "__main__":
    main()
