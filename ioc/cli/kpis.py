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
        help="CSV: kpi,province_code,tier,target,valid_from[,valid_to] (* = any), or "
             "per unit: kpi,level,unit_code,target,valid_from[,valid_to].")],
    database: Annotated[str | None, typer.Option(help="Database name.")] = None,
) -> None:
    """Upsert targets from a file (kpi_target_values; kpi_unit_targets for a file with
    a level column)."""
    import psycopg

    from ioccore import unit_targets
    from ioccore.db.connections import connect
    from ioccore.kpi_targets import TargetFileError, read_targets, write_targets
    from ioccore.settings import get_settings

    try:
        per_unit = unit_targets.is_unit_file(file)
        units = unit_targets.read_unit_targets(file) if per_unit else []
        rows = [] if per_unit else read_targets(file)
        with connect(get_settings().database.conninfo(database), purpose="cli") as conn:
            n = (unit_targets.write_unit_targets(conn, units, source=file.name) if per_unit
                 else write_targets(conn, rows, source=file.name))
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
    from ioccore.unit_targets import list_unit_targets

    with connect(get_settings().database.conninfo(database), purpose="cli") as conn:
        for t in rows(conn, province):
            typer.echo(f"{t.kpi}\t{t.province_code}\t{t.tier}\t{t.target:g}\t{t.valid_from}"
                       f"\t{t.valid_to or ''}")
        for u in list_unit_targets(conn):
            typer.echo(f"{u.kpi}\t{u.level}:{u.unit_code}\t-\t{u.target:g}\t{u.valid_from}"
                       f"\t{u.valid_to or ''}")
