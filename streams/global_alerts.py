"""Rules that need every commune: province scope, and absence by feed or department.

A commune-partitioned worker sees only its own communes, so these rules run in exactly
one worker at a time: the holder of a PostgreSQL advisory lock (held by a dedicated
connection; if that worker dies the lock is released and another takes over on its next
tick). The holder evaluates from the database, not from the stream: one-minute window
totals from ``rollup_1m`` (what Grafana shows) and sources' wall-clock
``last_received_at``, every ``interval`` seconds, so a feed that stops entirely is still
noticed. State goes through the same store as every other alert.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg

from alerts.model import CommuneInfo, WindowPoint
from alerts.notify import generator_url, receivers_for
from alerts.rules import RuleSet
from alerts.step import Sighting
from alerts.store import load_states
from ioccore.db.connections import aconnect
from ioccore.settings import Settings
from streams.alerting import evaluator_factory
from streams.evaluation import EvaluationStep, Publish

log = logging.getLogger(__name__)

_LOCK_KEY = 0x10C_0003


class GlobalAlerts:
    """Evaluates the global rules when this process holds the lock."""

    def __init__(self, settings: Settings, conninfo: str, rules: RuleSet,
                 communes: Mapping[str, CommuneInfo], *, publish: Publish | None = None
                 ) -> None:
        self._conninfo = conninfo
        self._rules = rules.global_rules()
        self._metrics = sorted(self._rules.metrics())
        self._history = self._rules.longest_window() + timedelta(minutes=2)
        self._step = EvaluationStep(
            evaluator_factory(settings, self._rules, communes),
            receivers=receivers_for(settings), generator_url=generator_url(settings),
            publish=publish)
        self._conn: psycopg.AsyncConnection[Any] | None = None

    @property
    def has_rules(self) -> bool:
        return bool(self._rules.rules)

    async def _holder(self) -> psycopg.AsyncConnection[Any] | None:
        """The lock's connection when this process holds the lock, else None."""
        if self._conn is not None and not self._conn.closed:
            return self._conn
        conn = await aconnect(self._conninfo, purpose="global-rules", autocommit=True)
        row = await (await conn.execute("SELECT pg_try_advisory_lock(%s)", (_LOCK_KEY,))
                     ).fetchone()
        if not row or not row[0]:
            await conn.close()
            return None
        self._conn = conn
        self._step.discard()  # a new holder starts from the stored state
        ids = [r.id for r in self._rules.rules]
        self._step.evaluator.restore(await load_states(conn, rule_ids=ids, active_only=True))
        log.info("global alert rules: this worker evaluates %d rules", len(ids))
        return conn

    async def tick(self, wall_now: datetime | None = None) -> int:
        """One evaluation; returns the number of transitions stored (0 if not the holder).

        Never raises: a failed tick is one transaction that did not commit, so the
        evaluator is discarded, the lock released, and the next tick starts afresh.
        """
        if not self.has_rules:
            return 0
        try:
            conn = await self._holder()
            if conn is None:
                return 0
            wall = wall_now or datetime.now(UTC)
            async with conn.transaction():
                stored = await self._evaluate(conn, wall)
        except Exception as exc: # a timer must not die; see docstring
            log.warning("global alert evaluation failed (%s); retried next tick",
                        type(exc).__name__, exc_info=not isinstance(exc, psycopg.Error))
            await self.close()
            return 0
        await self._step.committed(stored, None)
        return len(stored)

    async def _evaluate(self, conn: psycopg.AsyncConnection[Any], wall: datetime) -> list[Any]:
        row = await (await conn.execute(
            "SELECT max(last_at) FROM rollup_1m WHERE metric = ANY(%s)", (self._metrics,))
                     ).fetchone()
        watermark: datetime = row[0] if row and row[0] else wall
        points: list[WindowPoint] = []
        if self._metrics:
            cur = await conn.execute(
                "SELECT commune_code, province_code, metric, bucket, count, sum, min, max, last"
                " FROM rollup_1m WHERE metric = ANY(%s) AND bucket >= %s",
                (self._metrics, watermark - self._history))
            points = [WindowPoint(*r) for r in await cur.fetchall()]
        cur = await conn.execute(
            "SELECT source_id, feed, department, coalesce(commune_code, ''), '', last_seen,"
            " last_received_at FROM sources")
        sightings = [Sighting(*r) for r in await cur.fetchall()]
        return await self._step.run(conn, points, sightings, wall)

    async def close(self) -> None:
        """Release the lock (closing its connection) and the evaluator's state."""
        conn, self._conn = self._conn, None
        self._step.discard()
        if conn is not None:
            with contextlib.suppress(psycopg.Error):
                await conn.close()
