"""`ioc kpis` commands: KPI targets per province and tier, and the KPIs themselves."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

app = typer.Typer(no_args_is_help=True)
targets_app = typer.Typer(no_args_is_help=True, help="Targets per KPI, province and tier.")
app.add_typer(targets_app, name="targets")


@targets_app.command("load")
def load_targets(
    file: Annotated[Path, typer.Argument(
        help="CSV: kpi,province_code,tier,target,valid_from[,valid_to] (* = any).")],
    database: Annotated[str | None, typer.Option(help="Database name.")] = None,
) -> None:
    """Upsert targets from a file (table kpi_target_values)."""
    import psycopg

    from ioccore.db.connections import connect
    from ioccore.kpi_targets import TargetFileError, read_targets, write_targets
    from ioccore.settings import get_settings

    try:
        rows = read_targets(file)
        with connect(get_settings().database.conninfo(database), purpose="cli") as conn:
            n = write_targets(conn, rows, source=file.name)
    except TargetFileError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from exc
    except psycopg.Error as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from exc
    typer.echo(f"{file.name}: {n} targets written")


@targets_app.command("list")
def list_targets(
    province: Annotated[str | None, typer.Option(help="Two-digit province code.")] = None,
    database: Annotated[str | None, typer.Option(help="Database name.")] = None,
) -> None:
    """Targets (of a province and the '*' defaults)."""
    from ioccore.db.connections import connect
    from ioccore.kpi_targets import list_targets as rows
    from ioccore.settings import get_settings

    with connect(get_settings().database.conninfo(database), purpose="cli") as conn:
        for t in rows(conn, province):
            typer.echo(f"{t.kpi}\t{t.province_code}\t{t.tier}\t{t.target:g}\t{t.valid_from}"
                       f"\t{t.valid_to or ''}")
