"""The stream processing: stages, their batching and retry, sinks and the faust app.

The public surface is the modules in ``__all__``: ``app`` (``build_app`` and the
``WorkerResources`` it composes), ``health`` (``Health``, ``quiet_libraries``),
``ownership`` (department topics and the registry check), ``alerting``
(``commune_names``), ``sinks`` (the TimescaleDB sink), ``mqtt`` (the MQTT bridge loop,
composed by ``ioc.mqtt_bridge``) and ``federation`` (publisher and national ingest,
composed by ``ioc.federation``); the entry points also take ``stage1.DeadLetter``.
Stages, batching, retry, outputs, pages and timers are internals composed by ``app``;
an import-linter contract
(pyproject.toml) keeps the entry points from reaching into them. Nothing is imported
here eagerly (faust is heavy).
"""

__all__ = ["alerting", "app", "federation", "health", "mqtt", "ownership", "sinks"]
