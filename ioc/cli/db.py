"""`ioc db` commands."""

from __future__ import annotations

import typer

app = typer.Typer(no_args_is_help=True)


@app.command("migrate")
def migrate() -> None:
    """Apply pending SQL migrations (idempotent) and report the TimescaleDB edition."""
    from ioccore.db.edition import timescale_edition
    from ioccore.db.migrate import apply_migrations
    from ioccore.settings import get_settings

    conninfo = get_settings().database.owner_conninfo()  # migrations run as the owner
    applied = apply_migrations(conninfo)
    typer.echo("applied: " + (", ".join(applied) if applied else "nothing (up to date)"))
    typer.echo(f"timescaledb edition: {timescale_edition(conninfo)}")


@app.command("maintain")
def maintain() -> None:
    """Run the scheduled rollup refresh and retention once (Apache edition path)."""
    from ioccore.db.maintenance import run_maintenance
    from ioccore.settings import get_settings

    for line in run_maintenance(get_settings().database.conninfo()):
        typer.echo(line)
