"""MQTT ingest on a real Mosquitto: the ACL file rendered from the registry, and the
bridge in front of a real worker, from a QoS 1 publish to a fired alert.

Everything is real: a private Mosquitto (its own port and files), ``ioc mqtt-bridge``
and ``ioc worker`` processes, Kafka and TimescaleDB of the stack.
"""

from __future__ import annotations

import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import paho.mqtt.client as paho
import psycopg
import pytest
from iocdev.mqtt import Broker, Publisher, private_broker, start_bridge
from iocdev.sandbox import Pipeline
from kafka import KafkaConsumer
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.subscribeoptions import SubscribeOptions

from ioc.api.auth import ensure_department
from ioccore import mqtt_principals as mp
from ioccore.settings import get_settings
from tests.support.rulefiles import pm25_rule, rules_env

pytestmark = [pytest.mark.integration, pytest.mark.slow]

BA_DINH = (21.0386, 105.838)


def registry(pipe: Pipeline, broker: Broker) -> dict[str, str]:
    """Departments env (sensor) and transport (traffic), their MQTT users; files synced."""
    passwords = {}
    with psycopg.connect(pipe.conninfo, autocommit=True) as conn:
        ensure_department(conn, "env", ["sensor"], "env")
        ensure_department(conn, "transport", ["traffic"], "transport")
        for d in ("env", "transport"):
            passwords[d] = mp.create_user(conn, role="department", department=d)[1]
    broker.sync(pipe.conninfo)
    return passwords


def connect(broker: Broker, user: str, password: str) -> tuple[paho.Client, Any]:
    c = paho.Client(CallbackAPIVersion.VERSION2, client_id=f"t-{uuid.uuid4().hex[:8]}",
                    protocol=paho.MQTTv5)
    c.username_pw_set(user, password)
    got: dict[str, Any] = {"messages": []}
    c.on_connect = lambda cl, u, f, rc, p: got.__setitem__("connect", rc)
    c.on_subscribe = lambda cl, u, mid, rcs, p: got.__setitem__("suback", rcs)
    c.on_publish = lambda cl, u, mid, rc, p: got.__setitem__("puback", rc)
    c.on_message = lambda cl, u, m: got["messages"].append(m.topic)
    c.connect("127.0.0.1", broker.port)
    c.loop_start()
    deadline = time.monotonic() + 10
    while "connect" not in got and time.monotonic() < deadline:
        time.sleep(0.05)
    return c, got


def wait_key(got: dict[str, Any], key: str) -> Any:
    deadline = time.monotonic() + 10
    while key not in got and time.monotonic() < deadline:
        time.sleep(0.05)
    return got.pop(key, None)


def test_acl_from_registry_confines_each_department_to_its_prefix(
        pipe: Pipeline, tmp_path: Path) -> None:
    with private_broker(tmp_path) as broker:
        passwords = registry(pipe, broker)
        acl = (broker.home / "acl").read_text()
        assert "user dept-env\ntopic write ioc/env/sensor/+" in acl
        assert oct((broker.home / "passwd").stat().st_mode)[-3:] == "600"
        bridge, seen = connect(broker, "ioc-bridge", broker.mqtt.secret() or "")
        bridge.subscribe("ioc/+/+/+", options=SubscribeOptions(qos=1))
        assert not wait_key(seen, "suback")[0].is_failure
        env, env_got = connect(broker, "dept-env", passwords["env"])
        assert not env_got["connect"].is_failure
        # a department may read nothing, its own prefix included (Mosquitto 2.0 grants
        # the SUBACK and then delivers nothing the ACL does not allow to be read)
        env.subscribe("ioc/#", options=SubscribeOptions(qos=1))
        wait_key(env_got, "suback")
        env.subscribe("$share/ioc-bridge/ioc/+/+/+", options=SubscribeOptions(qos=1))
        wait_key(env_got, "suback")
        # it may publish under its own prefix and feeds only
        for topic, allowed in (("ioc/env/sensor/aq-1", True),
                               ("ioc/transport/traffic/cam-1", False),
                               ("ioc/env/traffic/cam-1", False),
                               ("ioc/env/sensor/aq-1/extra", False),
                               ("other/env/sensor/aq-1", False)):
            env.publish(topic, b"{}", qos=1)
            assert wait_key(env_got, "puback").is_failure is not allowed, topic
        time.sleep(0.5)
        assert seen["messages"] == ["ioc/env/sensor/aq-1"]
        assert env_got["messages"] == []
        _, bad = connect(broker, "dept-env", "wrong-password")
        assert bad["connect"].is_failure
        for c in (bridge, env):
            c.disconnect()
            c.loop_stop()


