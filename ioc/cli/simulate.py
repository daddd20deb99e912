"""`ioc simulate` and `ioc replay`: department feeds for demos and tests."""

from __future__ import annotations


def simulate() -> None:
    """Publish simulated department feeds."""
    raise NotImplementedError


def replay() -> None:
    """Send an NDJSON file to Kafka."""
    raise NotImplementedError
