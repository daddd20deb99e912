"""``/healthz`` (the process runs), ``/readyz`` (Kafka and the database answer) and
``/metrics`` (Prometheus text format).

``/healthz`` and ``/readyz`` need no key. ``/metrics`` is not public (issue 24, finding
10: it names departments, sources' counts and internal errors): with
``api.metrics_token`` set it needs ``Authorization: Bearer <token>`` (Prometheus's
``authorization.credentials_file``), without it only loopback clients get it (the
local stack's Prometheus).
"""

from __future__ import annotations

import hmac
import ipaddress

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, generate_latest

from ioc.api.auth import bearer_token
from ioc.api.deps import Resources, ResourcesDep
from ioc.api.errors import ForbiddenError, UnauthorizedError
from ioccore.readiness import Readiness

router = APIRouter(tags=["health"])
_READY_KEY = "health.readyz"


@router.get("/healthz", summary="Liveness: 200 while the process runs")
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


@router.get("/readyz", summary="Readiness: 200 only when Kafka and the database answer",
            responses={503: {"description": "Kafka or the database does not answer."}})
async def readyz(res: ResourcesDep) -> JSONResponse:
    status, body = await _readiness(res).answer()
    return JSONResponse(body, status_code=status)


def _readiness(res: Resources) -> Readiness:
    """This process's one :class:`Readiness` (the worker's schema and cache): a Kafka
    metadata request and ``SELECT 1`` on the pool, at most once a second."""
    cached = res.extras.get(_READY_KEY)
    if isinstance(cached, Readiness):
        return cached

    async def kafka() -> bool:
        return await res.check_kafka() is None

    async def database() -> bool:
        return await res.check_database() is None

    readiness = Readiness({"kafka": kafka, "database": database},
                          waiting=lambda: sum(res.validation_inflight.values()))
    res.extras[_READY_KEY] = readiness
    return readiness


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
