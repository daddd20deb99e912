"""The stack's Mosquitto (`ioc stack up`): loopback only, persistence on, no anonymous
access, the bridge user's password generated into the stack's secrets."""

from __future__ import annotations

import time
import uuid

import paho.mqtt.client as paho
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from ioccore.settings import Settings

pytestmark = [pytest.mark.integration]


def connect(settings: Settings, user: str | None, password: str | None) -> bool:
    got: dict[str, object] = {}
    c = paho.Client(CallbackAPIVersion.VERSION2, client_id=f"t-{uuid.uuid4().hex[:8]}",
                    protocol=paho.MQTTv5)
    if user is not None:
        c.username_pw_set(user, password)
    c.on_connect = lambda cl, u, f, rc, p: got.__setitem__("rc", rc)
    c.connect(settings.mqtt.host, settings.mqtt.port)
    c.loop_start()
    deadline = time.monotonic() + 10
    while "rc" not in got and time.monotonic() < deadline:
        time.sleep(0.05)
    c.disconnect()
    c.loop_stop()
    rc = got.get("rc")
    return rc is not None and not rc.is_failure  # type: ignore[attr-defined]


def test_stack_mosquitto(stack: Settings) -> None:
    conf = (stack.stack.root / "mosquitto" / "mosquitto.conf").read_text()
    assert f"listener {stack.mqtt.port} 127.0.0.1" in conf
    assert "persistence true" in conf and "allow_anonymous false" in conf
    secret = stack.mqtt.secret()
    assert secret is not None
    path = stack.mqtt.secrets_dir / f"{stack.mqtt.username}.password"  # type: ignore[operator]
    assert oct(path.stat().st_mode)[-3:] == "600"
    assert connect(stack, stack.mqtt.username, secret)
    assert not connect(stack, None, None)
    assert not connect(stack, stack.mqtt.username, secret + "x")
