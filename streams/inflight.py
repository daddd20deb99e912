"""Stage 2's in-flight bytes, and the gate stage 1 waits at while they are too many.

A draining worker's peak memory is its batches in flight, and those are mostly stage
2's: enriched messages faust has fetched into the stream buffer (256 messages, up to
1,000 records each) plus the batch being collected or written, decoded at about 2.6x
their encoded size. Their number of messages says little about their bytes, and stage 1,
which reads faster than stage 2 stores, keeps the enriched topic's backlog (and so
faust's buffer) full. :class:`InFlight` counts the bytes stage 2 holds in this process:
those its batch has taken and not yet committed (exact, :meth:`take` / :meth:`release`)
and those waiting in faust's buffer (:attr:`queued`, read when asked). Stage 1's reader
asks :meth:`over` before each batch and, above ``max_bytes``, pauses its partitions
(nothing more is fetched or read) until :meth:`wait_room` says stage 2 committed enough.

Only this process's stage 2 counts: a worker whose enriched partitions are another
worker's never waits for them, so no worker can stall another (scale-out keeps working),
and a stage 2 that cannot commit (database down) holds stage 1 back, which is the
backpressure wanted. A stage-1 batch already taken always finishes: the gate is checked
before a batch, never inside one.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable

from ioccore import metrics


class InFlight:
    """Bytes stage 2 holds; see the module docstring."""

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        """0 or less: no bound (stage 1 never waits)."""
        self.held = 0
        """Bytes of enriched message values taken into a stage-2 batch, not yet committed."""
        self.queued: Callable[[], int] = lambda: 0
        """Bytes waiting in faust's stream buffer (set by the stream once it runs)."""
        self._room = asyncio.Event()
        self._room.set()

    def total(self) -> int:
        return self.held + self.queued()

    def over(self) -> bool:
        """Whether stage 1 should wait before taking another batch."""
        if self.max_bytes <= 0:
            return False
        total = self.total()
        metrics.STAGE2_INFLIGHT_BYTES.set(total)
        if total <= self.max_bytes:
            return False
        self._room.clear()
        return True

    def take(self, n: int) -> None:
        self.held += n

    def release(self, n: int) -> None:
        """``n`` bytes committed (or dropped by a revocation): stage 1 may look again."""
        self.held = max(0, self.held - n)
        self._room.set()

    async def wait_room(self, timeout_s: float) -> None:
        """Return when stage 2 released bytes, or after ``timeout_s`` (the caller checks
        :meth:`over` again: faust's buffer may have refilled meanwhile)."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._room.wait(), timeout_s)
