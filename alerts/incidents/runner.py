"""The incident loop: intake and escalation timers, every ``poll_interval_s``.

Run any number (``ioc incidents run``, one per worker host is typical): the intake
round is serialised by an advisory lock and each timer fires once under its
incident's row lock. Survives database outages (reconnects) and bugs (logs, retries).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import psycopg

from alerts.incidents.config import IncidentConfig
from alerts.incidents.intake import intake_once
from alerts.incidents.timers import fire_due

log = logging.getLogger(__name__)


def _now() -> datetime:
    return datetime.now(UTC)


class IncidentRunner:
    def __init__(self, conninfo: str, cfg: IncidentConfig, *, poll_interval_s: float = 0.25,
                 clock: Callable[[], datetime] = _now, name: str | None = None) -> None:
        self.conninfo = conninfo
        self.cfg = cfg
        self.poll_interval_s = poll_interval_s
        self.clock = clock
        self.name = name or f"{socket.gethostname()}:{os.getpid()}"
        self._conn: psycopg.AsyncConnection[Any] | None = None

    async def _connection(self) -> psycopg.AsyncConnection[Any]:
        if self._conn is None or self._conn.closed:
            self._conn = await psycopg.AsyncConnection.connect(self.conninfo, autocommit=True)
        return self._conn

    async def round(self) -> tuple[list[int], int]:
        """One intake round and one timer round: (incidents opened/reopened, fired)."""
        conn = await self._connection()
        opened = await intake_once(conn, self.cfg, self.clock())
        fired = await fire_due(conn, self.cfg, self.clock(), fired_by=self.name)
        for f in fired:
            log.info("incident %d: %s deadline missed, escalated to level %d (%s, %s)",
                     f.incident_id, f.kind, f.level, f.target_role, f.target_name)
        return opened, len(fired)

    async def run(self, stop: asyncio.Event) -> None:
        log.info("incident runner %s started (poll every %.2f s)", self.name,
                 self.poll_interval_s)
        while not stop.is_set():
            try:
                await self.round()
            except psycopg.Error as exc:
                log.warning("incident round: database error, reconnecting: %s",
                            type(exc).__name__)
                await self.close()
            except Exception:  # the loop must outlive a bug
                log.exception("incident round failed; retrying")
                await self.close()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), self.poll_interval_s)
        await self.close()

    async def close(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            with contextlib.suppress(psycopg.Error):
                await conn.close()
