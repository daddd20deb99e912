"""The HTTP API: ingest gateway, operator API, GeoJSON map layer, health and metrics.

``create_app`` is in :mod:`ioc.api.app`; one router module per area (``ingest``,
``alerts``, ``geojson``, ``health``), shared dependencies in ``deps``, keys in ``auth``,
rate limiting in ``ratelimit``, errors in ``errors``, JSON logs in ``logs``.
"""
