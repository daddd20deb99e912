"""One MQTT message into parts: the topic names department, feed and source."""

from __future__ import annotations

import orjson

from ioccore import mqtt_principals as mp
from streams.mqtt.messages import Inbound, decode, parse_topic

T0 = 1762131600.0


def msg(topic: str, payload: object, content_type: str | None = None) -> Inbound:
    raw = payload if isinstance(payload, bytes) else orjson.dumps(payload)
    return Inbound(1, 1, topic, raw, 1, content_type)


def parts(m: Inbound) -> list[tuple[str | None, object]]:
    return [(p.reason, p.event and p.event.get("event_id")) for p in
            decode(m, root="ioc", max_bytes=10_000)]


def envelope(**over: object) -> dict[str, object]:
    e: dict[str, object] = {"schema_version": 1, "feed": "sensor",
                            "occurred_at": "2025-11-03T08:00:00+07:00",
                            "location": {"lat": 21.0, "lon": 105.8},
                            "body": {"metric": "pm25", "value": 1, "unit": "ug/m3"}}
    e.update(over)
    return e


def test_topics() -> None:
    t = parse_topic("ioc/env/sensor/aq-1", "ioc")
    assert t is not None and (t.department, t.feed, t.source_id) == ("env", "sensor", "aq-1")
    for bad in ("ioc/env/sensor", "ioc/env/weather/a", "x/env/sensor/a", "ioc/Env!/sensor/a",
                "ioc/env/sensor/a/b", "ioc/env/sensor/"):
        assert parse_topic(bad, "ioc") is None
    assert parts(msg("ioc/env/x/a", envelope()))[0][0] == "invalid_topic"


def test_envelope_takes_the_topics_identity() -> None:
    (p,) = decode(msg("ioc/env/sensor/aq-1", envelope()), root="ioc", max_bytes=10_000)
    assert p.reason is None and p.event is not None
    assert (p.event["department"], p.event["source_id"]) == ("env", "aq-1")
    assert str(p.event["event_id"]).startswith("h1-")
    again = decode(msg("ioc/env/sensor/aq-1", [envelope()]), root="ioc", max_bytes=10_000)
    assert again[0].event is not None and again[0].event["event_id"] == p.event["event_id"]
    given = decode(msg("ioc/env/sensor/aq-1", envelope(event_id="mine")), root="ioc",
                   max_bytes=10_000)
    assert given[0].event is not None and given[0].event["event_id"] == "mine"


def test_refusals_name_their_reason() -> None:
    topic = "ioc/env/sensor/aq-1"
    assert parts(msg(topic, envelope(department="transport")))[0][0] == \
        "forbidden_department"
    assert parts(msg(topic, envelope(feed="traffic")))[0][0] == "feed_topic_mismatch"
    assert parts(msg(topic, envelope(source_id="aq-2")))[0][0] == "source_topic_mismatch"
    assert parts(msg(topic, b"\xff not json"))[0][0] == "not_json"
    assert parts(msg(topic, []))[0][0] == "empty_batch"
    assert parts(msg(topic, b"x" * 10_001))[0][0] == "message_too_large"
    assert [r for r, _ in parts(msg(topic, [envelope(), 3]))] == [None, "not_an_object"]


def test_senml_by_content_type_or_shape() -> None:
    pack = [{"bt": T0, "n": "pm25", "u": "ug/m3", "v": 12}]
    for m in (msg("ioc/env/sensor/aq-1", pack, "application/senml+json"),
              msg("ioc/env/sensor/aq-1", pack)):
        (p,) = decode(m, root="ioc", max_bytes=10_000)
        assert p.event is not None and p.event["body"] == {
            "metric": "pm25", "value": 12.0, "unit": "ug/m3"}


def test_acl_and_passwd_rendering() -> None:
    users = [mp.MqttUser("dept-env", "department", "env", "$7$101$a$b"),
             mp.MqttUser("ioc-bridge", "bridge", None, "$7$101$c$d")]
    acl = mp.render_acl(users, {"env": ["traffic", "sensor"]}, "ioc")
    assert "user dept-env\ntopic write ioc/env/sensor/+\ntopic write ioc/env/traffic/+" in acl
    assert "user ioc-bridge\ntopic read ioc/#" in acl
    assert "read ioc/env" not in acl
    assert mp.render_passwd(users) == "dept-env:$7$101$a$b\nioc-bridge:$7$101$c$d\n"
    h = mp.hash_password("secret", salt=b"0" * 12)
    assert h.startswith("$7$101$MDAwMDAwMDAwMDAw$") and h == mp.hash_password(
        "secret", salt=b"0" * 12)
