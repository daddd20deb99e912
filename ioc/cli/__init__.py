"""The ``ioc`` command: one typer app, one sub-module per area.

Each sub-module keeps heavy imports inside its commands so ``ioc --help`` stays fast.
Developer tooling (``ioc stack``, ``ioc simulate``, ``ioc replay``, ``ioc demo``) is not
part of the deployed package: when ``ioc-dev`` (``tools/``) is installed it adds those
commands through the ``ioc.cli`` entry-point group, so this module never imports it.
"""

from __future__ import annotations

from importlib.metadata import entry_points

import typer

from ioc.cli import (
    agencies,
    alerts,
    apikeys,
    db,
    federation,
    feedback,
    geo,
    incidents,
    kafka,
    kpis,
    mqtt,
    reports,
    rules,
    run,
    sources,
    topics,
)

HELP = ("IOC event-processing backend: workers, HTTP API, database, topics, boundaries, "
        "alert rules and operator actions.")

app = typer.Typer(no_args_is_help=True, add_completion=False, help=HELP)
app.add_typer(db.app, name="db", help="Database migrations and maintenance.")
app.add_typer(topics.app, name="topics", help="Kafka topics.")
app.add_typer(kafka.app, name="kafka", help="Kafka principals (SCRAM) and ACLs.")
app.add_typer(sources.app, name="sources", help="The source registry.")
app.add_typer(geo.app, name="geo", help="Administrative boundaries.")
app.add_typer(agencies.app, name="agencies", help="Agency registry (tiers of the KPIs).")
app.add_typer(kpis.app, name="kpis", help="Public-service KPI targets.")
app.add_typer(feedback.app, name="feedback", help="Citizen reports: contact retention.")
app.add_typer(reports.app, name="reports", help="Periodic reports (XLSX, CSV).")
app.add_typer(rules.app, name="rules", help="Alert rule files: check and unit-test.")
app.add_typer(alerts.app, name="alerts", help="Operator actions on alerts.")
app.add_typer(incidents.sops_app, name="sops", help="Standard operating procedures: check.")
app.add_typer(incidents.app, name="incidents", help="The incident loop (intake, escalation).")
app.add_typer(federation.app, name="federation",
             help="Provinces to the nation: publish, ingest, status.")
app.command("worker")(run.worker)
app.command("mqtt-bridge")(mqtt.bridge)
app.add_typer(mqtt.app, name="mqtt", help="MQTT users and Mosquitto's files.")
api_app = typer.Typer(invoke_without_command=True, help="HTTP API server and its keys.")
api_app.callback(invoke_without_command=True)(run.api)
api_app.add_typer(apikeys.app, name="keys", help="Create, list and revoke API keys.")
app.add_typer(api_app, name="api")


def _add_plugins(root: typer.Typer) -> None:
    """Let installed distributions add sub-commands: each entry point names a callable
    that takes the root app and registers its commands on it."""
    for ep in entry_points(group="ioc.cli"):
        ep.load()(root)


_add_plugins(app)


def main() -> None:
    """Console entry point."""
    app()
