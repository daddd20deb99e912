"""Helpers of the API integration tests: keys, settings variants, and the app running
in-process (httpx over ASGI, or uvicorn on a free loopback port for streaming)."""

from __future__ import annotations

import asyncio
import socket
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import httpx
import psycopg
import uvicorn

from alerts import store
from alerts.model import Transition
from ioc.api.app import create_app
from ioc.api.auth import create_key, settings_pepper
from ioccore.settings import Settings


@dataclass(frozen=True)
class ApiDb:
    name: str
    conninfo: str
    settings: Settings
    """The stack's settings pointed at this database."""


def new_key(db: ApiDb, role: str, department: str | None = None,
            name: str | None = None) -> str:
    """Create a key in ``db`` and return it in clear."""
    with psycopg.connect(db.conninfo, autocommit=True) as conn:
        _, key = create_key(conn, role=role, department=department,  # type: ignore[arg-type]
                            name=name or f"{role}-{department or 'ops'}-{uuid.uuid4().hex[:6]}",
                            pepper=settings_pepper(db.settings.api))
    return key


def with_api(settings: Settings, **api: Any) -> Settings:
    return settings.model_copy(update={"api": settings.api.model_copy(update=api)})


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


@asynccontextmanager
async def api_client(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    """The app in-process with its lifespan (pool, producer) running."""
    app = create_app(settings)
    async with (app.router.lifespan_context(app),
                httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                  base_url="http://ioc.test", timeout=30) as client):
        yield client


@asynccontextmanager
async def api_server(settings: Settings) -> AsyncIterator[str]:
    """The app under uvicorn on a free loopback port; yields its base URL."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(create_app(settings), log_config=None,
                                           access_log=False, lifespan="on",
                                           timeout_graceful_shutdown=2))
    task = asyncio.create_task(server.serve(sockets=[sock]))
    try:
        for _ in range(200):
            if server.started:
                break
            await asyncio.sleep(0.05)
        else:
            raise RuntimeError("uvicorn did not start")
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await asyncio.wait_for(task, 15)
        sock.close()


async def firing_alert(db: ApiDb, *, severity: str = "warning", commune: str = "00004",
                       province: str = "01") -> str:
    """Store a firing alert through the alerts store; returns its fingerprint."""
    fp = uuid.uuid4().hex[:20]
    rule = f"it_rule_{fp[:6]}"
    at = datetime.now(UTC).replace(microsecond=0)
    labels = {"alertname": rule, "commune_code": commune, "province_code": province,
              "severity": severity}
    t = Transition(fingerprint=fp, seq=1, rule_id=rule, kind="state", from_state="inactive",
                   to_state="firing", at=at, severity=severity,  # type: ignore[arg-type]
                   labels=labels, annotations={"summary": "PM2.5 cao"}, value=80.0)
    async with await psycopg.AsyncConnection.connect(db.conninfo, autocommit=True) as conn:
        result = await store.persist(conn, [t], receivers=[])
    assert len(result.stored) == 1
    return fp
