"""The incident loop: intake and escalation timers.

A round runs every ``poll_interval_s`` and at once when alerts change: a second
connection LISTENs on ``ioc_alerts_changed`` (a statement trigger on ``alerts``,
migration 0052, notifies at COMMIT), so a firing alert is in an incident within a
round's time, not a poll interval. Run any number (every worker does, or ``ioc
incidents run``): the intake round is serialised by an advisory lock and each timer
fires once under its incident's row lock. Survives database outages (reconnects) and
bugs (logs, retries).

Both connections follow the connection policy (:mod:`ioccore.db.connections`): a
connect timeout, so a reconnect against an unreachable host fails in seconds and the
loop keeps its rhythm; the statement timeout, so a stuck round cannot hold the intake
lock for ever; and the names ``ioc-incidents`` and ``ioc-incidents-listen`` in
``pg_stat_activity``.
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
from ioccore.db.connections import aconnect

log = logging.getLogger(__name__)

CHANNEL = "ioc_alerts_changed"
PURPOSE = "incidents"
"""The rounds' connection is ``ioc-incidents``; the listener's ``ioc-incidents-listen``."""
MIN_GAP_S = 0.1
"""Least time between two rounds woken by notifications: alerts are written only on
transitions, and a burst of them (many batches of a storm) costs at most 10 rounds/s."""
RETRY_S = 1.0
"""After a database error the next round comes this soon (or sooner, by the poll): a
connection the server killed (a restart, ``pg_terminate_backend``) fails its first round,
and the alerts missed meanwhile should not wait a long poll interval."""


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
            self._conn = await aconnect(self.conninfo, purpose=PURPOSE, autocommit=True)
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
        log.info("incident runner %s started (poll every %.2f s, woken by %s)", self.name,
                 self.poll_interval_s, CHANNEL)
        wake = asyncio.Event()
        listener = asyncio.create_task(self._listen(wake, stop), name="incidents-listen")
        try:
            while not stop.is_set():
                wake.clear()
                wait = self.poll_interval_s
                try:
                    await self.round()
                except psycopg.Error as exc:
                    log.warning("incident round: database error, reconnecting: %s",
                                type(exc).__name__)
                    await self.close()
                    wait = min(wait, RETRY_S)
                except Exception:  # the loop must outlive a bug
                    log.exception("incident round failed; retrying")
                    await self.close()
                await self._wait(wake, stop, wait)
        finally:
            listener.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await listener
            await self.close()

    async def _wait(self, wake: asyncio.Event, stop: asyncio.Event, seconds: float) -> None:
        """Until ``seconds`` passed, alerts changed, or ``stop``."""
        waiters = [asyncio.create_task(wake.wait()), asyncio.create_task(stop.wait())]
        try:
            await asyncio.wait(waiters, timeout=seconds,
                               return_when=asyncio.FIRST_COMPLETED)
        finally:
            for w in waiters:
                w.cancel()
        if wake.is_set() and not stop.is_set():
            await asyncio.sleep(MIN_GAP_S)

    async def _listen(self, wake: asyncio.Event, stop: asyncio.Event) -> None:
        """Sets ``wake`` on every notification; reconnects after a failure (the poll
        interval covers the gap)."""
        while not stop.is_set():
            try:
                async with await aconnect(self.conninfo, purpose=f"{PURPOSE}-listen",
                                          autocommit=True) as conn:
                    await conn.execute(f"LISTEN {CHANNEL}")
                    wake.set()  # anything missed while not listening
                    async for _ in conn.notifies():
                        wake.set()
            except psycopg.Error as exc:
                log.warning("incident listener: %s; polling until it reconnects",
                            type(exc).__name__)
                await asyncio.sleep(1.0)

    async def close(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            with contextlib.suppress(psycopg.Error):
                await conn.close()
