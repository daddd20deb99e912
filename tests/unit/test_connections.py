"""The one connection policy (ioccore/db/connections.py): what every connection string
carries, whoever built it."""

from __future__ import annotations

from psycopg.conninfo import conninfo_to_dict

from ioccore.db.connections import CONNECT_TIMEOUT_S, pool, with_policy
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
