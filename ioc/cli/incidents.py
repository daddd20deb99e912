"""`ioc sops check` and `ioc incidents run`: SOP files and the incident loop."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

sops_app = typer.Typer(no_args_is_help=True)
app = typer.Typer(no_args_is_help=True)


@sops_app.command("check")
def check(files: Annotated[list[Path] | None, typer.Argument(
        help="SOP files (YAML); default every file of incidents.sops_dir.")] = None,
          rota: Annotated[Path | None, typer.Option(
              help="Duty rota checked too; default incidents.rota.")] = None) -> None:
    """Validate SOP files (and the duty rota); print every error as FILE:LINE: message;
    exit 1 if any. Rule ids are checked against the rule files of alerts.rules_dir."""
    from alerts.incidents import rota as rota_mod
    from alerts.incidents import sops
    from alerts.ruleload import load_rules_dir
    from ioccore.errors import RuleError
    from ioccore.settings import get_settings

    settings = get_settings()
    paths = files or sorted(settings.resolve(settings.incidents.sops_dir).glob("*.yaml"))
    rota_path = rota or settings.resolve(settings.incidents.rota)
    errors: list[RuleError] = []
    try:
        roster = rota_mod.parse(str(rota_path), rota_path.read_text(encoding="utf-8"), errors)
    except OSError as exc:
        errors.append(RuleError(str(rota_path), None, f"cannot read: {exc.strerror}"))
        roster = None
    rules = load_rules_dir(settings.resolve(settings.alerts.rules_dir))
    rule_ids = {r.id for r in (*rules, *rules.kpi_targets)}
    found, sop_errors = sops.check(paths, rule_ids=rule_ids,
                                   departments=set(roster.departments) if roster else None)
    errors += sop_errors
    for error in errors:
        typer.echo(f"{error.file}:{error.line or 0}: {error.message}", err=True)
    if errors:
        typer.echo(f"FAILED: {len(errors)} error(s)", err=True)
        raise typer.Exit(1)
    for sop in found:
        typer.echo(f"Checking {sop.file}\n  SUCCESS: SOP {sop.id}, {len(sop.steps)} steps, "
                   f"rules {', '.join(sop.rules)}")


@app.command("run")
def run() -> None:
    """Run the incident loop (intake of firing alerts, escalation timers) until
    interrupted. Any number may run; each timer fires once."""
    import asyncio
    import signal

    from alerts.incidents.config import load
    from alerts.incidents.runner import IncidentRunner
    from ioccore.logs import configure_logging
    from ioccore.settings import get_settings

    configure_logging()
    settings = get_settings()
    runner = IncidentRunner(settings.database.conninfo(), load(settings),
                            poll_interval_s=settings.incidents.poll_interval_s)

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        await runner.run(stop)

    asyncio.run(main())
