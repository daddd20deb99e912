"""Kafka MirrorMaker 2 (Apache Kafka's ``connect-mirror``), one process per province.

The jars come from Maven Central, the same Kafka version as the stack, into
``<stack>/mirror/libs`` (Maven's repository shared with Kafka's, ``<stack>/m2``). Each
process runs MirrorMaker's dedicated mode for one flow ``<alias> -> national``: only the
federation topic, no heartbeats, checkpoints, offset syncs, group offsets, ACL or
config sync, so at the province it needs nothing but READ/DESCRIBE on that topic, and at
the nation only its own ``<alias>.`` topics and its Connect group's internal topics
(:func:`source_grants`, :func:`target_grants`). Passwords go into the properties file
(mode 0600), never into argv.
"""

from __future__ import annotations

import os
import re
import subprocess
from dataclasses import dataclass
from pathlib import Path

from kafka.admin import ACLOperation, ResourceType

from ioccore.principals import CLUSTER, Grant
from ioccore.settings import KafkaSettings
from iocdev.errors import StackError
from iocdev.settings import DevSettings

POM = """<?xml version="1.0" encoding="UTF-8"?>
<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>local.ioc</groupId>
  <artifactId>mirror-runtime</artifactId>
  <version>1</version>
  <packaging>pom</packaging>
  <dependencies>
    <dependency><groupId>org.apache.kafka</groupId>
      <artifactId>connect-mirror</artifactId><version>{kafka}</version></dependency>
    <dependency><groupId>org.apache.kafka</groupId>
      <artifactId>connect-runtime</artifactId><version>{kafka}</version></dependency>
    <dependency><groupId>ch.qos.reload4j</groupId>
      <artifactId>reload4j</artifactId><version>1.2.25</version></dependency>
    <dependency><groupId>org.slf4j</groupId>
      <artifactId>slf4j-reload4j</artifactId><version>1.7.36</version></dependency>
  </dependencies>
</project>
"""
TARGET = "national"
ALIAS = re.compile(r"^p[0-9]{2}$")
"""Source aliases are ``p`` + the province code: they prefix the replicated topics."""
_ALL = (ACLOperation.READ, ACLOperation.WRITE, ACLOperation.CREATE, ACLOperation.DESCRIBE,
        ACLOperation.DESCRIBE_CONFIGS)


def alias_of(province_code: str) -> str:
    return f"p{province_code}"


def install(settings: DevSettings, log: Path) -> Path:
    """The MirrorMaker jars (resolved once); their folder."""
    root = settings.stack.root
    libs = root / "mirror" / "libs"
    marker = libs / f".complete-{settings.stack.kafka_version}"
    if marker.exists():
        return libs
    libs.mkdir(parents=True, exist_ok=True)
    pom = root / "mirror" / "pom.xml"
    pom.write_text(POM.format(kafka=settings.stack.kafka_version))
    argv = ["mvn", "-q", "-B", "-f", str(pom), f"-Dmaven.repo.local={root / 'm2'}",
            "dependency:copy-dependencies", f"-DoutputDirectory={libs}"]
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("ab") as out:
        code = subprocess.run(argv, stdout=out, stderr=subprocess.STDOUT,
                              stdin=subprocess.DEVNULL, check=False).returncode
    if code != 0 or not any(libs.glob("connect-mirror-*.jar")):
        raise StackError("mirror", f"resolving the MirrorMaker jars failed ({code})", str(log))
    marker.touch()
    return libs


def source_grants(topic: str) -> list[Grant]:
    """At a province: read the federation topic (and its configuration, which
    MirrorMaker copies when it creates the national copy), nothing else."""
    return [Grant(ResourceType.TOPIC, topic, op) for op in (
        ACLOperation.READ, ACLOperation.DESCRIBE, ACLOperation.DESCRIBE_CONFIGS)]


def target_grants(alias: str) -> list[Grant]:
    """At the nation: the ``<alias>.`` topics it replicates into and its own Connect
    group with that group's internal topics; another province's are out of reach."""
    prefixes = (f"{alias}.", f"mm2-configs.{alias}.", f"mm2-offsets.{alias}.",
                f"mm2-status.{alias}.")
    return [*(Grant(ResourceType.TOPIC, p, op, prefixed=True) for p in prefixes for op in _ALL),
            Grant(ResourceType.GROUP, f"{alias}-mm2", ACLOperation.READ),
            Grant(ResourceType.GROUP, f"{alias}-mm2", ACLOperation.DESCRIBE),
            Grant(ResourceType.CLUSTER, CLUSTER, ACLOperation.IDEMPOTENT_WRITE)]


@dataclass(frozen=True, slots=True)
class Flow:
    """One province's replication to the nation and the credentials it uses."""

    alias: str
    source: KafkaSettings
    source_user: str
    source_password: str
    target: KafkaSettings
    target_user: str
    target_password: str
    topic: str


def _cluster(name: str, kafka: KafkaSettings, user: str, password: str) -> list[str]:
    jaas = (f'org.apache.kafka.common.security.scram.ScramLoginModule required '
            f'username="{user}" password="{password}";')
    return [f"{name}.bootstrap.servers = {kafka.bootstrap_servers}",
            f"{name}.security.protocol = {kafka.security_protocol}",
            f"{name}.sasl.mechanism = {kafka.sasl_mechanism or 'SCRAM-SHA-512'}",
            f"{name}.sasl.jaas.config = {jaas}"]


def properties(flow: Flow) -> str:
    """MirrorMaker's configuration for the one flow (holds passwords: write 0600)."""
    a = flow.alias
    lines = [
        f"clusters = {a}, {TARGET}",
        *_cluster(a, flow.source, flow.source_user, flow.source_password),
        *_cluster(TARGET, flow.target, flow.target_user, flow.target_password),
        f"{a}->{TARGET}.enabled = true",
        f"{a}->{TARGET}.topics = {re.escape(flow.topic)}",
        f"{TARGET}->{a}.enabled = false",
        "emit.heartbeats.enabled = false",
        "emit.checkpoints.enabled = false",
        "emit.offset-syncs.enabled = false",
        "sync.group.offsets.enabled = false",
        "sync.topic.acls.enabled = false",
        "sync.topic.configs.enabled = false",
        "refresh.topics.interval.seconds = 5",
        "replication.factor = 1",
        "heartbeats.topic.replication.factor = 1",
        "checkpoints.topic.replication.factor = 1",
        "config.storage.replication.factor = 1",
        "offset.storage.replication.factor = 1",
        "status.storage.replication.factor = 1",
        "offset.flush.interval.ms = 1000",
        # the source side reads from the start of the topic the first time
        f"{a}.consumer.auto.offset.reset = earliest",
        f"{a}->{TARGET}.producer.override.enable.idempotence = true",
        f"{TARGET}.producer.enable.idempotence = true",
    ]
    return "\n".join(lines) + "\n"


def write_properties(path: Path, flow: Flow) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as out:
        out.write(properties(flow))


def argv(libs: Path, props: Path, log4j: Path) -> list[str]:
    """The foreground command: dedicated MirrorMaker driving only the national side."""
    return ["java", "-Xms128m", "-Xmx512m", "-XX:+UseG1GC", "-Djava.awt.headless=true",
            f"-Dlog4j.configuration=file:{log4j}", "-cp", f"{libs}/*",
            "org.apache.kafka.connect.mirror.MirrorMaker", str(props), "--clusters", TARGET]
