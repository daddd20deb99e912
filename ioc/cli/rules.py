"""`ioc rules` commands: check rule files, run rule unit tests."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

app = typer.Typer(no_args_is_help=True)


@app.command("check")
def check(files: Annotated[list[Path], typer.Argument(help="Rule files (YAML).")]) -> None:
    """Validate rule files; print every error as FILE:LINE: message; exit 1 if any."""
    from alerts.ruleload import check_files, load_rules

    errors = check_files(files)
    if not errors:  # surge rules name a category of config/feedback.yaml (docs/feedback.md)
        from ioccore.errors import RuleError
        from ioccore.feedback import catalogue

        codes = {s.code for s in catalogue.default().services}
        errors = [RuleError(r.file, r.line, f"rule {r.id}.metric: no service "
                                            f"{r.metric.rsplit('.', 1)[-1]!r} in "
                                            "config/feedback.yaml")
                  for r in load_rules(files).feedback_rules()
                  if r.metric.rsplit(".", 1)[-1] not in codes]
    for error in errors:
        typer.echo(f"{error.file}:{error.line or 0}: {error.message}", err=True)
    if errors:
        typer.echo(f"FAILED: {len(errors)} error(s)", err=True)
        raise typer.Exit(1)
    rules = load_rules(files)
    for path in files:
        count = sum(1 for r in (*rules, *rules.kpi_targets) if r.file == str(path))
        typer.echo(f"Checking {path}\n  SUCCESS: {count} rules found")


@app.command("test")
def test(files: Annotated[list[Path], typer.Argument(help="Rule unit-test files.")]) -> None:
    """Run rule unit tests (like `promtool test rules`); exit 1 if any fails."""
    from alerts.errors import RuleFilesError
    from alerts.ruletest import run_file
    from ioccore.errors import RuleError

    failed = False
    for path in files:
        typer.echo(f"Unit Testing:  {path}")
        try:
            outcomes = run_file(path)
        except RuleFilesError as exc:
            for error in exc.errors:
                typer.echo(f"  FAILED: {error.file}:{error.line or 0}: {error.message}")
            failed = True
            continue
        except RuleError as exc:
            typer.echo(f"  FAILED: {exc}")
            failed = True
            continue
        bad = [o for o in outcomes if not o.ok]
        if not bad:
            typer.echo(f"  SUCCESS ({len(outcomes)} tests)\n")
            continue
        failed = True
        typer.echo("  FAILED:")
        for outcome in bad:
            for failure in outcome.failures:
                typer.echo(f"    name: {outcome.name},\n    {failure}")
        typer.echo("")
    if failed:
        raise typer.Exit(1)
