"""`ioc topics` commands."""

from __future__ import annotations

import typer

app = typer.Typer(no_args_is_help=True)


@app.command("ensure")
def ensure() -> None:
    """Create the configured topics (idempotent) and print their state."""
    from ioccore.settings import get_settings
    from ioccore.topics import ensure_topics

    for state in ensure_topics(get_settings().kafka):
        note = "created" if state.created else "exists"
        warn = ("" if state.partitions == state.wanted_partitions
                else f"  (configured {state.wanted_partitions}: not changed)")
        typer.echo(f"{state.name:24} {state.partitions:3d} partitions  {note}{warn}")
