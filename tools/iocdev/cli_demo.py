"""`ioc demo`: the end-to-end main job (docs/demo.md)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer


def demo(
    province: Annotated[str, typer.Option(help="Province code (01 = Hà Nội, 126 communes).")
                        ] = "01",
    span: Annotated[str, typer.Option(help="Simulated span, e.g. 20m, 2h, 1d.")] = "2h",
    speedup: Annotated[float, typer.Option(help="Simulated seconds per wall second.")
                       ] = 120.0,
    rate: Annotated[float, typer.Option(help="Events per wall second the simulator sends.")
                    ] = 5000.0,
    seed: Annotated[int, typer.Option(help="Simulator seed (same seed: same events).")] = 42,
    workers: Annotated[int, typer.Option(min=1, max=16, help="Stream worker processes.")
                       ] = 1,
    bad_share: Annotated[float, typer.Option(help="Share of malformed events (0..1).")
                         ] = 0.01,
    keep_running: Annotated[bool, typer.Option(
        help="Leave the workers and the API (and stack services the demo started) running "
             "after a successful run.")] = False,
    report_dir: Annotated[Path | None, typer.Option(
        help="Report folder; default reports/demo-<UTC timestamp>.")] = None,
) -> None:
    """Run the main job end to end: stack, migrations, boundaries, workers, API, a
    simulated province with a live view, then an HTML + PNG report."""
    import sys

    from iocdev.demo.errors import DemoError, DemoInterruptedError
    from iocdev.demo.orchestrate import log_tail
    from iocdev.demo.run import Demo, DemoOptions
    from iocdev.settings import get_dev_settings
    from iocdev.simulate.run import parse_span

    try:
        span_s = parse_span(span)
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--span") from exc
    if span_s < 60 or speedup <= 0 or rate <= 0 or not 0.0 <= bad_share <= 1.0:
        raise typer.BadParameter("need --span >= 1m, --speedup > 0, --rate > 0 and "
                                 "0 <= --bad-share <= 1")
    opts = DemoOptions(province=province, span_s=span_s, speedup=speedup, rate=rate,
                       seed=seed, workers=workers, bad_share=bad_share,
                       keep_running=keep_running,
                       report_dir=report_dir.resolve() if report_dir else None,
                       tty=sys.stdout.isatty())
    run = Demo(get_dev_settings(), opts, echo=typer.echo)
    try:
        outcome = run.run()
    except DemoInterruptedError as exc:
        typer.echo(f"demo interrupted (signal {exc.signum}); everything it started is "
                   "stopped", err=True)
        raise typer.Exit(130) from exc
    except DemoError as exc:
        typer.echo(f"demo FAILED in part '{exc.part}': {exc.reason}", err=True)
        if exc.log is not None:
            typer.echo(f"--- last lines of {exc.log} ---\n{log_tail(exc.log, 40)}\n---",
                       err=True)
        raise typer.Exit(1) from exc
    stored = sum(outcome.stored.values())
    typer.echo(f"demo: {stored:,} raw rows stored "
               f"({', '.join(f'{k} {v:,}' for k, v in outcome.stored.items())}), "
               f"{outcome.rollup_rows:,} rollup rows, {outcome.alerts_active} active alerts, "
               f"wall time {outcome.wall_s:.0f} s")
    if outcome.report is not None:
        typer.echo(f"report: {outcome.report.html}")
        typer.echo(f"map:    {outcome.report.map_png}")
    from iocdev.demo.console import console_lines

    typer.echo(f"database: {run.run_db} (this run's own; the next demo drops it)")
    for line in console_lines(run.settings,
                              keep_running=keep_running and not outcome.problems):
        typer.echo(line)
    if outcome.problems:
        typer.echo("demo FAILED in part(s): " + "; ".join(outcome.problems), err=True)
        raise typer.Exit(1)
