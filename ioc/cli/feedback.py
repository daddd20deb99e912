"""`ioc feedback` commands: the reporters' contact retention."""

from __future__ import annotations

import typer

app = typer.Typer(no_args_is_help=True)


@app.command("purge-contacts")
def purge_contacts() -> None:
    """Delete reporters' contacts older than ``contact_retention_days`` (config/feedback.yaml).
    Run it daily (cron or a systemd timer); the API already hides older contacts."""
    from ioccore.db.connections import connect
    from ioccore.feedback import catalogue
    from ioccore.feedback.retention import purge_contacts as purge
    from ioccore.settings import get_settings

    days = catalogue.default().contact_retention_days
    with connect(get_settings().database.conninfo(), purpose="cli", autocommit=True) as conn:
        n = purge(conn, retention_days=days)
    typer.echo(f"feedback_contacts: {n} contacts older than {days} days deleted")
