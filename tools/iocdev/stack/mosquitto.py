"""Eclipse Mosquitto from Debian: the MQTT broker departments' devices publish to.

Loopback only, persistence on (``<home>/data/``), no anonymous access; the password and
ACL files are rendered from the department registry by ``ioc mqtt sync``
(:mod:`ioccore.mqtt_principals`) and re-read on SIGHUP (:meth:`Mosquitto.reload`).
``prepare`` writes the configuration and, on first start, a bridge user whose password
goes to ``<stack>/secrets/mqtt/<user>.password`` (0600), where ``ioc mqtt-bridge``
finds it. TLS (``mqtt.tls`` with ``mqtt.cert_file``/``key_file``) adds a second
listener on ``mqtt.tls_port``.
"""

from __future__ import annotations

import getpass
import signal
from pathlib import Path

from ioccore import mqtt_principals as mp
from ioccore.settings import MqttSettings
from iocdev.stack.ready import port_open
from iocdev.stack.secrets import password_file
from iocdev.stack.service import Service

BINARY = "/usr/sbin/mosquitto"
PACKET_MAX = 300_000
"""Mosquitto refuses larger packets (a payload of ``mqtt.max_payload_bytes`` plus the
topic and properties); the bridge bounds payloads again."""


def render_config(mqtt: MqttSettings, *, home: Path, port: int, host: str = "127.0.0.1",
                  autosave_s: int = 10) -> str:
    """mosquitto.conf for a broker whose files live in ``home``."""
    lines = [
        "# Written by the ioc stack tooling (tools/iocdev/stack/mosquitto.py).",
        "per_listener_settings false",
        "allow_anonymous false",
        f"password_file {home / 'passwd'}",
        f"acl_file {home / 'acl'}",
        "persistence true",
        f"persistence_location {home / 'data'}/",
        # saved on a clean stop and every autosave_s; a SIGKILL loses at most that much
        # of what was queued for an absent bridge (docs/mqtt.md)
        f"autosave_interval {autosave_s}",
        "persistent_client_expiration 14d",
        "max_queued_messages 1000000",
        "max_queued_bytes 1073741824",
        "max_inflight_messages 0",
        f"max_packet_size {PACKET_MAX}",
        "max_keepalive 300",
        "log_dest stdout",
        "log_type error",
        "log_type warning",
        "log_type notice",
        "connection_messages false",
        f"user {getpass.getuser()}",
        f"listener {port} {host}",
        "protocol mqtt",
    ]
    if mqtt.tls:
        if mqtt.cert_file is None or mqtt.key_file is None:
            raise ValueError("mqtt.tls needs mqtt.cert_file and mqtt.key_file")
        lines += [f"listener {mqtt.tls_port} {host}", "protocol mqtt",
                  f"certfile {mqtt.cert_file}", f"keyfile {mqtt.key_file}",
                  "tls_version tlsv1.2"]
        if mqtt.ca_file is not None:
            lines.append(f"cafile {mqtt.ca_file}")
    return "\n".join(lines) + "\n"


def bridge_secret(mqtt: MqttSettings) -> str:
    """The configured bridge password; generated into the stack's secrets on first use."""
    found = mqtt.secret()
    if found is not None:
        return found
    if mqtt.secrets_dir is None:
        raise ValueError("no mqtt.password and no mqtt.secrets_dir")
    return password_file(mqtt.secrets_dir, mqtt.username)


def bridge_user(mqtt: MqttSettings) -> mp.MqttUser:
    return mp.MqttUser(mqtt.username, "bridge", None, mp.hash_password(bridge_secret(mqtt)))


class Mosquitto(Service):
    name = "mosquitto"
    packages = ("mosquitto", "mosquitto-clients")
    start_timeout = 30.0

    @property
    def port(self) -> int:
        return self.settings.mqtt.port

    @property
    def config_file(self) -> Path:
        return self.home / "mosquitto.conf"

    def prepare(self) -> None:
        (self.home / "data").mkdir(parents=True, exist_ok=True)
        mqtt = self.settings.mqtt
        if not (self.home / "passwd").exists():  # `ioc mqtt sync` renders the real ones
            mp.write_files(self.home / "passwd", self.home / "acl", [bridge_user(mqtt)],
                           {}, mqtt.topic_root)
        self.config_file.write_text(render_config(mqtt, home=self.home, port=self.port,
                                                  host=self.host))

    def argv(self) -> list[str]:
        return [BINARY, "-c", str(self.config_file)]

    def probe(self) -> bool:
        return port_open(self.host, self.port)

    def reload(self) -> bool:
        """SIGHUP: Mosquitto re-reads the password and ACL files."""
        record = self.pidfile.running()
        return record is not None and record.signal(signal.SIGHUP)
