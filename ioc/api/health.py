"""``/healthz`` (the process runs), ``/readyz`` (Kafka and the database answer) and
``/metrics`` (Prometheus text format).

``/healthz`` and ``/readyz`` need no key. ``/metrics`` is not public (issue 24, finding
10: it names departments, sources' counts and internal errors): with
``api.metrics_token`` set it needs ``Authorization: Bearer <token>`` (Prometheus's
``authorization.credentials_file``), without it only loopback clients get it (the
local stack's Prometheus).
"""

from __future__ import annotations

import asyncio
import hmac
import ipaddress
import time

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, generate_latest

from ioc.api.auth import bearer_token
from ioc.api.deps import ResourcesDep
from ioc.api.errors import ForbiddenError, UnauthorizedError

router = APIRouter(tags=["health"])
_READY_KEY = "health.readyz"
_READY_TTL_S = 1.0


@router.get("/healthz", summary="Liveness: 200 while the process runs")
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


@router.get("/readyz", summary="Readiness: 200 only when Kafka and the database answer",
            responses={503: {"description": "Kafka or the database does not answer."}})
async def readyz(res: ResourcesDep) -> JSONResponse:
    # public and unauthenticated: the checks run at most once a second, however many
    # clients ask (each would otherwise take a database connection and a broker request)
    now = time.monotonic()
    cached = res.extras.get(_READY_KEY)
    if cached is not None and now - cached[0] < _READY_TTL_S:
        kafka, database = cached[1]
    else:
        kafka, database = await asyncio.gather(res.check_kafka(), res.check_database())
        res.extras[_READY_KEY] = (now, (kafka, database))
    checks = {"kafka": "failed" if kafka else "ok", "database": "failed" if database else "ok"}
    failed = [name for name, problem in (("kafka", kafka), ("database", database)) if problem]
    body = {"status": "ready" if not failed else "not ready", "failed": failed,
            "checks": checks}
    return JSONResponse(body, status_code=503 if failed else 200)


@router.get("/metrics", summary="Prometheus metrics (metrics token, or loopback)",
            response_class=Response,
            responses={401: {"description": "The metrics token is wrong or missing."},
                       403: {"description": "No metrics token set and not loopback."}})
async def metrics(request: Request, res: ResourcesDep) -> Response:
    token = res.settings.api.metrics_token
    if token is not None:
        given = bearer_token(request.headers.get("authorization")) or ""
        if not hmac.compare_digest(given.encode(), token.get_secret_value().encode()):
            raise UnauthorizedError("/metrics needs 'Authorization: Bearer <metrics token>'",
                                    code="invalid_metrics_token")
    elif not _loopback(request.client.host if request.client else ""):
        raise ForbiddenError("/metrics answers loopback clients only (or set "
                             "IOC__API__METRICS_TOKEN)", code="metrics_loopback_only")
    return Response(generate_latest(REGISTRY), media_type=CONTENT_TYPE_LATEST)


def _loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
