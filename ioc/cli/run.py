"""`ioc worker` and `ioc api`: the long-running processes."""

from __future__ import annotations

from typing import Annotated

import typer


def worker(
    index: int = typer.Option(0, help="Worker number on this host: web port = base + index."),
    geo_source: str = typer.Option(
        "auto", help="Boundaries: database, reference, or auto (database when loaded)."),
    stages: str = typer.Option(
        "", help="all, stage1 or stage2: both stages, or one in a process of its own "
        "(default: stream.stages, all)."),
) -> None:
    """Run a stream worker (stage 1 and stage 2, or one of them) until interrupted."""
    from typing import get_args

    from ioc.worker import run_worker
    from ioccore.logs import configure_logging
    from ioccore.settings import WorkerStages

    known: tuple[str, ...] = get_args(WorkerStages)
    if stages and stages not in known:
        typer.echo(f"error: --stages {stages!r}: {', '.join(known[:-1])} or {known[-1]}",
                   err=True)
        raise typer.Exit(2)
    configure_logging()
    run_worker(index=index, geo_source=geo_source, stages=stages or None)


def api(
    ctx: typer.Context,
    host: Annotated[str | None, typer.Option(help="Listen address; default api.host.")] = None,
    port: Annotated[int | None, typer.Option(help="Listen port; default api.port.")] = None,
    log_level: Annotated[str, typer.Option(help="debug, info, warning, error.")] = "info",
) -> None:
    """Run the HTTP API (ingest gateway, operator API, map layer, /metrics)."""
    if ctx.invoked_subcommand is not None:  # `ioc api keys ...` when used as a group
        return
    import uvicorn

    from ioc.api.app import create_app
    from ioc.api.logs import configure_api_logging
    from ioc.api.server import check_pepper, server_config
    from ioccore.errors import ConfigError
    from ioccore.settings import get_settings

    settings = get_settings()
    configure_api_logging(log_level)
    listen = host or settings.api.host
    try:
        check_pepper(settings, listen)
    except ConfigError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from exc
    uvicorn.Server(server_config(create_app(settings), settings, host=listen,
                                 port=port or settings.api.port, log_level=log_level)).run()
