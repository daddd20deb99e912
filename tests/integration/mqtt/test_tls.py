"""TLS on a real Mosquitto: with ``mqtt.tls`` the broker gets a TLS listener from the
stack's config renderer, and the bridge's client (streams.mqtt.client) connects through
it verifying the broker against ``mqtt.ca_file``; a client that does not trust the CA is
refused."""

from __future__ import annotations

import asyncio
import ssl
import subprocess
import time
import uuid
from pathlib import Path

import paho.mqtt.client as paho
import pytest
from iocdev.mqtt import private_broker
from paho.mqtt.enums import CallbackAPIVersion

from streams.mqtt.client import MqttClient

pytestmark = [pytest.mark.integration]


def self_signed(tmp: Path) -> tuple[Path, Path]:
    cert, key = tmp / "broker.crt", tmp / "broker.key"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes",
                    "-keyout", str(key), "-out", str(cert), "-days", "1",
                    "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1"],
                   check=True, capture_output=True)
    return cert, key


def test_bridge_client_connects_over_tls_and_an_untrusting_client_does_not(
        tmp_path: Path) -> None:
    with private_broker(tmp_path, tls=self_signed(tmp_path)) as broker:
        conf = (broker.home / "mosquitto.conf").read_text()
        assert f"listener {broker.mqtt.tls_port} 127.0.0.1" in conf
        loop = asyncio.new_event_loop()
        client = MqttClient(broker.mqtt, asyncio.Queue(), loop,
                            password=broker.mqtt.secret())
        client.start()
        try:
            assert client.connected.wait(15), (broker.home / "mosquitto.log").read_text()
        finally:
            client.stop()
            loop.close()

        plain = paho.Client(CallbackAPIVersion.VERSION2,
                            client_id=f"t-{uuid.uuid4().hex[:6]}", protocol=paho.MQTTv5)
        plain.username_pw_set(broker.mqtt.username, broker.mqtt.secret())
        plain.tls_set_context(ssl.create_default_context())  # the system CAs only
        with pytest.raises(ssl.SSLCertVerificationError):
            plain.connect("127.0.0.1", broker.mqtt.tls_port)
        time.sleep(0.1)

