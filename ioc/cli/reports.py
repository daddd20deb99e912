"""`ioc reports`: the monthly schedule (``run``), a report now (``generate``), the list."""

from __future__ import annotations

import time
from datetime import date
from pathlib import Path
from typing import Annotated

import typer

app = typer.Typer(no_args_is_help=True)


@app.command("run")
def run(
    every: Annotated[float, typer.Option(help="Seconds between checks.")] = 300.0,
    after_days: Annotated[int, typer.Option(
        help="Days into the new month before last month's reports are made.")] = 1,
    scope: Annotated[list[str] | None, typer.Option(
        help="nation or a province code (repeat); default: the nation and every "
             "province with KPI rows in the month.")] = None,
    once: Annotated[bool, typer.Option(help="Check once and exit.")] = False,
    database: Annotated[str | None, typer.Option(help="Database name.")] = None,
) -> None:
    """Generate each month's reports once (any number of these may run)."""
    import psycopg

    from ioccore.db.connections import connect
    from ioccore.logs import configure_logging
    from ioccore.reports import store
    from ioccore.scorecards import default_source
    from ioccore.settings import get_settings

    settings = get_settings()
    configure_logging()
    source = default_source(settings)
    while True:
        try:
            with connect(settings.database.conninfo(database), purpose="reports",
                         autocommit=True) as conn:
                made = store.run_schedule(conn, source=source, after_days=after_days,
                                          scopes=scope or None)
            for report_id in made:
                typer.echo(f"report {report_id} generated")
        except psycopg.OperationalError as exc:  # the database is down: try again later
            typer.echo(f"error: {exc}", err=True)
        if once:
            return
        time.sleep(every)


@app.command("generate")
def generate(
    scope: Annotated[str, typer.Argument(help="nation or a two-digit province code.")],
    period: Annotated[str | None, typer.Option(
        help="Any day of the period (YYYY-MM-DD); default today.")] = None,
    grain: Annotated[str, typer.Option(help="month, week or day.")] = "month",
    out: Annotated[Path | None, typer.Option(
        help="Also write <out>.xlsx and <out>.csv.")] = None,
    database: Annotated[str | None, typer.Option(help="Database name.")] = None,
) -> None:
    """A report now (stored like the scheduled ones, kind on_demand)."""
    import re

    from ioccore.db.connections import connect
    from ioccore.kpis import GRAINS, Grain, vn_today
    from ioccore.reports import store
    from ioccore.scorecards import default_source
    from ioccore.settings import get_settings

    grains: dict[str, Grain] = {g: g for g in GRAINS}
    if not re.fullmatch(r"nation|\d{2}", scope) or grain not in grains:
        typer.echo("error: scope is nation or a two-digit code; grain month|week|day",
                   err=True)
        raise typer.Exit(2)
    settings = get_settings()
    day = date.fromisoformat(period) if period else vn_today()
    with connect(settings.database.conninfo(database), purpose="cli",
                 autocommit=True) as conn:
        info = store.generate_on_demand(
            conn, scope=scope, grain=grains[grain],
            period=day, source=default_source(settings), requested_by="cli")
        if out is not None:
            row = conn.execute("SELECT xlsx, csv FROM reports WHERE id = %s",
                               (info.id,)).fetchone()
            if row:
                out.with_suffix(".xlsx").write_bytes(bytes(row[0]))
                out.with_suffix(".csv").write_bytes(bytes(row[1]))
    typer.echo(f"report {info.id}: {info.scope} {info.grain} {info.period} "
               f"(cut-off {info.cutoff})")


@app.command("list")
def list_reports(
    scope: Annotated[str | None, typer.Option(help="nation or a province code.")] = None,
    database: Annotated[str | None, typer.Option(help="Database name.")] = None,
) -> None:
    """Stored reports, newest period first."""
    from ioccore.db.connections import connect
    from ioccore.reports import store
    from ioccore.settings import get_settings

    with connect(get_settings().database.conninfo(database), purpose="cli") as conn:
        for r in conn.execute(store.list_query(), {"scope": scope, "limit": 1000}):
            info = store.ReportInfo(*r)
            typer.echo(f"{info.id}\t{info.kind}\t{info.scope}\t{info.grain}\t{info.period}"
                       f"\t{info.state}\t{info.cutoff or ''}")
