"""Test and benchmark helpers around MQTT: a private Mosquitto, a bridge process, a
QoS 1 publisher that records what the broker acknowledged.

A private broker (its own port, folder, password and ACL files rendered from a
registry database by :func:`ioccore.mqtt_principals.sync`) keeps a test's users and
restarts away from the stack's Mosquitto, exactly as :func:`iocdev.sandbox.private_prometheus`
does for Prometheus.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import paho.mqtt.client as paho
import psycopg
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from ioccore import mqtt_principals as mp
from ioccore.settings import MqttSettings, Settings
from iocdev import supervise
from iocdev.sandbox import Pipeline
from iocdev.stack.mosquitto import BINARY, render_config
from iocdev.stack.ready import port_open
from iocdev.supervise import Process, free_port


@dataclass
class Broker:
    """A Mosquitto of one test's own."""

    home: Path
    port: int
    mqtt: MqttSettings
    process: Process | None = None
    starts: int = 0

    def start(self) -> None:
        self.starts += 1
        self.process = supervise.spawn(
            f"mosquitto-{self.port}", [BINARY, "-c", str(self.home / "mosquitto.conf")],
            log=self.home / "mosquitto.log", cwd=self.home)
        supervise.wait_started(self.process, lambda: port_open("127.0.0.1", self.port),
                               "mosquitto", timeout=20, interval=0.05)

    def stop(self, *, kill: bool = False) -> None:
        if self.process is not None:
            if kill:
                self.process.kill()
                self.process.wait(timeout=10)
            else:
                self.process.stop(timeout=20)
            self.process = None

    def restart(self) -> None:
        """A clean stop (Mosquitto saves its persistence file) and a start."""
        self.stop()
        self.start()

    def sync(self, conninfo: str) -> None:
        """Render passwd and acl from the registry database; SIGHUP a running broker."""
        import signal

        with psycopg.connect(conninfo, autocommit=True) as conn:
            mp.sync(conn, self.home / "passwd", self.home / "acl", self.mqtt.topic_root,
                    [mp.MqttUser(self.mqtt.username, "bridge", None,
                                 mp.hash_password(self.mqtt.secret() or ""))])
        if self.process is not None:
            self.process.send_signal(signal.SIGHUP)
            time.sleep(0.3)


@contextlib.contextmanager
def private_broker(tmp: Path, *, bridge_password: str = "bridge-test-secret",
                   tls: tuple[Path, Path] | None = None) -> Iterator[Broker]:
    """``tls``: (certificate, key) for a TLS listener on ``broker.mqtt.tls_port``."""
    home = tmp / "mosquitto"
    (home / "data").mkdir(parents=True, exist_ok=True)
    port = free_port()
    mqtt = MqttSettings(port=port, password=bridge_password)  # type: ignore[arg-type]
    if tls is not None:
        mqtt = mqtt.model_copy(update={"tls": True, "tls_port": free_port(),
                                       "cert_file": tls[0], "key_file": tls[1],
                                       "ca_file": tls[0]})
    mp.write_files(home / "passwd", home / "acl",
                   [mp.MqttUser(mqtt.username, "bridge", None,
                                mp.hash_password(bridge_password))], {}, mqtt.topic_root)
    (home / "mosquitto.conf").write_text(render_config(mqtt, home=home, port=port,
                                                       autosave_s=1))
    broker = Broker(home, port, mqtt)
    broker.start()
    try:
        yield broker
    finally:
        broker.stop()


def bridge_env(pipe: Pipeline, broker: Broker, client_id: str = "ioc-bridge-test",
               *, shared: bool = True) -> dict[str, str]:
    """Environment of an ``ioc mqtt-bridge`` on the pipeline's topics and database."""
    env = pipe.env(free_port())
    env.update({"IOC__MQTT__PORT": str(broker.port), "IOC__MQTT__CLIENT_ID": client_id,
                "IOC__MQTT__PASSWORD": broker.mqtt.secret() or "",
                "IOC__MQTT__SHARE_GROUP": f"g{broker.port}" if shared else ""})
    return env


