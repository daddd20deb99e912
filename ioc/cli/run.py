"""`ioc worker` and `ioc api`: the long-running processes."""

from __future__ import annotations


def worker() -> None:
    """Run a stream worker (stage 1 and stage 2 agents)."""
    raise NotImplementedError


def api() -> None:
    """Run the HTTP API (ingest gateway and operator API)."""
    raise NotImplementedError
