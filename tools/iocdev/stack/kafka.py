"""Apache Kafka in KRaft mode (one combined broker and controller), jars from Maven.

The jars are resolved by ``mvn dependency:copy-dependencies`` from a generated pom into
``kafka/libs`` (Maven's repository in ``m2/``); the logging backend (reload4j) is added
because the core jar does not bring one. Storage is formatted once with a cluster id
kept in ``kafka/cluster.id``.

Security (docs/security.md): the client listener is SASL (SCRAM-SHA-512) with the KRaft
``StandardAuthorizer`` and no access without an ACL. The admin principal is added at
format time; once the broker answers, the worker, gateway and operator principals get
their credentials and ACLs. Every password is generated here and written to
``<stack>/secrets/kafka/<user>.password`` (mode 0600, git-ignored), where the settings
find them.
"""

from __future__ import annotations

import base64
import contextlib
import os
import shutil
import string
import subprocess
import uuid
from pathlib import Path

from ioccore.settings import KafkaSettings
from iocdev.errors import StackError
from iocdev.stack.ready import port_open
from iocdev.stack.secrets import password_file
from iocdev.stack.service import Service

PROBE_TOPIC = "ioc-stack-probe"
CONTROLLER_USER = "ioc-controller"
"""The controller listener's PLAIN user (super user; never used by clients)."""
POM = """<?xml version="1.0" encoding="UTF-8"?>
<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>local.ioc</groupId>
  <artifactId>kafka-runtime</artifactId>
  <version>1</version>
  <packaging>pom</packaging>
  <dependencies>
    <dependency><groupId>org.apache.kafka</groupId>
      <artifactId>kafka_{scala}</artifactId><version>{kafka}</version></dependency>
    <dependency><groupId>org.apache.kafka</groupId>
      <artifactId>kafka-tools</artifactId><version>{kafka}</version></dependency>
    <dependency><groupId>ch.qos.reload4j</groupId>
      <artifactId>reload4j</artifactId><version>1.2.25</version></dependency>
    <dependency><groupId>org.slf4j</groupId>
      <artifactId>slf4j-reload4j</artifactId><version>1.7.36</version></dependency>
  </dependencies>
</project>
"""


def new_cluster_id() -> str:
    """A Kafka cluster id: 16 random bytes, URL-safe base64 without padding."""
    while True:
        cid = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
        if not cid.startswith("-"):
            return cid


class Kafka(Service):
    name = "kafka"
    packages = ("openjdk-17-jre-headless", "maven", "kcat")
    start_timeout = 120.0

    @property
    def port(self) -> int:
        return self.settings.kafka.port

    @property
    def libs(self) -> Path:
        return self.home / "libs"

    @property
    def data(self) -> Path:
        return self.home / "data"

    @property
    def properties(self) -> Path:
        return self.home / "server.properties"

    @property
    def marker(self) -> Path:
        stack = self.settings.stack
        return self.libs / f".complete-{stack.scala_version}-{stack.kafka_version}"

    def install(self) -> None:
        if self.marker.exists():
            return
        stack = self.settings.stack
        self.home.mkdir(parents=True, exist_ok=True)
        if self.libs.exists():
            shutil.rmtree(self.libs)
        pom = self.home / "pom.xml"
        pom.write_text(POM.format(scala=stack.scala_version, kafka=stack.kafka_version))
        argv = ["mvn", "-q", "-B", "-f", str(pom), f"-Dmaven.repo.local={self.layout.root / 'm2'}",
                "dependency:copy-dependencies", f"-DoutputDirectory={self.libs}"]
        with self.log.open("ab") as out:
            out.write(f"\n=== {' '.join(argv)}\n".encode())
            out.flush()
            code = subprocess.run(argv, stdout=out, stderr=subprocess.STDOUT,
                                  stdin=subprocess.DEVNULL, check=False).returncode
        if code != 0 or not any(self.libs.glob("kafka_*.jar")):
            raise StackError(self.name, f"resolving the Kafka jars with mvn failed ({code})",
                             str(self.log))
        self.marker.touch()

    def java(self, main: str, *args: str) -> list[str]:
        return ["java", "-Xms256m", "-Xmx1g", "-XX:+UseG1GC", "-Djava.awt.headless=true",
                f"-Dlog4j.configuration=file:{self.layout.config / 'kafka' / 'log4j.properties'}",
                "-cp", f"{self.libs}/*", main, *args]

    @property
    def secrets(self) -> Path:
        return self.settings.kafka.secrets_dir or (self.layout.root / "secrets" / "kafka")

    def secret(self, user: str) -> str:
        """The user's password, generated (once) into the secrets folder."""
        return password_file(self.secrets, user)

    def render_properties(self) -> str:
        kafka = self.settings.kafka
        if kafka.security_protocol != "SASL_PLAINTEXT":
            raise StackError(self.name, "the local stack runs SASL_PLAINTEXT on loopback; "
                             "SASL_SSL is for deployments (docs/security.md)")
        template = (self.layout.config / "kafka" / "server.properties").read_text()
        admin = kafka.principals.admin
        return string.Template(template).substitute(
            host=self.host,
            port=kafka.port,
            controller_port=kafka.controller_port,
            data_dir=self.data,
            max_message_bytes=kafka.max_message_bytes,
            client_protocol=kafka.security_protocol,
            admin_user=admin,
            admin_password=self.secret(admin),
            controller_user=CONTROLLER_USER,
            controller_password=self.secret(CONTROLLER_USER),
        )

    def prepare(self) -> None:
        self.home.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.properties, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as out:
            out.write(self.render_properties())
        if (self.data / "meta.properties").exists():
            return
        id_file = self.home / "cluster.id"
        if not id_file.exists():
            id_file.write_text(new_cluster_id() + "\n")
        admin = self.settings.kafka.principals.admin
        scram = f"SCRAM-SHA-512=[name={admin},password={self.secret(admin)}]"
        # the password goes through a 0600 java argument file, never argv (readable by
        # anyone in /proc/<pid>/cmdline while the JVM starts): `java @file`
        argfile = self.home / "format.args"
        argv = format_argv(self.java("kafka.tools.StorageTool"), argfile, [
            "format", "-t", id_file.read_text().strip(), "-c", str(self.properties),
            "--add-scram", scram])
        try:
            with self.log.open("ab") as out:
                out.write(f"\n=== {' '.join(argv)} (admin scram in the file)\n".encode())
                out.flush()
                code = subprocess.run(argv, stdout=out, stderr=subprocess.STDOUT,
                                      stdin=subprocess.DEVNULL, check=False).returncode
        finally:
            argfile.unlink(missing_ok=True)
        if code != 0:
            raise StackError(self.name, f"formatting the storage failed ({code})",
                             str(self.log))

    def argv(self) -> list[str]:
        return self.java("kafka.Kafka", str(self.properties))

    def probe(self) -> bool:
        return port_open(self.host, self.port) and roundtrip(
            self.settings.kafka.bootstrap_servers, self.settings.kafka.client_options())

    def wait_ready(self, pid: int | None) -> float:
        from iocdev.stack.ready import wait_until

        waited = wait_until(self.name, lambda: port_open(self.host, self.port), log=self.log,
                            timeout=self.start_timeout, pid=pid, what="port did not open")
        waited += wait_until(self.name, self.probe, log=self.log,
                             timeout=self.start_timeout, pid=pid,
                             what="no produce+consume round trip")
        self.provision()
        return waited

    def provision(self) -> None:
        """The IOC's own principals with at least their ACLs (idempotent; passwords kept;
        grants other pipelines on this stack added are left alone)."""
        from ioccore import principals as p

        kafka = self.settings.kafka
        names = kafka.principals
        wanted = {
            names.worker: p.worker_grants(kafka, group=self.settings.stream.app_id),
            names.gateway: p.gateway_grants(kafka, group=self.settings.stream.app_id),
            names.operator: p.operator_grants(kafka, group_prefix=names.operator),
        }
        for user, grants in wanted.items():
            p.create_principal(kafka, user, grants, password=self.secret(user),
                               keep_other_acls=True)


