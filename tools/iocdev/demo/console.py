"""What `ioc demo` prints about the operator console: its URL and, with --keep-running,
an operator key to sign in with (created in the demo's database, shown once)."""

from __future__ import annotations

import psycopg

from ioc.api.auth import create_key, settings_pepper
from ioccore.settings import Settings


def console_url(settings: Settings) -> str:
    return f"http://{settings.api.host}:{settings.api.port}/console/"


def console_lines(settings: Settings, *, keep_running: bool) -> list[str]:
    """Lines for the demo's summary; a fresh operator key only while the API stays up."""
    lines = [f"console: {console_url(settings)}"]
    if not keep_running:
        lines.append("         (the API stopped with the demo; `ioc demo --keep-running` "
                     "keeps the console up over the simulated province)")
        return lines
    with psycopg.connect(settings.database.conninfo(), autocommit=True) as conn:
        info, key = create_key(conn, role="operator", department=None,
                               name="demo-console-operator",
                               pepper=settings_pepper(settings.api), actor="demo")
    db = settings.database.dbname
    lines.append(f"console key (operator {info.prefix}, shown once; revoke with "
                 f"`IOC__DATABASE__DBNAME={db} ioc api keys revoke {info.prefix}`; the next "
                 f"demo drops that database and the key with it): {key}")
    return lines
