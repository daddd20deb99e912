"""Every refusal of docs/security.md, on the real broker and database.

Kafka: SCRAM-SHA-512 with the StandardAuthorizer (the local stack). PostgreSQL: the
roles the stack creates (owner ``ioc``, application ``ioc_app``, Grafana ``ioc_grafana``).
Each test provisions its own department principals and topics and removes them after.
"""

from __future__ import annotations

import asyncio
import json
import threading
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
import pytest
from aiokafka import TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from iocdev.sandbox import Pipeline, envelope, fresh_database, pipeline
from iocdev.stack.postgres import GRAFANA_USER
from kafka import KafkaConsumer, KafkaProducer
from kafka.admin import KafkaAdminClient
from kafka.errors import (
    GroupAuthorizationFailedError,
    KafkaError,
    TopicAuthorizationFailedError,
)
from pydantic import SecretStr

from ioccore import principals
from ioccore.settings import KafkaSettings, Settings
from ioccore.topics import delete_topics, ensure_topics

pytestmark = pytest.mark.integration


@dataclass
class Department:
    code: str
    principal: str
    password: str
    topics: list[str]


def as_principal(kafka: KafkaSettings, user: str, password: str) -> KafkaSettings:
    return kafka.model_copy(update={"sasl_username": user,
                                    "sasl_password": SecretStr(password)})


@pytest.fixture
def department(stack: Settings) -> Iterator[Callable[..., Department]]:
    """Factory: a department principal with its own feed topics (removed afterwards)."""
    made: list[tuple[KafkaSettings, Department]] = []

    def make(feeds: tuple[str, ...] = ("sensor",), kafka: KafkaSettings | None = None
             ) -> Department:
        k = kafka or stack.kafka
        code = f"t{uuid.uuid4().hex[:8]}"
        p = principals.create_department(k, code, list(feeds))
        dept = Department(code, p.principal, p.password, p.topics)
        made.append((k, dept))
        return dept

    yield make
    for k, dept in made:
        principals.revoke(k, dept.principal)
        delete_topics(k, dept.topics)


def producer(kafka: KafkaSettings, **extra: Any) -> KafkaProducer:
    # bootstrap_timeout_ms: refused credentials must fail the constructor, not retry forever
    return KafkaProducer(bootstrap_servers=kafka.bootstrap_servers, acks="all",
                         enable_idempotence=True, max_block_ms=10_000,
                         request_timeout_ms=10_000, bootstrap_timeout_ms=10_000,
                         **kafka.client_options(), **extra)


# ------------------------------------------------------------------ the broker
def test_anonymous_client_is_refused(stack: Settings) -> None:
    """PLAINTEXT (no SASL) on the SASL listener: the broker talks to nobody anonymous."""
    with pytest.raises(KafkaError):
        admin = KafkaAdminClient(bootstrap_servers=stack.kafka.bootstrap_servers,
                                 security_protocol="PLAINTEXT", request_timeout_ms=5_000,
                                 api_version_auto_timeout_ms=5_000)
        try:
            admin.list_topics()
        finally:
            admin.close()


def test_wrong_password_is_refused(stack: Settings) -> None:
    bad = as_principal(stack.kafka, stack.kafka.principals.worker, "not-the-password")
    with pytest.raises(KafkaError):
        admin = KafkaAdminClient(bootstrap_servers=bad.bootstrap_servers,
                                 request_timeout_ms=5_000, **bad.client_options())
        try:
            admin.list_topics()
        finally:
            admin.close()


def test_department_writes_its_own_topic_idempotently(
        stack: Settings, department: Callable[..., Department]) -> None:
    env = department()
    p = producer(as_principal(stack.kafka, env.principal, env.password))
    try:
        meta = p.send(env.topics[0], key=b"s1", value=b"[]").get(timeout=15)
    finally:
        p.close()
    assert meta.topic == env.topics[0]


