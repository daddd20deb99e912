"""The runner of singleton rules: rules that need every commune, run by one worker at a time.

A commune-partitioned worker sees only its own communes, so province-scope rules, absence
by feed or department (:mod:`streams.global_rules`) and KPI targets
(:mod:`streams.kpi_target_rules`) run in exactly one worker: the holder of one PostgreSQL
advisory lock, held by a dedicated connection (opened with a timeout). If that worker
dies the lock is released and another takes over on its next tick, starting from the
stored state (active alerts, the scopes' stored progress).

Each tick runs every kind that is due, each in its own transaction, through the one
evaluation step (:mod:`streams.evaluation`): plan (evaluate + persist), commit, publish.
A failed tick never raises: its kind's transaction did not commit, so every kind's
evaluator is discarded, the lock released, and the next tick starts afresh.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any, Protocol

import psycopg

from ioccore.db.connections import aconnect
from streams.evaluation import Planned

log = logging.getLogger(__name__)

LOCK_KEY = 0x10C_0003
"""The advisory lock of the singleton rules (one key for every kind)."""


class SingletonKind(Protocol):
    """One kind of singleton rule, evaluated from the database."""

    name: str
    every_s: float
    """At most this often (wall clock)."""

    @property
    def has_rules(self) -> bool: ...

    async def restore(self, conn: psycopg.AsyncConnection[Any]) -> None:
        """This worker just took the lock: a fresh evaluator from the stored state."""

    async def plan(self, conn: psycopg.AsyncConnection[Any], wall: datetime) -> Planned:
        """Evaluate and store, inside the open transaction."""

    def commit(self, planned: Planned) -> None: ...
    async def publish(self, planned: Planned) -> None: ...
    def discard(self) -> None: ...


class SingletonRules:
    """Runs its kinds while this process holds the lock."""

    def __init__(self, conninfo: str, kinds: Sequence[SingletonKind], *,
                 lock_key: int = LOCK_KEY) -> None:
        self._conninfo = conninfo
        self.kinds = [k for k in kinds if k.has_rules]
        self._lock_key = lock_key
        self._conn: psycopg.AsyncConnection[Any] | None = None
        self._last: dict[str, float] = {}

    @property
    def has_rules(self) -> bool:
        return bool(self.kinds)

    async def _holder(self) -> psycopg.AsyncConnection[Any] | None:
        """The lock's connection when this process holds the lock, else None."""
        if self._conn is not None and not self._conn.closed:
            return self._conn
        conn = await aconnect(self._conninfo, purpose="singleton-rules", autocommit=True)
        try:
            row = await (await conn.execute("SELECT pg_try_advisory_lock(%s)",
                                            (self._lock_key,))).fetchone()
            if not row or not row[0]:
                await conn.close()
                return None
            for kind in self.kinds:  # a new holder starts from the stored state
                await kind.restore(conn)
        except BaseException:
            await conn.close()
            raise
        self._conn = conn
        self._last.clear()
        log.info("singleton rules: this worker evaluates %s",
                 ", ".join(k.name for k in self.kinds))
        return conn

    async def tick(self, wall_now: datetime | None = None, *, force: bool = False) -> int:
        """One round: every kind that is due (``force``: every kind). Returns the number
        of transitions stored (0 if not the holder). Never raises (module docstring)."""
        if not self.kinds:
            return 0
        done: list[tuple[SingletonKind, Planned]] = []
        try:
            conn = await self._holder()
            if conn is None:
                return 0
            wall = wall_now or datetime.now(UTC)
            for kind in self.kinds:
                now = time.monotonic()
                last = self._last.get(kind.name)
                if not force and last is not None and now - last < kind.every_s:
                    continue
                async with conn.transaction():
                    planned = await kind.plan(conn, wall)
                kind.commit(planned)
                self._last[kind.name] = now
                done.append((kind, planned))
        except Exception as exc:  # a timer must not die; see the module docstring
            log.warning("singleton rules: evaluation failed (%s); retried next tick",
                        type(exc).__name__, exc_info=not isinstance(exc, psycopg.Error))
            await self.close()
        stored = 0
        for kind, planned in done:
            stored += len(planned.stored)
            try:
                await kind.publish(planned)
            except Exception as exc:
                log.warning("singleton rules: publishing %s transitions failed (%s)",
                            kind.name, type(exc).__name__)
        return stored

    async def close(self) -> None:
        """Release the lock (closing its connection) and every kind's state."""
        conn, self._conn = self._conn, None
        for kind in self.kinds:
            kind.discard()
        if conn is not None:
            with contextlib.suppress(psycopg.Error):
                await conn.close()
