"""The MQTT bridge: Mosquitto -> the ingest path -> Kafka, at least once.

:mod:`.messages` turns one MQTT message into envelope parts (ioc envelopes or SenML,
the department and source from the topic), :mod:`.client` holds the paho-mqtt client
(MQTT 5, shared subscription, persistent session, manual acknowledgement) and
:mod:`.bridge` the loop: take a batch, hand it to the admission step (validation,
ownership, Kafka: built by ``ioc.mqtt_bridge`` from the HTTP gateway's own functions),
and acknowledge the batch's messages to Mosquitto only once that step returned, which
it does only after Kafka acknowledged every record and dead letter.
"""