def _can_write(kafka: KafkaSettings, topic: str) -> bool:
    """Whether a produce with these credentials succeeds. kafka-python's bootstrap was
    seen to retry refused credentials past its own timeout (once in seven runs), so the
    attempt runs in a daemon thread: no answer within 60 s counts as refused."""
    answer: list[bool] = []
    attempt = threading.Thread(target=lambda: answer.append(_try_write(kafka, topic)),
                               daemon=True)
    attempt.start()
    attempt.join(60)
    return bool(answer and answer[0])


def _try_write(kafka: KafkaSettings, topic: str) -> bool:
    try:
        p = producer(kafka)
    except KafkaError:
        return False
    try:
        p.send(topic, key=b"s1", value=b"[]").get(timeout=15)
        return True
    except KafkaError:
        return False
    finally:
        p.close()


def test_rotate_then_revoke_a_department(stack: Settings,
                                         department: Callable[..., Department]) -> None:
    env = department()
    old = as_principal(stack.kafka, env.principal, env.password)
    new = as_principal(stack.kafka, env.principal, principals.rotate(stack.kafka,
                                                                     env.principal))
    assert not _can_write(old, env.topics[0])
    assert _can_write(new, env.topics[0])
    had, acls = principals.revoke(stack.kafka, env.principal)
    assert had and acls == 3  # write, describe on its one topic; idempotent write
    assert not _can_write(new, env.topics[0])
    # locked out by an unknown secret, not deleted: a removal record in the metadata log
    # can cost a restarted Kafka 3.9.1 broker every credential (principals.lock_out)
    assert principals.list_principals(stack.kafka)[env.principal] == []


def test_department_writing_another_departments_topic_is_refused(
        stack: Settings, department: Callable[..., Department]) -> None:
    env, transport = department(), department()
    p = producer(as_principal(stack.kafka, env.principal, env.password))
    try:
        with pytest.raises(TopicAuthorizationFailedError):
            p.send(transport.topics[0], key=b"s1", value=b"[]").get(timeout=15)
    finally:
        p.close()


def test_department_writing_enriched_topic_is_refused(
        stack: Settings, department: Callable[..., Department]) -> None:
    ensure_topics(stack.kafka, [stack.kafka.topics.enriched, stack.kafka.topics.sensor])
    env = department()
    for target in (stack.kafka.topics.enriched.name, stack.kafka.topics.sensor.name):
        p = producer(as_principal(stack.kafka, env.principal, env.password))
        try:
            with pytest.raises(TopicAuthorizationFailedError):
                p.send(target, key=b"00004", value=b"[]").get(timeout=15)
        finally:
            p.close()


def test_department_joining_the_worker_group_is_refused(
        stack: Settings, department: Callable[..., Department]) -> None:
    env = department()
    kafka = as_principal(stack.kafka, env.principal, env.password)
    consumer = KafkaConsumer(env.topics[0], bootstrap_servers=kafka.bootstrap_servers,
                             group_id=stack.stream.app_id, request_timeout_ms=15_000,
                             **kafka.client_options())
    try:
        with pytest.raises(GroupAuthorizationFailedError):
            consumer.poll(timeout_ms=10_000)
    finally:
        consumer.close()


def test_operator_sees_alerts_but_not_raw_topics(stack: Settings) -> None:
    """Topics a principal may not describe are invisible to it (and so unreadable)."""
    ensure_topics(stack.kafka, [stack.kafka.topics.alerts, stack.kafka.topics.sensor])
    op = stack.kafka.model_copy(update={"sasl_username": stack.kafka.principals.operator})
    consumer = KafkaConsumer(bootstrap_servers=op.bootstrap_servers, group_id=None,
                             **op.client_options())
    try:
        visible = consumer.topics()
    finally:
        consumer.close()
    assert op.topics.alerts.name in visible
    assert not visible & {op.topics.sensor.name, op.topics.enriched.name,
                          op.topics.deadletter.name}


