"""`ioc worker` and `ioc api`: the long-running processes."""

from __future__ import annotations

import typer


def worker(
    index: int = typer.Option(0, help="Worker number on this host: web port = base + index."),
    geo_source: str = typer.Option(
        "auto", help="Boundaries: database, reference, or auto (database when loaded)."),
) -> None:
    """Run a stream worker (stage 1 and stage 2 agents) until interrupted."""
    from ioc.logs import configure_logging
    from streams.runtime import run_worker

    configure_logging()
    run_worker(index=index, geo_source=geo_source)


def api() -> None:
    """Run the HTTP API (ingest gateway and operator API)."""
    raise NotImplementedError
