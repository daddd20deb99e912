"""``ioc mqtt-bridge`` and ``ioc mqtt``: the bridge process, MQTT users, Mosquitto's
password and ACL files (docs/mqtt.md)."""

from __future__ import annotations

import os
import signal
from pathlib import Path
from typing import Annotated

import typer

app = typer.Typer(no_args_is_help=True, help="MQTT users and Mosquitto's files.")
users = typer.Typer(no_args_is_help=True, help="Create and delete MQTT users.")
app.add_typer(users, name="users")


def bridge(
    client_id: Annotated[str | None, typer.Option(
        help="MQTT client id (default mqtt.client_id); keep it stable per instance: the "
             "persistent session follows it.")] = None,
    metrics_port: Annotated[int | None, typer.Option(
        help="Serve /metrics on this loopback port.")] = None,
) -> None:
    """Run an MQTT bridge: shared subscription, QoS 1, PUBACK after Kafka."""
    import asyncio

    from ioc.mqtt_bridge import run as run_bridge
    from ioccore.logs import configure_logging
    from ioccore.settings import get_settings

    configure_logging()
    settings = get_settings()
    if client_id is not None:
        settings = settings.model_copy(update={"mqtt": settings.mqtt.model_copy(
            update={"client_id": client_id})})
    asyncio.run(run_bridge(settings, metrics_port=metrics_port))


@users.command("create")
def create(
    department: Annotated[str | None, typer.Option(
        help="Department code: user dept-<code>, publishes to <root>/<code>/<feed>/+.")]
    = None,
    bridge_user: Annotated[str | None, typer.Option(
        "--bridge", help="Create a bridge user of this name (subscribes to <root>/#).")]
    = None,
) -> None:
    """Create (or re-key) a user; print its password once. Then run `ioc mqtt sync`."""
    from ioccore import mqtt_principals as mp
    from ioccore.db.connections import connect
    from ioccore.errors import ConfigError
    from ioccore.settings import get_settings

    if (department is None) == (bridge_user is None):
        raise typer.BadParameter("give exactly one of --department or --bridge")
    settings = get_settings()
    with connect(settings.database.conninfo(), purpose="cli", autocommit=True) as conn:
        try:
            name, secret = (mp.create_user(conn, role="department", department=department)
                            if department else
                            mp.create_user(conn, role="bridge", username=bridge_user))
        except ConfigError as exc:
            typer.echo(f"error: {exc}", err=True)
            raise typer.Exit(1) from exc
    typer.echo(f"MQTT user {name}; store the password now, it is not shown again:",
               err=True)
    typer.echo(secret)


@users.command("delete")
def delete(username: str) -> None:
    """Delete a user (run `ioc mqtt sync` afterwards)."""
    from ioccore import mqtt_principals as mp
    from ioccore.db.connections import connect
    from ioccore.settings import get_settings

    with connect(get_settings().database.conninfo(), purpose="cli",
                 autocommit=True) as conn:
        found = mp.delete_user(conn, username)
    typer.echo(f"{username}: {'deleted' if found else 'not found'}")


@app.command("sync")
def sync(
    passwd_file: Annotated[Path | None, typer.Option(
        help="Default: the stack's <stack>/mosquitto/passwd.")] = None,
    acl_file: Annotated[Path | None, typer.Option(
        help="Default: the stack's <stack>/mosquitto/acl.")] = None,
    reload_pid: Annotated[int | None, typer.Option(
        help="Send SIGHUP to this Mosquitto pid so it re-reads both files.")] = None,
) -> None:
    """Render Mosquitto's password and ACL files from the registry (mode 0600)."""
    from ioccore import mqtt_principals as mp
    from ioccore.db.connections import connect
    from ioccore.settings import get_settings

    settings = get_settings()
    home = settings.stack.root / "mosquitto"
    passwd = passwd_file or home / "passwd"
    acl = acl_file or home / "acl"
    extra = []
    secret = settings.mqtt.secret()
    if secret is not None:  # the configured bridge user, always present
        extra.append(mp.MqttUser(settings.mqtt.username, "bridge", None,
                                 mp.hash_password(secret)))
    with connect(settings.database.conninfo(), purpose="cli", autocommit=True) as conn:
        n = mp.sync(conn, passwd, acl, settings.mqtt.topic_root, extra)
    typer.echo(f"wrote {passwd} and {acl} ({n} users)")
    if reload_pid is not None:
        os.kill(reload_pid, signal.SIGHUP)
        typer.echo(f"SIGHUP sent to {reload_pid}")
