"""`ioc sources`: register sources to departments (ioccore.source_registry), explicitly."""

from __future__ import annotations

from typing import Annotated

import typer

app = typer.Typer(no_args_is_help=True, help="The source registry.")


@app.command("register")
def register(
    source_ids: Annotated[list[str], typer.Argument(help="Source ids to register.")],
    department: Annotated[str, typer.Option(help="Owning department code.")],
    feed: Annotated[str, typer.Option(help="sensor | traffic | service")],
    commune_code: Annotated[str | None, typer.Option(help="Where the source is.")] = None,
    actor: Annotated[str, typer.Option(help="Recorded as registered_by.")] = "cli",
) -> None:
    """Register sources to a department's feed (idempotent; never takes another's)."""
    from ioccore.db.connections import connect
    from ioccore.settings import get_settings
    from ioccore.source_registry import Location, RegistryError
    from ioccore.source_registry import register as do_register

    with connect(get_settings().database.conninfo(), purpose="cli") as conn:
        try:
            new = do_register(conn, department, feed, source_ids, actor=actor,
                              location=Location(commune_code))
        except RegistryError as exc:
            typer.echo(f"error: {exc}", err=True)
            raise typer.Exit(1) from exc
    typer.echo(f"registered {len(new)} new, {len(source_ids) - len(new)} already "
               f"{department}'s")


@app.command("unregister")
def unregister(
    source_ids: Annotated[list[str], typer.Argument(help="Source ids.")],
    department: Annotated[str, typer.Option(help="The department they belong to.")],
) -> None:
    """Remove registrations (events already stored stay)."""
    from ioccore.db.connections import connect
    from ioccore.settings import get_settings
    from ioccore.source_registry import unregister as do_unregister

    with connect(get_settings().database.conninfo(), purpose="cli") as conn:
        gone = do_unregister(conn, department, source_ids)
    typer.echo(f"unregistered {len(gone)}")


@app.command("quota")
def quota(
    department: Annotated[str, typer.Option(help="Department code.")],
    limit: Annotated[int, typer.Argument(
        help="Sources that may register automatically on first use (0: explicit only).")],
) -> None:
    """Set a department's automatic registration quota."""
    from ioccore.db.connections import connect
    from ioccore.settings import get_settings
    from ioccore.source_registry import set_quota

    with connect(get_settings().database.conninfo(), purpose="cli", autocommit=True) as conn:
        if not set_quota(conn, department, limit):
            typer.echo(f"error: no department {department}", err=True)
            raise typer.Exit(1)
    typer.echo(f"{department}: source_quota = {limit}")


@app.command("list")
def list_(department: Annotated[str | None, typer.Option(help="Only this one.")] = None
          ) -> None:
    """Registered sources: id, department, feed, how registered, by whom."""
    from ioccore.db.connections import connect
    from ioccore.settings import get_settings
    from ioccore.source_registry import list_sources

    with connect(get_settings().database.conninfo(), purpose="cli") as conn:
        for row in list_sources(conn, department):
            typer.echo("  ".join(x or "-" for x in row))


@app.command("area")
def area(
    department: Annotated[str, typer.Option(help="Department code.")],
    codes: Annotated[list[str] | None, typer.Argument(
        help="Province (2-digit) and commune (5-digit) codes; none with --clear.")] = None,
    source: Annotated[list[str] | None, typer.Option(
        help="Bind only these sources of the department (repeat).")] = None,
    clear: Annotated[bool, typer.Option(help="Unbind (any commune).")] = False,
) -> None:
    """Bind a department (or some of its sources) to an area: readings for a commune
    outside it are dead-lettered ``out_of_area`` (within 30 s in running workers)."""
    from ioccore.db.connections import connect
    from ioccore.settings import get_settings
    from ioccore.source_registry import set_area

    if clear == bool(codes):
        typer.echo("error: give codes, or --clear", err=True)
        raise typer.Exit(2)
    with connect(get_settings().database.conninfo(), purpose="cli", autocommit=True) as conn:
        try:
            changed = set_area(conn, department, None if clear else codes,
                               source_ids=source or ())
        except ValueError as exc:
            typer.echo(f"error: {exc}", err=True)
            raise typer.Exit(2) from exc
    if not changed:
        typer.echo(f"error: no such department or sources of {department}", err=True)
        raise typer.Exit(1)
    typer.echo(f"{department}: area {'cleared' if clear else ','.join(codes or [])} "
               f"({changed} row(s))")
