"""The HTTP API: ingest gateway, operator API, GeoJSON map layer, health and metrics.

``create_app`` (:mod:`ioc.api.app`) mounts one router module per area; its
``include_router`` calls are the list (health, ingest, alerts, GeoJSON, KPIs and the
operator console's modules at the time of writing). Shared dependencies are in ``deps``,
keys in ``auth``, rate limiting in ``ratelimit``, errors in ``errors``, JSON logs in
``logs``.
"""