# ------------------------------------------------------------------ stage 1 ownership
@dataclass
class OwnershipRun:
    stored: set[str]
    dead: dict[str, str]
    """event_id -> ioc-reason of each dead letter."""
    publisher: dict[str, str]
    """event_id -> ioc-department (the publishing department) of each dead letter."""
    department: str
    """The department whose topic carried the refused events."""


def _dead_letters(pipe: Pipeline, expected: int
                  ) -> tuple[dict[str, str], dict[str, str]]:
    k = pipe.settings.kafka
    consumer = KafkaConsumer(pipe.topics["deadletter"], bootstrap_servers=k.bootstrap_servers,
                             auto_offset_reset="earliest", consumer_timeout_ms=30_000,
                             group_id=f"dlq-{uuid.uuid4().hex[:8]}", **k.client_options())
    out: dict[str, str] = {}
    publisher: dict[str, str] = {}
    try:
        for msg in consumer:
            headers = dict(msg.headers)
            event_id = json.loads(msg.value)["event_id"]
            out[event_id] = headers["ioc-reason"].decode()
            publisher[event_id] = headers["ioc-department"].decode()
            if len(out) >= expected:
                break
    finally:
        consumer.close()
    return out, publisher


@pytest.fixture(scope="module")
def ownership_run(stack: Settings, tmp_path_factory: pytest.TempPathFactory
                  ) -> Iterator[OwnershipRun]:
    """A real worker, as a least-privileged worker principal, reading a department's own
    topic: a registered source, a spoofed department, an unregistered source (quota 0),
    another department's source, whose predictable next event id it sends first (issue
    24, item 3: the owner's genuine event must still be stored), and a source bound to
    commune 00004 reporting for 00004 and for 00008 (issue 24, finding 5)."""
    tag = uuid.uuid4().hex[:8]
    kafka = stack.kafka.model_copy(
        update={"department_topic_pattern": f"t{tag}.dept.{{department}}.{{feed}}.v1"})
    code = f"d{tag}"
    made = principals.create_department(kafka, code, ["sensor"])
    cleanup = [made.principal]
    at = datetime.now(UTC) - timedelta(minutes=1)

    def ev(event_id: str, source: str, dept: str = code, commune: str = "00004"
           ) -> dict[str, Any]:
        return envelope("sensor", event_id, source, at,
                        {"metric": "pm25", "value": 12.0, "unit": "ug/m3"},
                        commune_code=commune, department=dept)

    try:
        with pipeline(stack, Path(tmp_path_factory.mktemp("own"))) as pipe:
            pipe.query("INSERT INTO departments (code, name, feeds, source_quota) "
                       "VALUES (%s, %s, %s, 0), ('other', 'Other', %s, 5) RETURNING code",
                       (code, code, ["sensor"], ["sensor"]))
            pipe.query("INSERT INTO sources (source_id, department, feed, registration) "
                       "VALUES ('own-1', %s, 'sensor', 'explicit'), "
                       "('own-area', %s, 'sensor', 'explicit'), "
                       "('other-1', 'other', 'sensor', 'explicit') RETURNING source_id",
                       (code, code))
            pipe.query("UPDATE sources SET area = ARRAY['00004'] WHERE source_id = "
                       "'own-area' RETURNING source_id")
            events = [ev("ok-1", "own-1"), ev("spoof-1", "own-1", dept="other"),
                      ev("unreg-1", "never-registered"), ev("steal-1", "other-1"),
                      ev("other-1-0800", "other-1"),
                      ev("near-1", "own-area"), ev("far-1", "own-area", commune="00008")]
            p = producer(as_principal(kafka, made.principal, made.password))
            try:
                for e in events:
                    p.send(made.topics[0], key=e["source_id"].encode(),
                           value=json.dumps([e]).encode()).get(timeout=15)
            finally:
                p.close()
            # The worker runs as a principal with exactly the worker's grants (over
            # this test's topics and group): least privilege is enough for it.
            worker = f"w-{tag}"
            password = principals.create_principal(kafka, worker, principals.worker_grants(
                kafka, group=pipe.app_id, topics=pipe.topics,
                department_topics_prefix=f"t{tag}.dept."))
            cleanup.append(worker)
            pipe.start_worker(extra_env={
                "IOC__KAFKA__DEPARTMENT_TOPIC_PATTERN": kafka.department_topic_pattern,
                "IOC__KAFKA__SASL_USERNAME": worker, "IOC__KAFKA__SASL_PASSWORD": password})
            pipe.wait_for("SELECT count(*) FROM sensor_readings", 2, timeout=120)
            dead, publisher = _dead_letters(pipe, 5)
            # the owner's genuine reading, with the id the other department sent first,
            # through the shared topic (as the gateway writes it)
            real = ev("other-1-0800", "other-1", dept="other")
            pipe.produce("sensor", [(b"other-1", json.dumps([real]).encode())])
            pipe.wait_for("SELECT count(*) FROM sensor_readings", 3, timeout=120)
            stored = {str(r[0]) for r in pipe.query("SELECT event_id FROM sensor_readings")}
            owner = pipe.query("SELECT department FROM sources WHERE source_id = "
                               "'never-registered'")
            assert owner == []  # quota 0: the refusal registered nothing
            yield OwnershipRun(stored, dead, publisher, code)
    finally:
        for user in cleanup:
            principals.revoke(kafka, user)
        delete_topics(kafka, made.topics)


