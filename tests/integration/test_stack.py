"""The local services are real: Kafka (kafka-python and faust), TimescaleDB, PostGIS,
Alertmanager, Prometheus, and the stack command itself."""

from __future__ import annotations

import sys
import textwrap
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import psycopg
import pytest
from iocdev import supervise
from iocdev.settings import DevSettings
from psycopg import sql

from ioccore.settings import Settings, get_settings

pytestmark = pytest.mark.integration


def consume(bootstrap: str, topic: str, expected: int, timeout_s: float) -> list[object]:
    """Read ``expected`` messages of ``topic`` from the beginning (fresh group)."""
    from kafka import KafkaConsumer

    consumer = KafkaConsumer(topic, bootstrap_servers=bootstrap,
                             group_id=f"test-{uuid.uuid4().hex[:8]}",
                             auto_offset_reset="earliest", enable_auto_commit=False,
                             consumer_timeout_ms=1000, **get_settings().kafka.client_options())
    got: list[object] = []
    deadline = time.monotonic() + timeout_s
    try:
        while len(got) < expected and time.monotonic() < deadline:
            got.extend(consumer)  # stops after 1 s without a message
    finally:
        consumer.close()
    return got


def test_kafka_python_produce_consume(kafka_bootstrap: str,
                                      new_topic: Callable[..., str]) -> None:
    from kafka import KafkaProducer

    topic = new_topic(partitions=3)
    producer = KafkaProducer(bootstrap_servers=kafka_bootstrap, acks="all",
                             **get_settings().kafka.client_options())
    sent = {f"key-{i}".encode(): f"value-{i}".encode() for i in range(50)}
    for key, value in sent.items():
        producer.send(topic, key=key, value=value)
    producer.flush(timeout=30)
    producer.close()

    messages = consume(kafka_bootstrap, topic, len(sent), timeout_s=60)
    assert {m.key: m.value for m in messages} == sent  # type: ignore[attr-defined]
    assert {m.partition for m in messages} <= {0, 1, 2}  # type: ignore[attr-defined]


FAUST_APP = textwrap.dedent('''
    """A faust app that copies every value of one topic to another, prefixed."""
    import sys

    import faust

    from ioccore.settings import get_settings
    from streams.faust_options import faust_options

    app_id, bootstrap, source_name, sink_name = sys.argv[1:5]
    del sys.argv[1:5]
    app = faust.App(app_id, broker=f"kafka://{bootstrap}", store="memory://",
                    web_enabled=False, topic_disable_leader=True, topic_partitions=1,
                    consumer_auto_offset_reset="earliest",
                    **faust_options(get_settings().kafka))
    source = app.topic(source_name, value_serializer="raw")
    sink = app.topic(sink_name, value_serializer="raw")

    @app.agent(source)
    async def echo(stream):
        async for value in stream:
            await sink.send(value=b"faust:" + value)

    if __name__ == "__main__":
        app.main()
''')


@pytest.fixture
def faust_worker(tmp_path: Path, kafka_bootstrap: str,
                 new_topic: Callable[..., str]) -> Iterator[tuple[str, str, Path]]:
    """A faust worker subprocess echoing a new source topic into a new sink topic."""
    source, sink = new_topic(prefix="faust-in"), new_topic(prefix="faust-out")
    script = tmp_path / "echo_app.py"
    script.write_text(FAUST_APP)
    log = tmp_path / "faust.log"
    app_id = f"ioc-test-{uuid.uuid4().hex[:8]}"
    proc = supervise.spawn("faust-echo", [sys.executable, str(script), app_id, kafka_bootstrap,
                                          source, sink, "worker", "--without-web", "-l", "info"],
                           log=log, cwd=tmp_path)
    try:
        yield source, sink, log
    finally:
        proc.stop(timeout=30)


def test_faust_round_trip(kafka_bootstrap: str,
                          faust_worker: tuple[str, str, Path]) -> None:
    from kafka import KafkaProducer

    source, sink, log = faust_worker
    producer = KafkaProducer(bootstrap_servers=kafka_bootstrap,
                             **get_settings().kafka.client_options())
    values = [f"event-{i}".encode() for i in range(20)]
    for value in values:
        producer.send(source, value=value)
    producer.flush(timeout=30)
    producer.close()

    messages = consume(kafka_bootstrap, sink, len(values), timeout_s=120)
    got = sorted(m.value for m in messages)  # type: ignore[attr-defined]
    assert got == sorted(b"faust:" + v for v in values), log.read_text()[-4000:]


@pytest.fixture(scope="module")
def scratch_db(pg_conninfo: str) -> Iterator[str]:
    """A new database with timescaledb and postgis; dropped afterwards."""
    name = f"test_stack_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(pg_conninfo, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    conninfo = pg_conninfo.replace("dbname=postgres", f"dbname={name}")
    with psycopg.connect(conninfo, autocommit=True) as conn:
        conn.execute("CREATE EXTENSION IF NOT EXISTS timescaledb")
        conn.execute("CREATE EXTENSION IF NOT EXISTS postgis")
    try:
        yield conninfo
    finally:
        with psycopg.connect(pg_conninfo, autocommit=True) as conn:
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)")
                         .format(sql.Identifier(name)))


