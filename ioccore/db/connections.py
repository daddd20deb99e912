"""The one connection policy: every PostgreSQL connection and pool of the worker, the API
and the CLI is made here.

Every connection gets

* a **connect timeout** (``database.connect_timeout_s``, 5 s): an unreachable host fails
  in seconds instead of at the kernel's TCP timeout, so a retry loop or ``/readyz``
  answers while the database is away;
* the application role's **statement timeout** (``database.statement_timeout_s``,
  60 s): a runaway query cannot hold a batch or an API request for ever; migrations
  (owner role) and maintenance (a batch job) run without one;
* an ``application_name`` naming the process part that holds it (``ioc-stage2``,
  ``ioc-outbox``, ``ioc-api``, ``ioc-cli``...), so ``pg_stat_activity`` tells them apart.

:meth:`ioccore.settings.DatabaseSettings.conninfo` puts the configured timeouts into the
connection string every part receives; a string without them (an operator's DSN, a test's)
gets the defaults below. Pools take their sizes from the caller, which reads
``database.pool_min`` / ``pool_max``.
"""

from __future__ import annotations

import time
import weakref
from collections.abc import Awaitable, Callable
from typing import Any

import psycopg
from psycopg.conninfo import conninfo_to_dict, make_conninfo
from psycopg.rows import TupleRow
from psycopg_pool import AsyncConnectionPool

CONNECT_TIMEOUT_S = 5
"""When neither the conninfo nor the settings say otherwise."""


def with_policy(conninfo: str, purpose: str, *,
                statement_timeout_s: float | None = None) -> str:
    """``conninfo`` with the policy applied: a connect timeout when it has none, the
    ``application_name`` ``ioc-<purpose>``, and ``statement_timeout_s`` (0: none) when
    given, replacing the conninfo's."""
    params: dict[str, Any] = dict(conninfo_to_dict(conninfo))
    params.setdefault("connect_timeout", CONNECT_TIMEOUT_S)
    params["application_name"] = f"ioc-{purpose}"
    if statement_timeout_s is not None:
        params["options"] = statement_timeout_option(statement_timeout_s)
    return make_conninfo("", **params)


def statement_timeout_option(seconds: float) -> str:
    """The libpq ``options`` value setting the session's statement timeout (0: none)."""
    return f"-c statement_timeout={round(seconds * 1000)}"


def connect(conninfo: str, *, purpose: str, autocommit: bool = False,
            statement_timeout_s: float | None = None) -> psycopg.Connection[TupleRow]:
    """A blocking connection (CLI, start-up reads, migrations, maintenance)."""
    return psycopg.connect(with_policy(conninfo, purpose,
                                       statement_timeout_s=statement_timeout_s),
                           autocommit=autocommit)


async def aconnect(conninfo: str, *, purpose: str, autocommit: bool = False
                   ) -> psycopg.AsyncConnection[TupleRow]:
    """An asyncio connection (the worker's lock holders, outbox, registry checks)."""
    return await psycopg.AsyncConnection.connect(with_policy(conninfo, purpose),
                                                 autocommit=autocommit)


class CheckWhenIdle:
    """A pool's ``check``: a round trip (psycopg_pool's ``check_connection``) for a
    connection taken more than ``idle_s`` after it was last taken; none within it.

    A connection back in the pool was healthy when returned (the pool closes one it
    finds broken), so the check guards against what happened while it sat idle: a
    PostgreSQL restart. Stage 2 takes its connection for every batch (tens a second
    under load), and one round trip each was a tenth of a small batch's time. Within
    ``idle_s`` of the last use a restart is found by the batch's first statement
    instead: the batch fails, the pool drops the connection and the batch is retried
    on a new one. ``idle_s`` 0: always checked."""

    def __init__(self, idle_s: float) -> None:
        self._idle_s = idle_s
        self._taken: weakref.WeakKeyDictionary[psycopg.AsyncConnection[Any], float] = \
            weakref.WeakKeyDictionary()

    async def __call__(self, conn: psycopg.AsyncConnection[Any]) -> None:
        now = time.monotonic()
        last = self._taken.get(conn)
        if last is None or now - last >= self._idle_s:
            await AsyncConnectionPool.check_connection(conn)
        self._taken[conn] = now


def pool(conninfo: str, *, purpose: str, min_size: int, max_size: int,
         timeout_s: float = 30.0, reconnect_timeout_s: float = 300.0,
         check: bool = False, check_idle_s: float = 0.0, autocommit: bool = False,
         configure: Callable[[psycopg.AsyncConnection[Any]], Awaitable[None]] | None = None,
         ) -> AsyncConnectionPool[psycopg.AsyncConnection[TupleRow]]:
    """An asyncio pool, not yet open (``await pool.open()``). ``check``: a connection is
    checked when taken, so one a PostgreSQL restart killed is replaced, not used; with
    ``check_idle_s`` only when it was idle that long (:class:`CheckWhenIdle`)."""
    return AsyncConnectionPool(
        with_policy(conninfo, purpose), min_size=min_size, max_size=max_size, open=False,
        timeout=timeout_s, reconnect_timeout=reconnect_timeout_s, name=f"ioc-{purpose}",
        configure=configure, check=CheckWhenIdle(check_idle_s) if check else None,
        kwargs={"autocommit": True} if autocommit else None)
