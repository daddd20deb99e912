"""Delivering the outbox: claim due rows, send, mark delivered, back off on failure.

Each round runs in one transaction: due rows are claimed with ``FOR UPDATE SKIP
LOCKED`` (several loops can run side by side), sent, and marked delivered (or given a
later ``next_attempt_at``) before the commit. Only the oldest undelivered row of each
(fingerprint, receiver) is due, so a receiver sees an alert's transitions in order even
after an outage. A failing receiver backs off exponentially up to ``retry_max_s`` and
is retried forever: when it returns it receives every transition once. A crash between
a send and the commit resends that one round (at-least-once at the edge; receivers can
de-duplicate on ``X-IOC-Delivery`` or fingerprint + seq); a clean restart sends nothing
twice.

Every ``resend_every_s`` the loop also re-posts active alerts to Alertmanager, which
otherwise resolves them after its ``resolve_timeout``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
from psycopg.rows import dict_row

from alerts import store
from alerts.alertmanager import AlertmanagerClient, active_alert
from alerts.errors import ReceiverError
from alerts.silences import silenced_by
from alerts.webhook import WebhookClient
from ioccore import metrics
from ioccore.db.connections import aconnect

log = logging.getLogger(__name__)

_CLAIM = """
SELECT id, fingerprint, seq, receiver, payload, attempts FROM alert_outbox o
WHERE delivered_at IS NULL AND next_attempt_at <= %s
  AND NOT EXISTS (SELECT 1 FROM alert_outbox e
                  WHERE e.fingerprint = o.fingerprint AND e.receiver = o.receiver
                    AND e.delivered_at IS NULL AND e.id < o.id)