def start_bridge(pipe: Pipeline, broker: Broker, tmp: Path, n: int = 0,
                 client_id: str | None = None, *, wait: bool = True,
                 append: bool = False, shared: bool = True) -> Process:
    """An ``ioc mqtt-bridge`` process; with ``wait``, returns once it has subscribed
    (the first time its session exists: what is published before is not queued)."""
    env = bridge_env(pipe, broker, client_id or f"ioc-bridge-test-{n}", shared=shared)
    log = tmp / f"bridge-{n}.log"
    start = log.stat().st_size if append and log.exists() else 0
    proc = supervise.spawn(f"mqtt-bridge-{n}",
                           supervise.ioc_argv("mqtt-bridge"),
                           log=log, cwd=tmp, env=env, append=append)
    deadline = time.monotonic() + 60
    while wait:
        with log.open("rb") as fh:
            fh.seek(start)
            if b"subscribed to" in fh.read():
                break
        if proc.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(f"the bridge did not subscribe\n{proc.describe()}")
        time.sleep(0.2)
    return proc


@dataclass
class Publisher:
    """A QoS 1 publisher (MQTT 5, persistent session): ``acked`` holds the payload
    indexes the broker acknowledged (PUBACK), the only ones that count as published."""

    port: int
    username: str
    password: str
    client_id: str
    client: paho.Client = field(init=False)
    acked: set[int] = field(default_factory=set)
    refused: dict[str, int] = field(default_factory=dict)
    """PUBACK failure reasons (e.g. "Not authorized") and how often."""
    _mids: dict[int, int] = field(default_factory=dict)
    _early: dict[int, str | None] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    connected: threading.Event = field(default_factory=threading.Event)

    def __post_init__(self) -> None:
        c = paho.Client(CallbackAPIVersion.VERSION2, client_id=self.client_id,
                        protocol=paho.MQTTv5)
        c.username_pw_set(self.username, self.password)
        c.max_inflight_messages_set(1000)
        c.max_queued_messages_set(0)
        c.reconnect_delay_set(1, 2)
        c.on_publish = self._on_publish
        c.on_connect = lambda *a: self.connected.set()
        c.on_disconnect = lambda *a: self.connected.clear()
        self.client = c

    def start(self) -> None:
        props = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
        props.SessionExpiryInterval = 3600
        self.client.connect_async("127.0.0.1", self.port, clean_start=False,
                                  properties=props)
        self.client.loop_start()
        if not self.connected.wait(20):
            raise RuntimeError("publisher did not connect")

    def publish(self, topic: str, payload: bytes, index: int,
                content_type: str | None = None) -> None:
        props = None
        if content_type is not None:
            props = Properties(PacketTypes.PUBLISH)  # type: ignore[no-untyped-call]
            props.ContentType = content_type
        # never call paho while holding our lock: its network thread holds paho's own
        # lock when it calls _on_publish, which takes ours (a lock-order deadlock)
        info = self.client.publish(topic, payload, qos=1, properties=props)
        with self._lock:
            if info.mid in self._early:
                self._settle(index, self._early.pop(info.mid))
            else:
                self._mids[info.mid] = index

    def _settle(self, index: int, reason: str | None) -> None:
        if reason is None:
            self.acked.add(index)
        else:
            self.refused[reason] = self.refused.get(reason, 0) + 1

    def _on_publish(self, client: Any, userdata: Any, mid: int, reason: Any,
                    properties: Any) -> None:
        failure = str(reason) if getattr(reason, "is_failure", False) else None
        with self._lock:
            index = self._mids.pop(mid, None)
            if index is None:  # PUBACK before publish() recorded the mid
                self._early[mid] = failure
            else:
                self._settle(index, failure)

    def wait_acked(self, n: int, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while len(self.acked) < n and time.monotonic() < deadline:
            time.sleep(0.05)

    def drain(self, timeout: float = 60.0) -> int:
        """Wait until the broker acknowledged everything published; how many are not."""
        deadline = time.monotonic() + timeout
        while self._mids and time.monotonic() < deadline:
            time.sleep(0.1)
        return len(self._mids)

    def stop(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def department_user(settings: Settings, conninfo: str, department: str) -> tuple[str, str]:
    """Create ``dept-<department>`` in the registry database; (username, password)."""
    del settings
    with psycopg.connect(conninfo, autocommit=True) as conn:
        return mp.create_user(conn, role="department", department=department)
