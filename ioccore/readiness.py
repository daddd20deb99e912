"""``/readyz``: one answer, one schema and one cache for the worker and the API.

Both processes answer ``200`` when every dependency answers, else ``503``, with::

    {"status": "ready" | "not ready",
     "failed": ["database"],                              # the dependencies down
     "checks": {"kafka": "ok", "database": "failed"},
     "down_since": {"database": "2026-01-05T08:00:00+00:00"},
     "waiting": 0}                                       # work taken, not yet durable

The page is public and unauthenticated: it says ``ok`` or ``failed`` and since when,
never why in words (exception text can name hosts, users and SQL; callers log it). The
checks run at most once per ``ttl_s`` however many clients ask, and one at a time: a
probe storm costs one database connection and one broker request a second.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Mapping
from datetime import UTC, datetime
from typing import Any

Check = Callable[[], Awaitable[bool]]
"""True when the dependency answers; may raise (counted as failed)."""


def _nothing_down() -> Mapping[str, float]:
    return {}


def _nothing_waiting() -> int:
    return 0


class Readiness:
    """The cached readiness of one process.

    ``checks``: dependency name -> probe. ``down``: what the process itself saw fail
    (name -> epoch seconds since; the worker's :class:`streams.health.Health`), which
    counts as failed even while a fresh probe succeeds. ``waiting``: work taken and not
    yet durable (the worker's messages, the API's ingest requests in validation).
    """

    def __init__(self, checks: Mapping[str, Check], *, ttl_s: float = 1.0,
                 timeout_s: float = 3.0,
                 down: Callable[[], Mapping[str, float]] = _nothing_down,
                 waiting: Callable[[], int] = _nothing_waiting) -> None:
        self._checks = dict(checks)
        self._ttl_s = ttl_s
        self._timeout_s = timeout_s
        self._down = down
        self._waiting = waiting
        self._lock = asyncio.Lock()
        self._checked_at: float | None = None
        self._answers: dict[str, bool] = {}
        self._failing_since: dict[str, float] = {}

    async def _probe(self, check: Check) -> bool:
        try:
            async with asyncio.timeout(self._timeout_s):
                return await check()
        except Exception:  # the probe logs its own reason; the page says "failed" only
            return False

    async def _refresh(self) -> dict[str, bool]:
        async with self._lock:
            now = time.monotonic()
            if self._checked_at is None or now - self._checked_at >= self._ttl_s:
                names = list(self._checks)
                results = await asyncio.gather(*(self._probe(self._checks[n]) for n in names))
                self._answers = dict(zip(names, results, strict=True))
                self._checked_at = time.monotonic()
                wall = time.time()
                for name, ok in self._answers.items():
                    if ok:
                        self._failing_since.pop(name, None)
                    else:
                        self._failing_since.setdefault(name, wall)
            return self._answers

    async def answer(self) -> tuple[int, dict[str, Any]]:
        """``(status code, body)`` of ``/readyz``."""
        answers = await self._refresh()
        seen_down = self._down()
        since = dict(self._failing_since)
        for name, t in seen_down.items():
            since[name] = min(t, since.get(name, t))
        failed = [n for n in answers if not answers[n] or n in seen_down]
        body = {"status": "not ready" if failed else "ready", "failed": failed,
                "checks": {n: "failed" if n in failed else "ok" for n in answers},
                "down_since": {n: datetime.fromtimestamp(since[n], UTC).isoformat()
                               for n in failed if n in since},
                "waiting": self._waiting()}
        return (503 if failed else 200), body
