"""`ioc simulate-reports`: citizen-report flows stored into the database (demos)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Annotated

import typer


def simulate_reports(
    province: Annotated[str, typer.Option(help="Province code (01 = Hà Nội).")] = "01",
    hours: Annotated[float, typer.Option(help="Simulated span ending now.")] = 72.0,
    seed: Annotated[int, typer.Option(help="Same seed and options: same reports.")] = 0,
    rain: Annotated[str | None, typer.Option(
        help="A rain episode as hours ago START:END, e.g. 30:26 (flooding reports surge).")
                    ] = "30:26",
    late_share: Annotated[float, typer.Option(help="Share resolved after their SLA.")] = 0.2,
    until: Annotated[str | None, typer.Option(
        help="End of the span, ISO 8601 (default: now, to the minute).")] = None,
) -> None:
    """Store a realistic flow of citizen reports (diurnal rhythm, rain-driven flooding,
    a share resolved late) for the last HOURS; re-running with the same options adds
    nothing (docs/feedback.md). Without ``--until`` the span ends now, so a re-run in a
    later minute stores what happened in between (statuses come due); pass ``--until``
    for a span that does not move."""
    from psycopg import AsyncConnection

    from ioccore.feedback import catalogue
    from ioccore.settings import get_settings
    from iocdev.simulate.communes import load_communes
    from iocdev.simulate.reports import Rain, backfill, report_flow

    settings = get_settings()
    now = (datetime.fromisoformat(until).astimezone(UTC) if until
           else datetime.now(UTC)).replace(second=0, microsecond=0)
    start = now - timedelta(hours=hours)
    episode = None
    if rain:
        a, b = (float(x) for x in rain.split(":"))
        episode = Rain(now - timedelta(hours=a), now - timedelta(hours=b))
    cat = catalogue.default()
    flow = report_flow(load_communes(province), cat, start=start, hours=hours, seed=seed,
                       rain=episode, late_share=late_share)

    async def run() -> dict[str, int]:
        async with await AsyncConnection.connect(settings.database.conninfo(),
                                                 autocommit=True) as conn:
            return await backfill(conn, flow, cat, now=now if until else datetime.now(UTC),
                                  nearest_max_m=settings.geo.nearest_max_m)

    counts = asyncio.run(run())
    typer.echo(", ".join(f"{v} {k}" for k, v in counts.items()) + " stored")
