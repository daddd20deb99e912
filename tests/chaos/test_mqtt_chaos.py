"""The short MQTT chaos scenario (CI): the bridge SIGKILLed mid-stream, 0 lost and 0
double-counted (docs/chaos.md, docs/mqtt.md).

Its faults touch only processes of its own (the bridge, a private Mosquitto), never a
service others test against, so it runs on the stack the settings name; ``make chaos``
runs every MQTT scenario with the others.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from iocdev.chaos.mqtt import MQTT_SCENARIOS, MqttScenario, run_mqtt_scenario

from ioccore.settings import Settings

pytestmark = [pytest.mark.integration, pytest.mark.slow, pytest.mark.chaos]


@pytest.mark.parametrize("scenario", [s for s in MQTT_SCENARIOS if s.quick],
                         ids=lambda s: s.name)
def test_mqtt_fault_loses_nothing_and_counts_nothing_twice(
        scenario: MqttScenario, stack: Settings, tmp_path: Path,
        record_property: Callable[[str, object], None]) -> None:
    ledger = run_mqtt_scenario(scenario, stack, tmp_path, rate=150.0)
    record_property(f"stack.chaos.{scenario.name}", ledger.format())
    assert ledger.ok, ledger.format()
    assert ledger.acknowledged_by_broker > 1000