def test_registered_source_on_own_topic_is_stored(ownership_run: OwnershipRun) -> None:
    assert ownership_run.stored == {"ok-1", "near-1", "other-1-0800"}


def test_a_reading_outside_the_sources_area_is_dead_lettered(
        ownership_run: OwnershipRun) -> None:
    assert ownership_run.dead["far-1"] == "out_of_area"
    assert "near-1" not in ownership_run.dead


def test_a_refused_event_cannot_suppress_the_owners_event(ownership_run: OwnershipRun
                                                          ) -> None:
    """Issue 24, item 3: the forged copy was refused and left no trace in the duplicate
    memory, so the owner's genuine event with the same id is stored (checked above), not
    dead-lettered as a duplicate."""
    assert ownership_run.dead["other-1-0800"] == "forbidden_source"
    assert "other-1-0800" in ownership_run.stored


def test_dead_letters_name_the_department_that_published_them(
        ownership_run: OwnershipRun) -> None:
    """Issue 24, item 8: attributed to the topic's department, not by the Kafka key
    (``steal-1`` is keyed by the other department's source id)."""
    assert set(ownership_run.publisher.values()) == {ownership_run.department}


def test_spoofed_department_in_the_envelope_is_dead_lettered(
        ownership_run: OwnershipRun) -> None:
    assert ownership_run.dead["spoof-1"] == "forbidden_department"


def test_unregistered_source_is_dead_lettered(ownership_run: OwnershipRun) -> None:
    assert ownership_run.dead["unreg-1"] == "unregistered_source"


def test_another_departments_source_is_dead_lettered(ownership_run: OwnershipRun) -> None:
    assert ownership_run.dead["steal-1"] == "forbidden_source"


# ------------------------------------------------------------------ registry quota
def test_auto_registration_stops_at_the_quota(stack: Settings) -> None:
    import asyncio

    from ioccore.source_registry import authorise

    with fresh_database(stack, "ioc_sec") as (_, conninfo):
        with psycopg.connect(conninfo, autocommit=True) as conn:
            conn.execute("INSERT INTO departments (code, name, feeds, source_quota) "
                         "VALUES ('env', 'Env', %s, 2)", (["sensor"],))

        async def claim(sources: list[str]) -> dict[str, str]:
            async with await psycopg.AsyncConnection.connect(conninfo) as conn:
                refused = await authorise(conn, "env", {s: "sensor" for s in sources},
                                          actor="test")
            return {s: str(r.reason) for s, r in refused.items()}

        async def both() -> list[dict[str, str]]:
            return list(await asyncio.gather(claim(["a", "b"]), claim(["c", "d"])))

        results = asyncio.run(both())
        with psycopg.connect(conninfo) as conn:
            auto = conn.execute("SELECT count(*) FROM sources WHERE department = 'env' "
                                "AND registration = 'auto'").fetchone()
    assert auto == (2,)  # two concurrent first uses of four sources: exactly the quota
    refused = {s for r in results for s in r}
    assert len(refused) == 2
    assert all(reason == "unregistered_source" for r in results for reason in r.values())