def dead_letters(topic: str, expect: int, timeout: float = 30.0
                 ) -> list[dict[str, str]]:
    consumer = KafkaConsumer(topic, bootstrap_servers=get_settings().kafka.bootstrap_servers,
                             auto_offset_reset="earliest", enable_auto_commit=False,
                             group_id=None, consumer_timeout_ms=1000,
                             **get_settings().kafka.client_options())
    out: list[dict[str, str]] = []
    deadline = time.monotonic() + timeout
    try:
        while len(out) < expect and time.monotonic() < deadline:
            for msg in consumer:
                out.append({k: v.decode() for k, v in msg.headers})
    finally:
        consumer.close()
    return out


def senml(t0: datetime, values: list[tuple[float, float]]) -> bytes:
    pack: list[dict[str, Any]] = [{"bt": t0.timestamp(), "n": "lat", "u": "lat",
                                   "v": BA_DINH[0]},
                                  {"n": "lon", "u": "lon", "v": BA_DINH[1]}]
    pack += [{"n": "pm25", "u": "ug/m3", "t": dt, "v": v} for dt, v in values]
    return orjson.dumps(pack)


def test_publish_to_alert_through_bridge_and_worker(pipe: Pipeline, tmp_path: Path) -> None:
    tag = uuid.uuid4().hex[:8]
    rule = f"mqtt_pm25_{tag}"
    env = rules_env(tmp_path, pm25_rule(rule, label=tag))
    t0 = datetime.now(UTC).replace(second=0, microsecond=0) - timedelta(minutes=4)
    with private_broker(tmp_path) as broker:
        passwords = registry(pipe, broker)
        pipe.start_worker(extra_env=env)
        bridge = start_bridge(pipe, broker, tmp_path)
        pub = Publisher(broker.port, "dept-env", passwords["env"], f"dev-{tag}")
        pub.start()
        source = f"aq-{tag}"
        topic = f"ioc/env/sensor/{source}"
        # SenML: three high readings in minute 0, one in minute 1 that closes minute 0
        pack = senml(t0, [(0, 150.0), (1, 170.0), (2, 160.0), (90, 150.0)])
        pub.publish(topic, pack, 0, content_type="application/senml+json")
        # the same pack again (a device retransmitting): derived ids store it once
        pub.publish(topic, pack, 1)
        # an envelope without event_id nor department, twice
        envelope = {"schema_version": 1, "feed": "sensor", "occurred_at":
                    (t0 + timedelta(seconds=5)).isoformat(),
                    "location": {"lat": BA_DINH[0], "lon": BA_DINH[1]},
                    "body": {"metric": "pm25", "value": 140.0, "unit": "ug/m3"}}
        pub.publish(topic, orjson.dumps(envelope), 2)
        pub.publish(topic, orjson.dumps([envelope]), 3)
        # refused: not JSON, a relative SenML time, another department, an unknown unit
        pub.publish(topic, b"not json", 4)
        pub.publish(topic, orjson.dumps([{"n": "pm25", "u": "ug/m3", "v": 1.0}]), 5)
        pub.publish(topic, orjson.dumps({**envelope, "department": "transport"}), 6)
        pub.publish(topic, orjson.dumps({**envelope, "body": {
            "metric": "pm25", "value": 1.0, "unit": "furlongs"}}), 7)
        pub.wait_acked(8)
        assert pub.acked == set(range(8))
        try:
            pipe.wait_for(f"SELECT count(*) FROM sensor_readings WHERE source_id = "
                          f"'{source}'", 5, timeout=120)
        except AssertionError as exc:
            raise AssertionError(f"{exc}\n--- bridge ---\n{bridge.tail(60)}") from None
        pipe.wait_for(f"SELECT count(*) FROM alert_transitions WHERE rule_id = '{rule}' "
                      "AND kind = 'state' AND to_state = 'firing'", 1, timeout=120)
        letters = dead_letters(pipe.topics["deadletter"], 9)
        # the bridge's refusals name the MQTT topic they came from
        assert sorted(h["ioc-reason"] for h in letters if h["ioc-source-topic"] == topic) \
            == ["forbidden_department", "not_json", "senml_time_missing", "unknown_unit"]
        # the retransmitted pack and envelope: same derived ids, set aside by stage 1
        assert sorted(h["ioc-reason"] for h in letters if h["ioc-source-topic"] != topic) \
            == ["duplicate_event_id"] * 5
        time.sleep(2.0)
        assert pipe.query(f"SELECT count(*) FROM sensor_readings WHERE source_id = "
                          f"'{source}'")[0][0] == 5
        registered = pipe.query(f"SELECT department, feed FROM sources WHERE source_id = "
                                f"'{source}'")
        assert registered == [("env", "sensor")]
        pub.stop()
        bridge.stop(timeout=20)
        assert bridge.returncode == 0, bridge.tail()
