"""`ioc agencies` commands: load the agency registry (tiers of the KPIs), list it."""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Annotated

import typer

app = typer.Typer(no_args_is_help=True)


@app.command("load")
def load(
    file: Annotated[Path | None, typer.Argument(
        help="CSV (or .csv.gz) with columns code,name,tier,seat_commune,province_code; "
             "omit to load the bundled default (the simulator's agencies).")] = None,
    valid_from: Annotated[str | None, typer.Option(
        help="Date (YYYY-MM-DD, Vietnam time) the registry takes effect; default today "
             "for a file, 2025-07-01 for the bundled default.")] = None,
    source: Annotated[str | None, typer.Option(
        help="Source label stored with the rows; default: the file name.")] = None,
    database: Annotated[str | None, typer.Option(
        help="Database name; default from settings.")] = None,
) -> None:
    """Write agencies to TimescaleDB (table agencies), keeping history."""
    import psycopg

    from ioccore.agencies import (
        BUNDLED,
        BUNDLED_VALID_FROM,
        RegistryFileError,
        read_registry,
        write_registry,
    )
    from ioccore.db.connections import connect
    from ioccore.settings import get_settings

    settings = get_settings()
    path = file or BUNDLED
    try:
        if valid_from:
            day = date.fromisoformat(valid_from)
        else:
            day = BUNDLED_VALID_FROM if file is None else date.today()
    except ValueError as exc:
        raise typer.BadParameter(f"not a date: {valid_from}") from exc
    try:
        agencies = read_registry(path)
        with connect(settings.database.conninfo(database), purpose="cli") as conn:
            report = write_registry(conn, agencies, source=source or path.name,
                                    valid_from=day)
    except RegistryFileError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from exc
    except psycopg.Error as exc:
        typer.echo(f"error: {exc}", err=True)
        if isinstance(exc, psycopg.errors.UndefinedTable):
            typer.echo("hint: run `ioc db migrate` first", err=True)
        raise typer.Exit(1) from exc
    typer.echo(f"{source or path.name}: {report}")


@app.command("list")
def list_(
    province: Annotated[str | None, typer.Option(help="Two-digit province code.")] = None,
    database: Annotated[str | None, typer.Option(help="Database name.")] = None,
) -> None:
    """Agencies open today, with their tier."""
    from ioccore.agencies import iter_open
    from ioccore.db.connections import connect
    from ioccore.settings import get_settings

    with connect(get_settings().database.conninfo(database), purpose="cli") as conn:
        for a in iter_open(conn):
            if province is None or a.province_code == province:
                typer.echo(f"{a.code}\t{a.tier}\t{a.province_code}\t{a.seat_commune or '-'}"
                           f"\t{a.name}")
