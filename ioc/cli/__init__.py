"""The ``ioc`` command: one typer app, one sub-module per area.

Each sub-module keeps heavy imports inside its commands so ``ioc --help`` stays fast.
"""

from __future__ import annotations

import typer

from ioc.cli import alerts, apikeys, db, demo, geo, rules, run, simulate, stack, topics

app = typer.Typer(no_args_is_help=True, add_completion=False, help=__doc__)
app.add_typer(stack.app, name="stack", help="Install, start and stop the local services.")
app.add_typer(db.app, name="db", help="Database migrations and maintenance.")
app.add_typer(topics.app, name="topics", help="Kafka topics.")
app.add_typer(geo.app, name="geo", help="Administrative boundaries.")
app.add_typer(rules.app, name="rules", help="Alert rule files: check and unit-test.")
app.add_typer(alerts.app, name="alerts", help="Operator actions on alerts.")
app.command("worker")(run.worker)
api_app = typer.Typer(invoke_without_command=True, help="HTTP API server and its keys.")
api_app.callback(invoke_without_command=True)(run.api)
api_app.add_typer(apikeys.app, name="keys", help="Create, list and revoke API keys.")
app.add_typer(api_app, name="api")
app.command("simulate")(simulate.simulate)
app.command("replay")(simulate.replay)
app.command("demo")(demo.demo)


def main() -> None:
    """Console entry point."""
    app()
