"""The FastAPI app factory: routers, error handling, access log, lifespan.

``create_app(settings)`` builds an app whose lifespan starts and closes its
:class:`ioc.api.deps.Resources` (database pool, Kafka producer). Tests drive it
in-process (``httpx.ASGITransport`` inside ``app.router.lifespan_context(app)``) or
with uvicorn; ``ioc api`` serves it with uvicorn.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from ioc.api import (
    alert_stream,
    alertmanager_hook,
    alerts,
    audit,
    console,
    console_data,
    console_feeds,
    federation,
    feedback,
    feedback_console,
    geojson,
    health,
    incidents,
    ingest,
    kpis,
    ngsi,
    open311,
    reports,
    scorecards,
    silences,
)
from ioc.api.deps import Resources
from ioc.api.errors import ApiError
from ioc.api.headers import SecurityHeaders
from ioc.api.limits import BodyLimit
from ioc.api.logs import AccessLog
from ioccore.settings import Settings, get_settings

log = logging.getLogger("ioc.api")

DESCRIPTION = """\
HTTP API of the provincial Intelligent Operations Center.

* **Ingest gateway** — `POST /v1/events` for departments without a Kafka client
  (department API keys).
* **Operator API** — alerts, acknowledgements, silences, a live stream
  (viewer, operator and admin keys).
* **Map** — `GET /v1/geo/communes`, a GeoJSON layer of communes with their state.
* **Alertmanager receivers** — `POST /v1/alertmanager/webhook/{receiver}` records the
  notifications Alertmanager routed (the receiver's bearer token).

Authenticate with `Authorization: Bearer <key>`; keys are issued with
`ioc api keys create`. See docs/api.md; this schema is at `/openapi.json`.
"""


def create_app(settings: Settings | None = None, *,
               resources: Resources | None = None) -> FastAPI:
    """A ready-to-serve app; ``resources`` lets tests inject their own."""
    cfg = settings or get_settings()
    res = resources or Resources(cfg)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await res.start()
        try:
            yield
        finally:
            await res.close()

    # no /docs, /redoc: FastAPI's pages load JavaScript from a public CDN on this
    # origin (issue 24, finding 10); /openapi.json stays for tools
    app = FastAPI(title="ioc API", version="1", description=DESCRIPTION, lifespan=lifespan,
                  docs_url=None, redoc_url=None)
    app.state.resources = res

    @app.exception_handler(ApiError)
    async def api_error(request: Request, exc: ApiError) -> JSONResponse:
        return JSONResponse(exc.body(), status_code=exc.status, headers=exc.headers())

    @app.exception_handler(Exception)
    async def internal_error(request: Request, exc: Exception) -> JSONResponse:
        # the exception's text stays in the log: it can name hosts, SQL or file paths
        log.error("unhandled error on %s %s", request.method, request.url.path,
                  exc_info=exc)
        return JSONResponse({"error": "internal_error", "message": "internal error; it "
                             "has been logged"}, status_code=500)

    app.include_router(health.router)
    app.include_router(ingest.router)
    app.include_router(ngsi.router)
    # the stream's path first: /v1/alerts/stream would otherwise match /v1/alerts/{fingerprint}
    for part in (alert_stream, alerts, silences, audit):
        app.include_router(part.router)
    app.include_router(geojson.router)
    app.include_router(kpis.router)
    app.include_router(scorecards.router)
    app.include_router(reports.router)
    app.include_router(incidents.router)
    app.include_router(federation.router)
    app.include_router(alertmanager_hook.router)
    app.include_router(feedback.router)
    app.include_router(feedback_console.router)  # the console's report views
    open311.register(app)  # Open311 GeoReport v2, with the spec's error format
    for part in (console_data, console_feeds, console):  # the operator console
        app.include_router(part.router)
    app.add_middleware(BodyLimit, ingest_limit=cfg.api.max_body_bytes,
                       other_limit=cfg.api.max_operator_body_bytes)
    app.add_middleware(AccessLog)
    app.add_middleware(SecurityHeaders)
    return app