ORDER BY id LIMIT %s
FOR UPDATE SKIP LOCKED
"""


def backoff_s(attempts: int, retry_max_s: float, base_s: float = 1.0) -> float:
    """Delay before the next attempt after ``attempts`` failures (with ±10 % jitter)."""
    delay: float = min(retry_max_s, base_s * 2.0 ** max(0, attempts - 1))
    return max(0.1, delay * random.uniform(0.9, 1.1))


@dataclass(slots=True)
class RoundResult:
    delivered: int = 0
    failed: int = 0
    deferred: int = 0
    by_receiver: dict[str, list[int]] = field(default_factory=dict)
    """receiver -> [delivered, failed] in this round."""

    def count(self, receiver: str, *, delivered: int = 0, failed: int = 0) -> None:
        self.delivered += delivered
        self.failed += failed
        n = self.by_receiver.setdefault(receiver, [0, 0])
        n[0] += delivered
        n[1] += failed


class OutboxDelivery:
    """The delivery loop; run one per process that should deliver (any number is safe)."""

    def __init__(self, conninfo: str, *, alertmanager: AlertmanagerClient | None,
                 webhook: WebhookClient | None, retry_max_s: float = 300.0,
                 batch: int = 100, poll_interval_s: float = 0.5,
                 resend_every_s: float = 60.0, generator_url: str = "") -> None:
        self.conninfo = conninfo
        self.alertmanager = alertmanager
        self.webhook = webhook
        self.retry_max_s = retry_max_s
        self.batch = batch
        self.poll_interval_s = poll_interval_s
        self.resend_every_s = resend_every_s
        self.generator_url = generator_url
        self._conn: psycopg.AsyncConnection[Any] | None = None
        self._last_resend = 0.0

    async def _connection(self) -> psycopg.AsyncConnection[Any]:
        if self._conn is None or self._conn.closed:
            self._conn = await aconnect(self.conninfo, purpose="outbox", autocommit=True)
        return self._conn

    async def deliver_once(self, now: datetime | None = None) -> RoundResult:
        """One round: claim due rows, send them, record the outcome; commit."""
        conn = await self._connection()
        at = now or datetime.now(UTC)
        result = await self._round(conn, at)
        for receiver, n in result.by_receiver.items():
            delivered, failed = n
            if delivered:
                metrics.OUTBOX_DELIVERED.labels(receiver).inc(delivered)
            if failed:
                metrics.OUTBOX_FAILED.labels(receiver).inc(failed)
        await self._pending(conn)
        return result

    async def _pending(self, conn: psycopg.AsyncConnection[Any]) -> None:
        """``ioc_alerts_outbox_pending`` per receiver (every process sees the same table;
        dashboards and rules take ``max`` over instances)."""
        cur = await conn.execute("SELECT receiver, count(*) FROM alert_outbox"
                                 " WHERE delivered_at IS NULL GROUP BY receiver")
        counts = {str(r): int(n) for r, n in await cur.fetchall()}
        for receiver in ("alertmanager", "webhook", *counts):
            metrics.OUTBOX_PENDING.labels(receiver).set(counts.get(receiver, 0))

    async def _round(self, conn: psycopg.AsyncConnection[Any], at: datetime) -> RoundResult:
        result = RoundResult()
        async with conn.transaction(), conn.cursor(row_factory=dict_row) as cur:
            await cur.execute(_CLAIM, (at, self.batch))
            rows = await cur.fetchall()
            failed_until: dict[str, datetime] = {}
            am_rows = [r for r in rows if r["receiver"] == "alertmanager"]
            if am_rows:
                await self._send_alertmanager(cur, am_rows, at, failed_until, result)
            for row in rows:
                if row["receiver"] != "webhook":
                    continue
                if "webhook" in failed_until:
                    await cur.execute("UPDATE alert_outbox SET next_attempt_at = %s WHERE id = %s",
                                      (failed_until["webhook"], row["id"]))
                    result.deferred += 1
                    continue
                try:
                    if self.webhook is None:
                        raise ReceiverError("webhook", "no webhook URL configured")
                    await self.webhook.post(row["payload"], str(row["id"]))
                except ReceiverError as exc:
                    failed_until["webhook"] = await self._failed(cur, row, at, exc)
                    result.count("webhook", failed=1)
                else:
                    await self._delivered(cur, row["id"], at)
                    result.count("webhook", delivered=1)
        return result

    async def _send_alertmanager(self, cur: psycopg.AsyncCursor[Any], rows: list[Any],
                                 at: datetime, failed_until: dict[str, datetime],
                                 result: RoundResult) -> None:
        alerts: list[Any] = [a for r in rows for a in r["payload"]["alerts"]]
        try:
            if self.alertmanager is None:
                raise ReceiverError("alertmanager", "no Alertmanager configured")
            await self.alertmanager.post(alerts)
        except ReceiverError as exc:
            until = await self._failed(cur, rows[0], at, exc)
            failed_until["alertmanager"] = until
            result.count("alertmanager", failed=1)
            for row in rows[1:]:
                await cur.execute(
                    "UPDATE alert_outbox SET attempts = attempts + 1, last_error = %s,"
                    " next_attempt_at = %s WHERE id = %s", (str(exc), until, row["id"]))
                result.count("alertmanager", failed=1)
            return
        for row in rows:
            await self._delivered(cur, row["id"], at)
            result.count("alertmanager", delivered=1)

    async def _delivered(self, cur: psycopg.AsyncCursor[Any], row_id: int, at: datetime) -> None:
        await cur.execute("UPDATE alert_outbox SET delivered_at = %s, attempts = attempts + 1,"
                          " last_error = NULL WHERE id = %s", (at, row_id))

    async def _failed(self, cur: psycopg.AsyncCursor[Any], row: Any, at: datetime,
                      exc: ReceiverError) -> datetime:
        attempts = int(row["attempts"]) + 1
        until = at + timedelta(seconds=backoff_s(attempts, self.retry_max_s))
        await cur.execute("UPDATE alert_outbox SET attempts = %s, last_error = %s,"
                          " next_attempt_at = %s WHERE id = %s",
                          (attempts, str(exc)[:500], until, row["id"]))
        log.warning("delivery to %s failed (attempt %d, next at %s): %s",
                    row["receiver"], attempts, until.isoformat(), exc)
        return until

    async def resend_active(self, now: datetime | None = None) -> int:
        """Re-post every active, unsilenced alert to Alertmanager; returns how many."""
        if self.alertmanager is None:
            return 0
        conn = await self._connection()
        at = now or datetime.now(UTC)
        states = await store.active_for_resend(conn)
        silences = await store.active_silences(conn, at)
        alerts = [active_alert(a.fingerprint, a.labels, a.annotations,
                               a.firing_at or a.started_at or at, self.generator_url, now=at)
                  for a in states if silenced_by(a.labels, silences, at) is None]
        for start in range(0, len(alerts), 500):
            await self.alertmanager.post(alerts[start:start + 500])
        return len(alerts)

    async def run(self, stop: asyncio.Event) -> None:
        """Deliver until ``stop`` is set; survives database and receiver outages."""
        while not stop.is_set():
            busy = False
            try:
                result = await self.deliver_once()
                busy = result.delivered > 0 and result.failed == 0
                if time.monotonic() - self._last_resend >= self.resend_every_s:
                    self._last_resend = time.monotonic()
                    await self.resend_active()
            except ReceiverError as exc:
                log.warning("alertmanager re-send failed: %s", exc)
            except psycopg.Error as exc:
                log.warning("outbox database error, reconnecting: %s", type(exc).__name__)
                await self.close()
            except Exception: # the delivery loop must outlive a bug
                log.exception("outbox round failed; retrying")
                await self.close()
            if not busy:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), self.poll_interval_s)

    async def close(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            with contextlib.suppress(psycopg.Error):
                await conn.close()
