"""`ioc stack` commands: the local services without Docker (see docs/operations.md)."""

from __future__ import annotations

import time
from typing import Annotated

import typer

app = typer.Typer(no_args_is_help=True)

Only = Annotated[
    list[str] | None,
    typer.Option("--only", help="Limit to this service (repeatable): kafka, postgres, "
                 "prometheus, mailpit, alertmanager."),
]


@app.command()
def up(only: Only = None) -> None:
    """Install what is missing, start the services on loopback, wait until they answer."""
    from iocdev.errors import StackError
    from iocdev.settings import get_dev_settings
    from iocdev.stack import manager

    start = time.monotonic()
    try:
        manager.up(get_dev_settings(), only or (), echo=typer.echo)
    except StackError as exc:
        typer.echo(f"stack up failed: {exc}", err=True)
        raise typer.Exit(1) from exc
    typer.echo(f"stack up: all ready in {time.monotonic() - start:.1f} s")


@app.command()
def down(only: Only = None) -> None:
    """Stop exactly the processes `up` started (by their recorded pids)."""
    from iocdev.errors import StackError
    from iocdev.settings import get_dev_settings
    from iocdev.stack import manager

    try:
        manager.down(get_dev_settings(), only or (), echo=typer.echo)
    except StackError as exc:
        typer.echo(f"stack down failed: {exc}", err=True)
        raise typer.Exit(1) from exc


@app.command()
def status(only: Only = None) -> None:
    """Print each service, its pid, port and whether it answers; exit 1 if one does not."""
    from iocdev.errors import StackError
    from iocdev.settings import get_dev_settings
    from iocdev.stack import manager

    try:
        rows = manager.status(get_dev_settings(), only or ())
    except StackError as exc:
        typer.echo(f"stack status failed: {exc}", err=True)
        raise typer.Exit(1) from exc
    typer.echo(f"{'service':<13} {'pid':>8} {'port':>6}  answers  log")
    for row in rows:
        pid = str(row.pid) if row.pid is not None else "-"
        typer.echo(f"{row.name:<13} {pid:>8} {row.port:>6}  {'yes' if row.answers else 'no':<7}"
                   f"  {row.log}")
    if not all(row.answers for row in rows):
        raise typer.Exit(1)