def roundtrip(bootstrap: str, options: dict[str, object], timeout_s: float = 15.0) -> bool:
    """Produce one unique message to the probe topic and consume it back."""
    from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer, TopicPartition
    from kafka.admin import NewTopic
    from kafka.errors import TopicAlreadyExistsError

    timeout_ms = int(timeout_s * 1000)
    admin = KafkaAdminClient(bootstrap_servers=bootstrap, client_id="ioc-stack",
                             request_timeout_ms=timeout_ms, **options)
    try:
        if PROBE_TOPIC not in admin.list_topics():
            with contextlib.suppress(TopicAlreadyExistsError):
                admin.create_topics([NewTopic(PROBE_TOPIC, 1, 1)], timeout_ms=timeout_ms)
    finally:
        admin.close()
    payload = uuid.uuid4().bytes
    producer = KafkaProducer(bootstrap_servers=bootstrap, client_id="ioc-stack",
                             request_timeout_ms=timeout_ms, **options)
    try:
        meta = producer.send(PROBE_TOPIC, value=payload, partition=0).get(timeout=timeout_s)
    finally:
        producer.close()
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, client_id="ioc-stack",
                             enable_auto_commit=False, group_id=None,
                             consumer_timeout_ms=timeout_ms, **options)
    try:
        tp = TopicPartition(PROBE_TOPIC, 0)
        consumer.assign([tp])
        consumer.seek(tp, meta.offset)
        for message in consumer:
            if message.value == payload:
                return True
    finally:
        consumer.close()
    return False


def format_argv(java: list[str], argfile: Path, args: list[str]) -> list[str]:
    """``java`` (options, then the main class last) with the main class and ``args``
    moved into ``argfile`` (mode 0600): the java launcher expands ``@argfile`` in place,
    so secrets among ``args`` never appear in the process's command line."""
    *options, main = java

    def quoted(arg: str) -> str:
        return '"' + arg.replace("\\", "\\\\").replace('"', '\\"') + '"'

    fd = os.open(argfile, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as out:
        out.write("\n".join(quoted(a) for a in (main, *args)) + "\n")
    return [*options, f"@{argfile}"]


def relocated(kafka: KafkaSettings, host: str, port_base: int, home: Path) -> KafkaSettings:
    """``kafka`` for a second local broker: listener ``port_base + 92``, controller
    ``port_base + 94``, its own SCRAM passwords under ``home/secrets/kafka`` (a stack
    started with ``IOC__STACK__HOME=<home>`` looks for them there)."""
    return kafka.model_copy(update={
        "bootstrap_servers": f"{host}:{port_base + 92}",
        "controller_port": port_base + 94,
        "secrets_dir": home / "secrets" / "kafka"})


def seed_libs(target_root: Path, source_root: Path) -> bool:
    """Copy the resolved Kafka jars of the stack at ``source_root`` (read only) into a new
    stack at ``target_root``, so it does not fetch them again with Maven; whether it did."""
    libs = target_root / "kafka" / "libs"
    have = source_root / "kafka" / "libs"
    if libs.exists() or not any(have.glob(".complete-*")):
        return False
    libs.parent.mkdir(parents=True, exist_ok=True)
    shutil.copytree(have, libs, symlinks=True)
    return True
