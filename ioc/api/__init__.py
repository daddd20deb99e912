"""The HTTP API: ingest gateway, operator API, operator console, GeoJSON map layer,
KPIs, health and metrics.

``create_app`` is in :mod:`ioc.api.app`. One router module per area: ``ingest`` (the
gateway), ``alerts``, ``alert_stream`` (server-sent events), ``silences``, ``audit``,
``geojson``, ``kpis``, ``scorecards``, ``reports`` (periodic reports), ``health``,
``console`` (the page), ``console_data`` and
``console_feeds`` (its reads), ``incidents`` (incidents, the department workspace and
response KPIs). Shared: dependencies in ``deps``, request bodies and query
filters in ``inputs``, keys in ``auth``, rate limiting in ``ratelimit``, admission
control in ``backpressure``, body limits in ``limits``, security headers in
``headers``, how ``ioc api`` serves (uvicorn limits, the pepper check) in ``server``,
ingest validation processes in ``validation``, errors in ``errors``, JSON logs in
``logs``.
"""