# ------------------------------------------------------------------ the database
@pytest.fixture(scope="module")
def migrated(stack: Settings) -> Iterator[str]:
    with fresh_database(stack, "ioc_sec") as (name, _):
        yield name


def test_grafana_role_cannot_write(stack: Settings, migrated: str) -> None:
    grafana = stack.database.model_copy(update={"user": GRAFANA_USER}).conninfo(migrated)
    with psycopg.connect(grafana) as conn:
        assert conn.execute("SELECT count(*) FROM rollup_1m").fetchone() == (0,)
    with psycopg.connect(grafana) as conn, pytest.raises(psycopg.errors.InsufficientPrivilege):
        conn.execute("INSERT INTO kpi_targets VALUES ('x', 1, 'written by grafana')")
    with psycopg.connect(grafana) as conn, pytest.raises(psycopg.errors.InsufficientPrivilege):
        conn.execute("SELECT key_hash FROM api_keys")
    with psycopg.connect(grafana) as conn, pytest.raises(psycopg.errors.InsufficientPrivilege):
        conn.execute("CREATE TABLE grafana_was_here (x int)")


def test_application_role_cannot_copy_to_program(stack: Settings, migrated: str) -> None:
    app = stack.database.conninfo(migrated)
    with psycopg.connect(app) as conn:
        row = conn.execute("SELECT rolsuper FROM pg_roles WHERE rolname = current_user"
                           ).fetchone()
        assert row == (False,)
    with psycopg.connect(app) as conn, pytest.raises(psycopg.errors.InsufficientPrivilege):
        conn.execute("COPY (SELECT 1) TO PROGRAM 'id'")
    with psycopg.connect(app) as conn, pytest.raises(psycopg.errors.InsufficientPrivilege):
        conn.execute("CREATE TABLE app_was_here (x int)")
    with psycopg.connect(app) as conn, pytest.raises(psycopg.errors.InsufficientPrivilege):
        conn.execute("DELETE FROM schema_migrations")


def test_gateway_describes_the_worker_groups_but_cannot_join_them(stack: Settings) -> None:
    """The gateway's admission control reads the groups' offsets (DESCRIBE); joining a
    group (READ) stays refused, so a stolen gateway credential cannot move offsets."""
    tag = uuid.uuid4().hex[:8]
    app_id = f"t{tag}"
    user = f"gw-{tag}"
    password = principals.create_principal(
        stack.kafka, user, principals.gateway_grants(stack.kafka, group=app_id))
    kafka = as_principal(stack.kafka, user, password)
    try:
        async def offsets() -> None:  # the client admission control uses
            admin = AIOKafkaAdminClient(bootstrap_servers=kafka.bootstrap_servers,
                                        **kafka.client_options())
            await admin.start()
            try:
                tp = TopicPartition(stack.kafka.topics.sensor.name, 0)
                for group in (app_id, f"{app_id}-stage1"):  # DESCRIBE: allowed
                    await admin.list_consumer_group_offsets(group, partitions=[tp])
            finally:
                await admin.close()

        asyncio.run(offsets())
        consumer = KafkaConsumer(stack.kafka.topics.sensor.name,
                                 bootstrap_servers=kafka.bootstrap_servers,
                                 group_id=f"{app_id}-stage1", request_timeout_ms=15_000,
                                 **kafka.client_options())
        try:
            with pytest.raises(GroupAuthorizationFailedError):
                consumer.poll(timeout_ms=10_000)
        finally:
            consumer.close()
    finally:
        principals.revoke(stack.kafka, user)
