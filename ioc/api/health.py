"""``/healthz`` (the process runs), ``/readyz`` (Kafka and the database answer) and
``/metrics`` (Prometheus text format). None of them needs a key."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, generate_latest

from ioc.api.deps import Resources, ResourcesDep
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


@router.get("/metrics", summary="Prometheus metrics", response_class=Response)
async def metrics() -> Response:
    return Response(generate_latest(REGISTRY), media_type=CONTENT_TYPE_LATEST)
