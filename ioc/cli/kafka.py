"""`ioc kafka principals`: SCRAM credentials and ACLs, one command per act.

``create --department env --feeds sensor`` makes the department's topics, its principal
``dept-env`` and exactly its ACLs, and prints the password once (stdout; everything else
goes to stderr). ``rotate`` prints a new password, ``revoke`` deletes the credential and
every ACL. Runs as the admin principal of the settings (docs/security.md).
"""

from __future__ import annotations

from typing import Annotated

import typer

app = typer.Typer(no_args_is_help=True, help="Kafka principals and ACLs.")
principals = typer.Typer(no_args_is_help=True,
                         help="Create, rotate, revoke and list Kafka principals.")
app.add_typer(principals, name="principals")


def _once(principal: str, password: str) -> None:
    typer.echo(f"principal {principal} (SCRAM-SHA-512); store the password now, it is "
               "not shown again:", err=True)
    typer.echo(password)


@principals.command("create")
def create(
    department: Annotated[str | None, typer.Option(
        help="Department code: principal dept-<code>, topics ioc.dept.<code>.<feed>.v1.")]
    = None,
    feeds: Annotated[str, typer.Option(
        help="Comma-separated feeds the department publishes: sensor,traffic,service.")]
    = "",
    role: Annotated[str, typer.Option(
        help="department | worker | gateway | operator")] = "department",
    name: Annotated[str | None, typer.Option(
        help="Principal name for worker/gateway/operator (default from settings).")] = None,
) -> None:
    """Create (or re-create) a principal with exactly its ACLs; print its password once."""
    from ioccore import principals as p
    from ioccore.errors import ConfigError
    from ioccore.settings import get_settings

    kafka = get_settings().kafka
    try:
        if role == "department":
            if not department:
                raise typer.BadParameter("a department principal needs --department")
            feed_list = [f.strip() for f in feeds.split(",") if f.strip()]
            if not feed_list:
                raise typer.BadParameter("--feeds: at least one of sensor,traffic,service")
            made = p.create_department(kafka, department, feed_list)
            typer.echo(f"topics: {', '.join(made.topics)} (running workers read them "
                       "within 30 s)", err=True)
            _once(made.principal, made.password)
            return
        names = kafka.principals
        stream = get_settings().stream
        user = name or str(getattr(names, role, ""))
        grants = {"worker": lambda: p.worker_grants(kafka, group=stream.app_id),
                  "gateway": lambda: p.gateway_grants(kafka, group=stream.app_id),
                  "operator": lambda: p.operator_grants(kafka, group_prefix=user)}
        if role not in grants:
            raise typer.BadParameter("role: department, worker, gateway or operator")
        _once(user, p.create_principal(kafka, user, grants[role]()))
    except ConfigError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from exc


@principals.command("rotate")
def rotate(principal: Annotated[str, typer.Argument(help="e.g. dept-env")]) -> None:
    """Set a new password (the old one stops working at once); print it once."""
    from ioccore import principals as p
    from ioccore.errors import ConfigError
    from ioccore.settings import get_settings

    try:
        _once(principal, p.rotate(get_settings().kafka, principal))
    except ConfigError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from exc


@principals.command("revoke")
def revoke(principal: Annotated[str, typer.Argument(help="e.g. dept-env")]) -> None:
    """Delete the principal's credential and every ACL naming it."""
    from ioccore import principals as p
    from ioccore.settings import get_settings

    had, acls = p.revoke(get_settings().kafka, principal)
    typer.echo(f"revoked {principal}: credential {'deleted' if had else 'absent'}, "
               f"{acls} ACLs deleted")


@principals.command("list")
def list_() -> None:
    """Every SCRAM user and its ACLs (never a password)."""
    from ioccore import principals as p
    from ioccore.settings import get_settings

    for user, acls in p.list_principals(get_settings().kafka).items():
        typer.echo(user)
        for line in acls:
            typer.echo(f"  {line}")
