"""A federation on one machine: provinces' brokers, the nation's broker, MirrorMaker.

Each cluster is a Kafka of the local stack's kind (:class:`iocdev.stack.kafka.Kafka`)
with its own home under ``<stack>/federation/<name>`` and its own ports; a province may
also be the shared stack's own broker. Principals, per cluster, with their passwords in
that cluster's secrets folder (where the settings find them):

- province: ``ioc-federation`` writes the federation topic (the publisher), and
  ``ioc-mirror`` reads it (MirrorMaker's source side);
- nation: ``mirror-<alias>`` writes only ``<alias>.`` topics and its Connect group's
  (MirrorMaker's target side), ``ioc-national`` reads the replicated topics.

PostgreSQL is shared: each province and the nation get a database of their own.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

from kafka.admin import ACLOperation, NewTopic, ResourceType
from kafka.errors import TopicAlreadyExistsError

from ioccore.principals import CLUSTER, Grant, create_principal
from ioccore.settings import KafkaSettings
from ioccore.topics import admin_client
from iocdev import supervise
from iocdev.federation import mirror
from iocdev.settings import DevSettings
from iocdev.stack import kafka as stack_kafka
from iocdev.stack import manager
from iocdev.stack.secrets import password_file

PUBLISHER = "ioc-federation"
MIRROR_SOURCE = "ioc-mirror"
NATIONAL = "ioc-national"
Echo = Callable[[str], None]


def cluster_settings(base: DevSettings, name: str, port_base: int) -> DevSettings:
    """``base`` with its Kafka moved to ``<stack>/federation/<name>-<port_base>`` (a
    KRaft broker's stored metadata names its ports: one home per set of ports)."""
    home = base.stack.root / "federation" / f"{name}-{port_base}"
    return base.model_copy(update={
        "stack": base.stack.model_copy(update={"home": home}),
        "kafka": stack_kafka.relocated(base.kafka, base.stack.host, port_base, home)
        .model_copy(update={"sasl_username": None, "sasl_password": None}),
    })


def as_user(kafka: KafkaSettings, user: str) -> KafkaSettings:
    return kafka.model_copy(update={"sasl_username": user, "sasl_password": None})


def _seed_jars(target: DevSettings, source: DevSettings) -> None:
    """The base stack's Kafka jars and Maven cache, so a cluster does not fetch them."""
    if not stack_kafka.seed_libs(target.stack.root, source.stack.root):
        return
    m2 = target.stack.root / "m2"
    if not m2.exists() and (source.stack.root / "m2").exists():
        m2.symlink_to(source.stack.root / "m2")


def up_cluster(cluster: DevSettings, base: DevSettings, echo: Echo = print) -> None:
    """Start the cluster's broker (idempotent), jars copied from the base stack."""
    _seed_jars(cluster, base)
    manager.up(cluster, ["kafka"], echo=echo)


def down_cluster(cluster: DevSettings, echo: Echo = print) -> None:
    manager.down(cluster, ["kafka"], echo=echo)


def password(kafka: KafkaSettings, user: str) -> str:
    """The user's password in the cluster's secrets folder (generated once)."""
    assert kafka.secrets_dir is not None
    return password_file(kafka.secrets_dir, user)


def ensure_topic(kafka: KafkaSettings, topic: str, partitions: int = 3) -> None:
    """The federation topic: compacted (the latest record per key is what matters)."""
    admin = admin_client(kafka)
    try:
        if topic not in set(admin.list_topics()):
            with contextlib.suppress(TopicAlreadyExistsError):
                admin.create_topics([NewTopic(topic, partitions, 1, topic_configs={
                    "cleanup.policy": "compact", "min.compaction.lag.ms": "3600000"})])
    finally:
        admin.close()


def provision_province(kafka: KafkaSettings, topic: str) -> None:
    """Topic, publisher and MirrorMaker-source principals at a province."""
    ensure_topic(kafka, topic)
    writer = [Grant(ResourceType.TOPIC, topic, ACLOperation.WRITE),
              Grant(ResourceType.TOPIC, topic, ACLOperation.DESCRIBE),
              Grant(ResourceType.CLUSTER, CLUSTER, ACLOperation.IDEMPOTENT_WRITE)]
    create_principal(kafka, PUBLISHER, writer, password(kafka, PUBLISHER),
                     keep_other_acls=True)
    create_principal(kafka, MIRROR_SOURCE, mirror.source_grants(topic),
                     password(kafka, MIRROR_SOURCE), keep_other_acls=True)


def provision_nation(kafka: KafkaSettings, aliases: list[str], topic: str,
                     group: str) -> None:
    """MirrorMaker-target principals (one per province) and the national reader."""
    deadletter = kafka.topics.deadletter.name
    ensure_topic(kafka, deadletter, partitions=1)
    for alias in aliases:
        user = f"mirror-{alias}"
        create_principal(kafka, user, mirror.target_grants(alias), password(kafka, user))
    reader = [*(Grant(ResourceType.TOPIC, f"{a}.{topic}", op) for a in aliases
                for op in (ACLOperation.READ, ACLOperation.DESCRIBE)),
              Grant(ResourceType.GROUP, group, ACLOperation.READ),
              Grant(ResourceType.GROUP, group, ACLOperation.DESCRIBE),
              Grant(ResourceType.TOPIC, deadletter, ACLOperation.WRITE),
              Grant(ResourceType.TOPIC, deadletter, ACLOperation.DESCRIBE),
              Grant(ResourceType.CLUSTER, CLUSTER, ACLOperation.IDEMPOTENT_WRITE)]
    create_principal(kafka, NATIONAL, reader, password(kafka, NATIONAL), keep_other_acls=True)


@dataclass
class Mirror:
    """One running MirrorMaker (a province's flow to the nation)."""

    flow: mirror.Flow
    home: Path
    process: supervise.Process | None = None

    @property
    def log(self) -> Path:
        return self.home / "mirror.log"

    def start(self, libs: Path, log4j: Path) -> supervise.Process:
        props = self.home / "mm2.properties"
        mirror.write_properties(props, self.flow)
        self.process = supervise.spawn(
            f"mirror-{self.flow.alias}", mirror.argv(libs, props, log4j), log=self.log,
            cwd=self.home, pidfile=supervise.PidFile(self.home, "mirror"))
        return self.process

    def stop(self) -> None:
        if self.process is not None:
            self.process.stop()
            self.process = None


def mirror_for(base: DevSettings, alias: str, province: KafkaSettings, nation: KafkaSettings,
               topic: str, home: Path) -> Mirror:
    flow = mirror.Flow(
        alias=alias, topic=topic,
        source=province, source_user=MIRROR_SOURCE,
        source_password=password(province, MIRROR_SOURCE),
        target=nation, target_user=f"mirror-{alias}",
        target_password=password(nation, f"mirror-{alias}"))
    home.mkdir(parents=True, exist_ok=True)
    return Mirror(flow, home)


def process_env(kafka: KafkaSettings, user: str, extra: Mapping[str, str]) -> dict[str, str]:
    """Environment of an ``ioc`` process on this cluster as ``user``."""
    env = dict(os.environ)
    env.update({"IOC__KAFKA__BOOTSTRAP_SERVERS": kafka.bootstrap_servers,
                "IOC__KAFKA__SASL_USERNAME": user,
                "IOC__KAFKA__SECRETS_DIR": str(kafka.secrets_dir)})
    env.update(extra)
    return env


def wait_for(check: Callable[[], bool], timeout: float, what: str,
             every: float = 0.5) -> float:
    """Poll ``check`` until true; seconds waited. Raises TimeoutError naming ``what``."""
    t0 = time.monotonic()
    while not check():
        if time.monotonic() - t0 > timeout:
            raise TimeoutError(f"{what} not within {timeout:.0f} s")
        time.sleep(every)
    return time.monotonic() - t0
