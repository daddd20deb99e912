"""``/healthz`` (the process runs), ``/readyz`` (Kafka and the database answer) and
``/metrics`` (Prometheus text format). None of them needs a key."""

from __future__ import annotations

import asyncio
import time

from fastapi import APIRouter
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, generate_latest

from ioc.api.deps import ResourcesDep

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


@router.get("/metrics", summary="Prometheus metrics", response_class=Response)
async def metrics() -> Response:
    return Response(generate_latest(REGISTRY), media_type=CONTENT_TYPE_LATEST)
