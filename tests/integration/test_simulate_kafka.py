"""`ioc simulate --target kafka` against the local broker, read back with kafka-python."""

from __future__ import annotations

import uuid

import msgspec
import pytest
from typer.testing import CliRunner

from ioccore.settings import Settings


@pytest.mark.integration
def test_simulate_to_kafka_round_trip(stack: Settings, monkeypatch: pytest.MonkeyPatch
                                      ) -> None:
    from kafka import KafkaConsumer
    from kafka.admin import KafkaAdminClient, NewTopic

    run = uuid.uuid4().hex[:8]
    names = {f: f"test.sim.{run}.{f}.v1" for f in ("sensor", "traffic", "service")}
    admin = KafkaAdminClient(bootstrap_servers=stack.kafka.bootstrap_servers,
                             **stack.kafka.client_options())
    admin.create_topics([NewTopic(n, num_partitions=3, replication_factor=1)
                         for n in names.values()])
    admin.close()
    for feed, name in names.items():
        monkeypatch.setenv(f"IOC__KAFKA__TOPICS__{feed.upper()}__NAME", name)
    from iocdev.settings import get_dev_settings

    from ioccore.settings import get_settings

    # the simulator reads the development settings, which name the topics too
    get_settings.cache_clear()
    get_dev_settings.cache_clear()
    try:
        from ioc.cli import app

        res = CliRunner().invoke(app, [
            "simulate", "--target", "kafka", "--duration", "2m", "--rate", "20",
            "--seed", "1", "--batch", "10", "--max-speed",
            "--start", "2025-12-01T08:00:00+07:00"])
        assert res.exit_code == 0, res.output
        sent = msgspec.json.decode(res.output.strip().splitlines()[-1])
    finally:
        get_settings.cache_clear()
        get_dev_settings.cache_clear()
    consumer = KafkaConsumer(*names.values(), bootstrap_servers=stack.kafka.bootstrap_servers,
                             auto_offset_reset="earliest", consumer_timeout_ms=5000,
                             group_id=f"test-sim-{run}", **stack.kafka.client_options())
    events = 0
    keys_ok = True
    for msg in consumer:
        value = msgspec.json.decode(msg.value)
        items = value if isinstance(value, list) else [value]
        events += len(items)
        keys_ok &= all(i["source_id"] == msg.key.decode() for i in items)
    consumer.close()
    assert events == sent["target"]["events"] == sent["sensor"] + sent["traffic"] + sent["service"]
    assert keys_ok
