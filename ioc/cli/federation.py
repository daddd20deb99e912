"""`ioc federation` commands: a province's publisher, the nation's ingest, their state."""

from __future__ import annotations

from typing import Annotated

import typer

app = typer.Typer(no_args_is_help=True)
DatabaseOpt = Annotated[str | None, typer.Option(help="Database name.")]
LogLevelOpt = Annotated[str, typer.Option(
    help="Log level; debug adds a timing line per round/batch (benchmarks/bench_federation).")]


@app.command("publish")
def publish(
    database: DatabaseOpt = None,
    once: Annotated[bool, typer.Option(help="One round (queued keys and snapshots).")] = False,
    log_level: LogLevelOpt = "info",
) -> None:
    """Publish this province's summaries to the federation topic until stopped."""
    import asyncio

    from ioc.federation import publish as run
    from ioccore.logs import configure_logging
    from ioccore.settings import get_settings

    configure_logging()
    _set_level(log_level)
    asyncio.run(run(get_settings(), database=database, once=once))


@app.command("ingest")
def ingest(database: DatabaseOpt = None, log_level: LogLevelOpt = "info") -> None:
    """(National) store every province's replicated summaries until stopped."""
    import asyncio

    from ioc.federation import ingest as run
    from ioccore.logs import configure_logging
    from ioccore.settings import get_settings

    configure_logging()
    _set_level(log_level)
    asyncio.run(run(get_settings(), database=database))


@app.command("status")
def status(database: DatabaseOpt = None) -> None:
    """Per province: newest record's clock, when it was stored, records so far; and the
    keys still queued for publishing here."""
    from ioccore.db.connections import connect
    from ioccore.settings import get_settings

    with connect(get_settings().database.conninfo(database), purpose="cli") as conn:
        queued = conn.execute("SELECT count(*) FROM federation_dirty").fetchone()
        typer.echo(f"queued here for publishing: {queued[0] if queued else 0} keys")
        for origin, as_of, stored, n in conn.execute(
                "SELECT origin, last_as_of, last_stored, records FROM fed_origins "
                "ORDER BY origin"):
            typer.echo(f"{origin}: as of {as_of:%Y-%m-%d %H:%M:%S%z}, stored "
                       f"{stored:%H:%M:%S}, {n} records")


def _set_level(name: str) -> None:
    """The federation loggers' level (the others stay at info)."""
    import logging

    level = logging.getLevelName(name.upper())
    if not isinstance(level, int):
        raise typer.BadParameter(f"unknown log level {name!r}")
    logging.getLogger("ioc.federation").setLevel(level)
