"""The worker's web pages: ``/metrics``, ``/healthz`` and ``/readyz``.

``/readyz`` is :class:`ioccore.readiness.Readiness` (the API's schema and cache): what is
down and since when, never why in words, since exception text can carry hosts, users and
SQL and the page is readable by anyone who can reach the port.
"""

from __future__ import annotations

import asyncio
from typing import Any

import faust
import prometheus_client
import psycopg

from ioccore.db.connections import aconnect
from ioccore.readiness import Readiness
from streams.health import Health

_PROM_TYPE = "text/plain; version=0.0.4"  # aiohttp refuses a charset in content_type


def register_pages(app: faust.App, *, health: Health, conninfo: str, bootstrap: str) -> None:
    """Add the three pages to ``app``'s web server."""

    @app.page("/metrics")
    async def metrics_page(web: Any, request: Any) -> Any:
        return web.bytes(prometheus_client.generate_latest(), content_type=_PROM_TYPE)

    @app.page("/healthz")
    async def healthz(web: Any, request: Any) -> Any:
        return web.json({"status": "ok"})

    readiness = Readiness({"kafka": lambda: kafka_answers(bootstrap),
                           "database": lambda: db_answers(conninfo)},
                          down=health.down, waiting=health.pending)

    @app.page("/readyz")
    async def readyz(web: Any, request: Any) -> Any:
        status, body = await readiness.answer()
        return web.json(body, status=status)


async def kafka_answers(bootstrap: str) -> bool:
    """A broker of the bootstrap list accepts a TCP connection within two seconds."""
    for server in bootstrap.split(","):
        host, _, port = server.strip().rpartition(":")
        try:
            _, writer = await asyncio.wait_for(asyncio.open_connection(host, int(port)), 2.0)
            writer.close()
            return True
        except (OSError, TimeoutError, ValueError):
            continue
    return False


async def db_answers(conninfo: str) -> bool:
    try:
        async with await aconnect(conninfo, purpose="readyz") as conn:
            await conn.execute("SELECT 1")
        return True
    except psycopg.Error:
        return False
