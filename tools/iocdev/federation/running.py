"""A running federation: provinces, the nation, MirrorMaker and the ``ioc federation``
processes, started together and stopped together (the end-to-end test and the
benchmark use it).

The first province uses the base stack's broker; every other province and the nation
get brokers of their own (``topology.cluster_settings``). Databases come from the
shared PostgreSQL, one per province and one for the nation, dropped afterwards.
"""

from __future__ import annotations

import contextlib
import json
import uuid
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import psycopg

from ioccore.agencies import BUNDLED, BUNDLED_VALID_FROM, read_registry, write_registry
from ioccore.settings import KafkaSettings
from iocdev import supervise
from iocdev.federation import mirror, topology
from iocdev.sandbox import fresh_database
from iocdev.settings import DevSettings


@dataclass
class Province:
    code: str
    kafka: KafkaSettings
    db: str
    conninfo: str
    publisher: supervise.Process | None = None
    mirror: topology.Mirror | None = None


@dataclass
class Running:
    topic: str
    provinces: dict[str, Province]
    nation_kafka: KafkaSettings
    nation_db: str
    nation_conninfo: str
    home: Path
    libs: Path
    log4j: Path
    processes: list[supervise.Process] = field(default_factory=list)

    def restart_mirror(self, code: str) -> None:
        p = self.provinces[code]
        assert p.mirror is not None
        p.mirror.stop()
        p.mirror.start(self.libs, self.log4j)


def _ioc(args: list[str], name: str, log: Path, env: Mapping[str, str]) -> supervise.Process:
    return supervise.spawn(name, supervise.ioc_argv(*args), log=log,
                           cwd=Path.cwd(), env=env)


@contextlib.contextmanager
def federation(base: DevSettings, codes: Sequence[str], home: Path, *,
               publish_every_s: float = 0.5, snapshot_every_s: float = 2.0,
               port_base: int = 27000, log_level: str = "info") -> Iterator[Running]:
    """Bring a federation of ``codes`` up, yield it, stop and drop everything.

    Brokers listen on ``port_base + 1000 * i`` (+92, +94): below Linux's ephemeral range
    (32768-60999), where a client socket of a busy suite could hold the port first.
    ``log_level`` debug makes the publishers and the ingest log a timing line per round
    and per batch (the benchmark's per-stage latencies)."""
    topic = f"ioc.federation.t{uuid.uuid4().hex[:8]}"
    clusters = {code: topology.cluster_settings(base, f"p{code}", port_base + 1000 * i)
                for i, code in enumerate(codes) if i > 0}
    nation = topology.cluster_settings(base, "nation", port_base + 1000 * len(codes))
    group = f"ioc-national-{uuid.uuid4().hex[:6]}"
    running: Running | None = None
    with contextlib.ExitStack() as stack:
        for cluster in (*clusters.values(), nation):
            topology.up_cluster(cluster, base)
            stack.callback(topology.down_cluster, cluster)
        libs = mirror.install(base, base.stack.root / "logs" / "mirror-install.log")
        log4j = base.resolve(Path("config/kafka/log4j.properties"))
        kafkas = {code: clusters[code].kafka if code in clusters else base.kafka
                  for code in codes}
        for kafka in kafkas.values():
            topology.provision_province(kafka, topic)
        topology.provision_nation(nation.kafka, [mirror.alias_of(c) for c in codes], topic,
                                  group)
        provinces = {}
        for code in codes:
            db, conninfo = stack.enter_context(fresh_database(base, f"ioc_fed{code}"))
            with psycopg.connect(conninfo) as conn:
                write_registry(conn, read_registry(BUNDLED), source="bundled",
                               valid_from=BUNDLED_VALID_FROM)
            provinces[code] = Province(code, kafkas[code], db, conninfo)
        nation_db, nation_conninfo = stack.enter_context(fresh_database(base, "ioc_fednat"))
        running = Running(topic, provinces, nation.kafka, nation_db, nation_conninfo, home,
                          libs, log4j)
        stack.callback(_stop, running)
        for p in provinces.values():
            env = topology.process_env(p.kafka, topology.PUBLISHER, {
                "IOC__FEDERATION__ENABLED": "true", "IOC__FEDERATION__PROVINCE_CODE": p.code,
                "IOC__FEDERATION__TOPIC": topic,
                "IOC__FEDERATION__PUBLISH_EVERY_S": str(publish_every_s),
                "IOC__FEDERATION__SNAPSHOT_EVERY_S": str(snapshot_every_s)})
            p.publisher = _ioc(["federation", "publish", "--database", p.db,
                                "--log-level", log_level],
                               f"publish-{p.code}", home / f"publish-{p.code}.log", env)
            running.processes.append(p.publisher)
            p.mirror = topology.mirror_for(base, mirror.alias_of(p.code), p.kafka,
                                           nation.kafka, topic, home / f"mirror-{p.code}")
            p.mirror.start(libs, log4j)
        env = topology.process_env(nation.kafka, topology.NATIONAL, {
            "IOC__FEDERATION__ROLE": "national", "IOC__FEDERATION__TOPIC": topic,
            "IOC__FEDERATION__INGEST_GROUP": group,
            "IOC__FEDERATION__ORIGINS": json.dumps({mirror.alias_of(c): c for c in codes})})
        running.processes.append(_ioc(["federation", "ingest", "--database", nation_db,
                                       "--log-level", log_level],
                                      "ingest", home / "ingest.log", env))
        yield running


def _stop(running: Running) -> None:
    for p in running.provinces.values():
        if p.mirror is not None:
            p.mirror.stop()
    for proc in running.processes:
        proc.stop()
