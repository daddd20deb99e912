"""paho-mqtt 2.x as the bridge needs it: MQTT 5, a shared subscription, a persistent
session, QoS 1 with manual acknowledgement, messages handed to asyncio.

paho runs its network loop in a thread of its own; :meth:`MqttClient.start` connects
(and paho reconnects after any loss, with back-off). Each message goes to the asyncio
queue with the connection *generation* it arrived on. :meth:`ack` sends the PUBACK only
if that connection is still the current one: after a reconnect Mosquitto re-sends every
message of the session that was not acknowledged (same packet ids, possibly reused for
other messages), so an acknowledgement carried over to a new connection could confirm
the wrong message. The re-sent copies are processed again; downstream stores each
``(source_id, event_id)`` once.

The queue never grows beyond ``receive_maximum``: Mosquitto sends no more
unacknowledged QoS 1 messages than that (MQTT 5 flow control).
"""

from __future__ import annotations

import asyncio
import logging
import ssl
import threading
import time
from typing import Any

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode
from paho.mqtt.subscribeoptions import SubscribeOptions

from ioccore.settings import MqttSettings
from streams.mqtt.messages import Inbound

log = logging.getLogger("ioc.mqtt.client")


def shared_filter(mqtt: MqttSettings) -> str:
    """``$share/<group>/<root>/+/+/+``: each message goes to one bridge of the group;
    ``<root>/+/+/+`` when ``mqtt.share_group`` is empty (one bridge: Mosquitto 2.0.11
    restores a plain subscription after its own restart, not a shared one; docs/mqtt.md)."""
    if not mqtt.share_group:
        return f"{mqtt.topic_root}/+/+/+"
    return f"$share/{mqtt.share_group}/{mqtt.topic_root}/+/+/+"


class MqttClient:
    def __init__(self, mqtt: MqttSettings, queue: asyncio.Queue[Inbound],
                 loop: asyncio.AbstractEventLoop, *, password: str | None) -> None:
        self.settings = mqtt
        self.queue = queue
        self.loop = loop
        self.generation = 0
        self.connected = threading.Event()
        self._lock = threading.Lock()
        c = paho.Client(CallbackAPIVersion.VERSION2, client_id=mqtt.client_id,
                        protocol=paho.MQTTv5, manual_ack=True)
        c.username_pw_set(mqtt.username, password)
        if mqtt.tls:
            ctx = ssl.create_default_context(
                cafile=str(mqtt.ca_file) if mqtt.ca_file else None)
            c.tls_set_context(ctx)
        c.reconnect_delay_set(min_delay=1, max_delay=10)
        c.max_inflight_messages_set(mqtt.receive_maximum)
        c.on_connect = self._on_connect
        c.on_disconnect = self._on_disconnect
        c.on_message = self._on_message
        c.on_subscribe = self._on_subscribe
        self.client = c

    def start(self) -> None:
        props = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
        props.SessionExpiryInterval = self.settings.session_expiry_s
        props.ReceiveMaximum = self.settings.receive_maximum
        self.client.connect_async(self.settings.host, self.settings.bridge_port,
                                  keepalive=self.settings.keepalive_s, clean_start=False,
                                  properties=props)
        self.client.loop_start()

    def stop(self) -> None:
        """Disconnect (the session and every unacknowledged message stay with
        Mosquitto for the next bridge with this client id) and end paho's thread."""
        self.client.disconnect()
        self.client.loop_stop()

    def ack(self, msg: Inbound) -> bool:
        """PUBACK ``msg`` if it came on the current connection (False: it will be sent
        again by Mosquitto)."""
        if msg.qos == 0:
            return True
        with self._lock:
            if msg.generation != self.generation or not self.connected.is_set():
                return False
            rc = self.client.ack(msg.mid, msg.qos)
        return rc == paho.MQTT_ERR_SUCCESS

    # ---------------------------------------------------------------- paho's thread
    def _on_connect(self, client: paho.Client, userdata: Any, flags: Any,
                    reason: ReasonCode, properties: Properties | None) -> None:
        if reason.is_failure:
            log.warning("MQTT connection refused: %s", reason)
            return
        with self._lock:
            self.generation += 1
            self.connected.set()
        log.info("connected to MQTT %s:%s (session present: %s)", self.settings.host,
                 self.settings.bridge_port, getattr(flags, "session_present", None))
        client.subscribe(shared_filter(self.settings), options=SubscribeOptions(qos=1))

    def _on_subscribe(self, client: paho.Client, userdata: Any, mid: int,
                      reasons: list[ReasonCode], properties: Properties | None) -> None:
        failed = [r for r in reasons if r.is_failure]
        if failed:
            log.error("subscription to %s refused: %s", shared_filter(self.settings), failed)
        else:
            log.info("subscribed to %s", shared_filter(self.settings))

    def _on_disconnect(self, client: paho.Client, userdata: Any, flags: Any,
                       reason: ReasonCode, properties: Properties | None) -> None:
        with self._lock:
            self.connected.clear()
            self.generation += 1  # nothing of the lost connection may be acknowledged
        log.warning("MQTT connection lost: %s", reason)

    def _on_message(self, client: paho.Client, userdata: Any,
                    message: paho.MQTTMessage) -> None:
        props = getattr(message, "properties", None)
        content_type = getattr(props, "ContentType", None) if props is not None else None
        inbound = Inbound(message.mid, message.qos, message.topic, bytes(message.payload),
                          self.generation, content_type, time.monotonic())
        self.loop.call_soon_threadsafe(self.queue.put_nowait, inbound)
