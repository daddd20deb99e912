"""The chaos stack's settings never point at the base stack's services or secrets."""

from __future__ import annotations

from pathlib import Path

from iocdev.chaos.stack import chaos_settings
from iocdev.settings import DevSettings


def test_chaos_stack_has_ports_and_kafka_passwords_of_its_own(tmp_path: Path) -> None:
    base = DevSettings()  # type: ignore[call-arg]
    chaos = chaos_settings(base, home=tmp_path / "chaos", port_base=31000)
    assert chaos.kafka.secrets_dir == tmp_path / "chaos" / "secrets" / "kafka"
    assert chaos.kafka.secrets_dir != base.kafka.secrets_dir
    assert chaos.stack.root == tmp_path / "chaos"
    assert chaos.kafka.bootstrap_servers.endswith(":31092")
    assert chaos.database.port == 31432


def test_chaos_stack_has_an_mqtt_broker_of_its_own(tmp_path: Path) -> None:
    base = DevSettings()  # type: ignore[call-arg]
    chaos = chaos_settings(base, home=tmp_path / "chaos", port_base=31000)
    assert (chaos.mqtt.port, chaos.mqtt.tls_port) == (31883, 31884)
    assert chaos.mqtt.secrets_dir == tmp_path / "chaos" / "secrets" / "mqtt"
    assert chaos.mqtt.port != base.mqtt.port
