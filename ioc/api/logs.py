"""The API's logs: JSON lines through :mod:`ioccore.logs`, and the per-request access log.

:class:`AccessLog` is an ASGI middleware writing one line per request (logger
``ioc.api.access``): method, route template, path, status, duration and the key's
name; it also counts ``ioc_api_requests_total`` by route and status.
"""

from __future__ import annotations

import logging
import time

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ioc.api.deps import KEY_NAME_SCOPE
from ioccore.metrics import HTTP_REQUESTS

access = logging.getLogger("ioc.api.access")


def configure_api_logging(level: str = "info") -> None:
    """JSON logs for the whole process (:mod:`ioccore.logs`), uvicorn's loggers included;
    uvicorn's own access log is off (:class:`AccessLog` replaces it)."""
    from ioccore.logs import configure_logging

    configure_logging(getattr(logging, level.upper(), logging.INFO))
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        lg = logging.getLogger(name)
        lg.handlers.clear()
        lg.propagate = True
    logging.getLogger("uvicorn.access").disabled = True


def route_of(scope: Scope, status: int) -> str:
    """The matched route template (``/v1/alerts/{fingerprint}``); the path of a route
    without a template (``/openapi.json``, ``/docs``) unless it failed; else
    ``unmatched`` (so unknown paths cannot grow the metric's label set)."""
    path = getattr(scope.get("route"), "path", None)
    if path:
        return str(path)
    if status < 400:
        return str(scope.get("path", "unmatched"))
    return "unmatched"


class AccessLog:
    """ASGI middleware: one log line and one counter increment per HTTP request."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        status = 500

        async def send_wrapper(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        finally:
            route = route_of(scope, status)
            HTTP_REQUESTS.labels(route, str(status)).inc()
            client = scope.get("client")
            access.info("request", extra={
                "method": scope.get("method"), "route": route, "path": scope.get("path"),
                "status": status,
                "duration_ms": round((time.perf_counter() - start) * 1000, 2),
                "key": scope.get(KEY_NAME_SCOPE),
                "client": client[0] if client else None,
            })
