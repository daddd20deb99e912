"""The one connection policy (ioccore/db/connections.py): what every connection string
carries, whoever built it."""

from __future__ import annotations

import ast
import asyncio
from pathlib import Path
from types import SimpleNamespace

import pytest
from psycopg.conninfo import conninfo_to_dict
from psycopg_pool import AsyncConnectionPool

from ioccore.db import connections
from ioccore.db.connections import CONNECT_TIMEOUT_S, CheckWhenIdle, pool, with_policy
from ioccore.settings import DatabaseSettings


def test_settings_conninfo_carries_the_timeouts() -> None:
    db = DatabaseSettings(connect_timeout_s=3, statement_timeout_s=2.5)
    app = conninfo_to_dict(db.conninfo())
    assert app["connect_timeout"] == "3"
    assert app["options"] == "-c statement_timeout=2500"
    owner = conninfo_to_dict(db.owner_conninfo())
    assert owner["connect_timeout"] == "3"
    assert owner["options"] == "-c statement_timeout=0"  # migrations: no statement timeout


def test_policy_names_the_part_and_keeps_the_configured_timeouts() -> None:
    db = DatabaseSettings(connect_timeout_s=3)
    params = conninfo_to_dict(with_policy(db.conninfo(), "outbox"))
    assert params["application_name"] == "ioc-outbox"
    assert params["connect_timeout"] == "3"
    assert params["options"] == "-c statement_timeout=60000"


def test_a_bare_conninfo_gets_the_default_connect_timeout() -> None:
    params = conninfo_to_dict(with_policy("host=127.0.0.1 dbname=x", "cli"))
    assert params["connect_timeout"] == str(CONNECT_TIMEOUT_S)
    assert params["application_name"] == "ioc-cli"
    assert "options" not in params


def test_maintenance_can_lift_the_statement_timeout() -> None:
    params = conninfo_to_dict(with_policy(DatabaseSettings().conninfo(), "maintenance",
                                          statement_timeout_s=0))
    assert params["options"] == "-c statement_timeout=0"


def test_pools_take_their_sizes_from_the_caller_and_open_nothing() -> None:
    db = DatabaseSettings(pool_min=2, pool_max=5)
    p = pool(db.conninfo(), purpose="api", min_size=db.pool_min, max_size=db.pool_max)
    assert (p.min_size, p.max_size, p.name) == (2, 5, "ioc-api")
    assert isinstance(p.conninfo, str)
    assert conninfo_to_dict(p.conninfo)["application_name"] == "ioc-api"
    assert p.closed  # not opened: no connection attempted


DEPLOYED = ("ioc", "ioccore", "alerts", "streams", "geo")
"""The packages the worker, the API and the CLI run (tools/ and tests may connect plainly)."""
POLICY = Path("ioccore/db/connections.py")


ROOT = Path(__file__).resolve().parents[2]


def _bypasses(path: Path) -> list[str]:
    """Calls that open a connection or pool without the policy: ``psycopg.connect``,
    ``<Async>Connection.connect``, ``<Async>ConnectionPool(...)``."""
    found = []
    for node in ast.walk(ast.parse((ROOT / path).read_text(encoding="utf-8"))):
        if not isinstance(node, ast.Call):
            continue
        f = node.func
        name = ast.unparse(f)
        if (isinstance(f, ast.Attribute) and f.attr == "connect"
                and name in ("psycopg.connect", "psycopg.AsyncConnection.connect",
                             "psycopg.Connection.connect", "AsyncConnection.connect",
                             "Connection.connect")) or \
                name.split(".")[-1] in ("AsyncConnectionPool", "ConnectionPool"):
            found.append(f"{path}:{node.lineno}: {name}")
    return found


def test_deployed_code_connects_only_through_the_policy() -> None:
    files = [p.relative_to(ROOT) for pkg in DEPLOYED for p in sorted((ROOT / pkg).rglob("*.py"))]
    assert len(files) > 50
    bypass = [b for p in files if p != POLICY for b in _bypasses(p)]
    assert bypass == []
    assert _bypasses(POLICY)  # the scan does see a connect where there is one


def test_a_pooled_connection_is_checked_only_after_it_sat_idle(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Stage 2 takes its connection for every batch: a round trip each was a tenth of a
    small batch; a connection taken again within ``idle_s`` is not checked, one idle
    longer is, and ``idle_s`` 0 checks every time (the former behaviour)."""
    checked: list[object] = []

    async def check_connection(conn: object) -> None:
        checked.append(conn)

    monkeypatch.setattr(AsyncConnectionPool, "check_connection", check_connection)
    clock = [100.0]
    monkeypatch.setattr(connections, "time", SimpleNamespace(monotonic=lambda: clock[0]))
    conn, other = _Conn(), _Conn()
    check = CheckWhenIdle(1.0)

    async def take(c: object, at: float) -> None:
        clock[0] = at
        await check(c)  # type: ignore[arg-type]

    asyncio.run(take(conn, 100.0))  # never seen: checked
    asyncio.run(take(conn, 100.5))  # taken again within a second: not checked
    asyncio.run(take(other, 100.6))  # another connection: its own clock
    asyncio.run(take(conn, 101.4))  # 0.9 s after its last use: still not checked
    asyncio.run(take(conn, 102.5))  # idle 1.1 s: checked
    assert checked == [conn, other, conn]

    checked.clear()
    always = CheckWhenIdle(0.0)
    for at in (200.0, 200.0, 200.1):
        clock[0] = at
        asyncio.run(always(conn))  # type: ignore[arg-type]
    assert checked == [conn, conn, conn]


class _Conn:
    """Stands for a pooled connection (only its identity matters to the check)."""
