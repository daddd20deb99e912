"""`ioc api keys` commands: create, list and revoke API keys.

A key is printed once, at creation; only its SHA-256 (with the server's pepper) is
stored. Register with ``api_app.add_typer(apikeys.app, name="keys")``.
"""

from __future__ import annotations

from typing import Annotated

import typer

app = typer.Typer(no_args_is_help=True, help="API keys: create, list, revoke.")

_FEEDS = ("sensor", "traffic", "service")


@app.command("create")
def create(
    role: Annotated[str, typer.Option(
        help="department (publishes events) | responder (a department's people: its "
             "incidents and alerts) | viewer | operator | admin")] = "department",
    department: Annotated[str | None, typer.Option(
        help="Department code (required for role department).")] = None,
    name: Annotated[str | None, typer.Option(
        help="A label shown in logs and the audit trail; default <department>-<prefix>.")]
    = None,
    feeds: Annotated[str | None, typer.Option(
        help="Create the department (or set its feeds): comma-separated sensor,traffic,"
             "service.")] = None,
    department_name: Annotated[str | None, typer.Option(
        help="Full name when --feeds creates the department.")] = None,
    database: Annotated[str | None, typer.Option(
        help="Database name; default from settings.")] = None,
) -> None:
    """Create a key and print it once."""
    from ioc.api.auth import (
        ROLES,
        UnknownDepartmentError,
        create_key,
        ensure_department,
        settings_pepper,
    )
    from ioccore.db.connections import connect
    from ioccore.settings import get_settings

    if role not in ROLES:
        raise typer.BadParameter(f"role must be one of {', '.join(ROLES)}")
    if role in ("department", "responder") and not department:
        raise typer.BadParameter(f"a {role} key needs --department")
    feed_list: list[str] | None = None
    if feeds is not None:
        feed_list = [f.strip() for f in feeds.split(",") if f.strip()]
        bad = [f for f in feed_list if f not in _FEEDS]
        if bad or not department:
            raise typer.BadParameter(
                "--feeds needs --department and takes sensor, traffic, service")
    settings = get_settings()
    with connect(settings.database.conninfo(database), purpose="cli", autocommit=True) as conn:
        if feed_list is not None and department:
            ensure_department(conn, department, feed_list, department_name)
        try:
            info, key = create_key(conn, role=role,
                                   department=department, name=name,
                                   pepper=settings_pepper(settings.api))
        except UnknownDepartmentError as exc:
            typer.echo(f"error: department {exc} does not exist; add --feeds to create it",
                       err=True)
            raise typer.Exit(1) from exc
    typer.echo(f"created {info.role} key {info.prefix} ({info.name})", err=True)
    typer.echo("store it now; it is not shown again:", err=True)
    typer.echo(key)


@app.command("list")
def list_(
    database: Annotated[str | None, typer.Option(
        help="Database name; default from settings.")] = None,
) -> None:
    """List keys (prefix, name, role, department, created, revoked) — never the keys."""
    from ioc.api.auth import list_keys
    from ioccore.db.connections import connect
    from ioccore.settings import get_settings

    with connect(get_settings().database.conninfo(database), purpose="cli") as conn:
        rows = list_keys(conn)
    typer.echo(f"{'prefix':<9} {'role':<10} {'department':<14} {'created':<26} "
               f"{'revoked':<26} name")
    for k in rows:
        typer.echo(f"{k.prefix:<9} {k.role:<10} {k.department or '-':<14} "
                   f"{k.created_at[:25]:<26} {(k.revoked_at or '-')[:25]:<26} {k.name}")


@app.command("revoke")
def revoke(
    prefix: Annotated[str, typer.Argument(help="The key's 8-character prefix.")],
    database: Annotated[str | None, typer.Option(
        help="Database name; default from settings.")] = None,
) -> None:
    """Revoke a key (the API refuses it within a few seconds)."""
    from ioc.api.auth import revoke_key
    from ioccore.db.connections import connect
    from ioccore.settings import get_settings

    with connect(get_settings().database.conninfo(database), purpose="cli",
                 autocommit=True) as conn:
        done = revoke_key(conn, prefix)
    if not done:
        typer.echo(f"no active key with prefix {prefix}", err=True)
        raise typer.Exit(1)
    typer.echo(f"revoked {prefix}")
