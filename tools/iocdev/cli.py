"""Registers the developer commands on the ``ioc`` command (entry point ``ioc.cli``)."""

from __future__ import annotations

import typer

from iocdev import cli_demo, cli_reports, cli_simulate, cli_stack


def register(root: typer.Typer) -> None:
    """Add ``stack``, ``simulate``, ``replay`` and ``demo`` to the ``ioc`` command."""
    root.add_typer(cli_stack.app, name="stack",
                   help="Install, start and stop the local services (development).")
    root.command("simulate")(cli_simulate.simulate)
    root.command("replay")(cli_simulate.replay)
    root.command("demo")(cli_demo.demo)
    root.command("simulate-reports")(cli_reports.simulate_reports)