def test_hypertable_time_bucket(scratch_db: str) -> None:
    start = datetime(2025, 7, 1, tzinfo=UTC)
    rows = [(start + timedelta(minutes=10 * i), commune, float(i))
            for i in range(18) for commune in ("00001", "00004")]
    with psycopg.connect(scratch_db) as conn:
        conn.execute("CREATE TABLE readings (time timestamptz NOT NULL, commune text NOT NULL,"
                     " value double precision NOT NULL)")
        conn.execute("SELECT create_hypertable('readings', 'time', "
                     "chunk_time_interval => interval '1 hour')")
        with conn.cursor().copy("COPY readings (time, commune, value) FROM STDIN") as copy:
            for row in rows:
                copy.write_row(row)
        result = conn.execute(
            "SELECT time_bucket('1 hour', time) AS bucket, commune, count(*), sum(value) "
            "FROM readings GROUP BY bucket, commune ORDER BY bucket, commune").fetchall()
        chunks = conn.execute("SELECT count(*) FROM show_chunks('readings')").fetchone()
    assert [(r[0], r[1], r[2]) for r in result] == [
        (start + timedelta(hours=h), c, 6) for h in range(3) for c in ("00001", "00004")]
    assert [r[3] for r in result[::2]] == [15.0, 51.0, 87.0]
    assert chunks == (3,)


def test_postgis_st_contains(scratch_db: str) -> None:
    with psycopg.connect(scratch_db) as conn:
        inside, outside = conn.execute(
            "SELECT ST_Contains(box, ST_SetSRID(ST_MakePoint(105.85, 21.03), 4326)),"
            "       ST_Contains(box, ST_SetSRID(ST_MakePoint(106.70, 10.78), 4326))"
            "  FROM (SELECT ST_MakeEnvelope(105.7, 20.9, 106.0, 21.2, 4326) AS box) b"
        ).fetchone() or (None, None)
        version = conn.execute("SELECT postgis_lib_version()").fetchone()
    assert (inside, outside) == (True, False)
    assert version is not None


def test_timescaledb_license(pg_conninfo: str, settings: Settings,
                             record_property: Callable[[str, object], None]) -> None:
    with psycopg.connect(settings.database.conninfo()) as conn:
        license_row = conn.execute("SHOW timescaledb.license").fetchone()
        version = conn.execute("SELECT extversion FROM pg_extension "
                               "WHERE extname = 'timescaledb'").fetchone()
    assert license_row is not None and license_row[0] in ("apache", "timescale")
    assert version is not None
    record_property("stack.timescaledb", f"{version[0]} license={license_row[0]}")
    print(f"timescaledb {version[0]} license={license_row[0]}")


def test_alertmanager_accepts_and_lists_an_alert(stack: Settings) -> None:
    base = stack.alertmanager.url
    name = f"IocStackTest{uuid.uuid4().hex[:8]}"
    now = datetime.now(UTC)
    alert = {
        "labels": {"alertname": name, "severity": "info", "commune_code": "00001"},
        "annotations": {"summary": "stack integration test"},
        "startsAt": now.isoformat(),
        "endsAt": (now + timedelta(minutes=5)).isoformat(),
        "generatorURL": "http://127.0.0.1/ioc-tests",
    }
    response = httpx.post(f"{base}/api/v2/alerts", json=[alert], timeout=10)
    assert response.status_code == 200, response.text
    deadline = time.monotonic() + 15
    listed: list[dict[str, object]] = []
    while not listed and time.monotonic() < deadline:
        listed = httpx.get(f"{base}/api/v2/alerts", params={"filter": f'alertname="{name}"'},
                           timeout=10).json()
        time.sleep(0.2)
    assert len(listed) == 1
    assert listed[0]["labels"] == alert["labels"]


def test_prometheus_answers_a_query(stack: DevSettings) -> None:
    base = stack.prometheus.url
    body = httpx.get(f"{base}/api/v1/query", params={"query": "up"}, timeout=10).json()
    assert body["status"] == "success"
    assert body["data"]["resultType"] == "vector"
    # Prometheus scrapes itself: wait for that first sample (within one interval).
    deadline = time.monotonic() + 45
    result: list[dict[str, object]] = []
    while not result and time.monotonic() < deadline:
        result = httpx.get(f"{base}/api/v1/query", params={"query": 'up{job="prometheus"}'},
                           timeout=10).json()["data"]["result"]
        if not result:
            time.sleep(1)
    assert result and result[0]["value"][1] == "1"  # type: ignore[index]


def test_second_up_reuses_running_services(stack: DevSettings) -> None:
    from iocdev.stack import manager

    before = {row.name: row.pid for row in manager.status(stack)}
    start = time.monotonic()
    manager.up(stack)
    elapsed = time.monotonic() - start
    after = {row.name: (row.pid, row.answers) for row in manager.status(stack)}
    assert all(pid is not None for pid in before.values()), before
    assert after == {name: (pid, True) for name, pid in before.items()}
    assert elapsed < 30


def test_drop_database_forces_off_another_roles_session(stack: DevSettings) -> None:
    """The owner may not terminate the application role's backends (least privilege);
    ``drop_database`` still drops a database such a session holds, as a demo run must
    when the previous run's worker has just stopped."""
    from iocdev.sandbox import fresh_database
    from iocdev.stack.postgres import drop_database

    with fresh_database(stack, prefix="ioc_droptest") as (name, conninfo):
        held = psycopg.connect(conninfo, autocommit=True)  # the application role
        try:
            held.execute("SELECT 1")
            drop_database(stack.database, name)
            with psycopg.connect(stack.database.owner_conninfo(dbname="postgres")) as conn:
                left = conn.execute("SELECT count(*) FROM pg_database WHERE datname = %s",
                                    (name,)).fetchone()
            assert left == (0,)
            with pytest.raises(psycopg.OperationalError):
                held.execute("SELECT 1")
        finally:
            held.close()
