"""``/healthz`` (the process runs), ``/readyz`` (Kafka and the database answer) and
``/metrics`` (Prometheus text format). None of them needs a key."""

from __future__ import annotations

import asyncio

from fastapi import APIRouter
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, generate_latest

from ioc.api.deps import ResourcesDep

router = APIRouter(tags=["health"])


@router.get("/healthz", summary="Liveness: 200 while the process runs")
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


@router.get("/readyz", summary="Readiness: 200 only when Kafka and the database answer",
            responses={503: {"description": "Kafka or the database does not answer."}})
async def readyz(res: ResourcesDep) -> JSONResponse:
    kafka, database = await asyncio.gather(res.check_kafka(), res.check_database())
    checks = {"kafka": "failed" if kafka else "ok", "database": "failed" if database else "ok"}
    failed = [name for name, problem in (("kafka", kafka), ("database", database)) if problem]
    body = {"status": "ready" if not failed else "not ready", "failed": failed,
            "checks": checks}
    return JSONResponse(body, status_code=503 if failed else 200)


@router.get("/metrics", summary="Prometheus metrics", response_class=Response)
async def metrics() -> Response:
    return Response(generate_latest(REGISTRY), media_type=CONTENT_TYPE_LATEST)
