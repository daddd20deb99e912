"""The live terminal view: a :class:`Snapshot` taken once a second, drawn with ``rich``
(already installed as a dependency of typer) on a terminal, or as one plain progress
line every few seconds when stdout is not a terminal (CI logs).

A snapshot combines the workers' ``/metrics`` (events received and dead-lettered per
feed) with database counts (rows stored per feed, active alerts, KPIs). Rates are
differences between two snapshots.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from iocdev.demo.queries import KPIS, AlertRow

FEEDS = ("sensor", "traffic", "service")
ALERT_ROWS = 6
"""Alert rows in the panel (the worst first), so it fits a 40-line terminal."""
_SAMPLE = re.compile(r'^(ioc_ingest_events_(?:received|rejected)_total)\{([^}]*)\}\s+(\S+)$')
_FEED_LABEL = re.compile(r'feed="([^"]*)"')


def parse_metrics(text: str) -> dict[str, dict[str, float]]:
    """``{"received"|"rejected": {feed: total}}`` from Prometheus text exposition."""
    out: dict[str, dict[str, float]] = {"received": {}, "rejected": {}}
    for line in text.splitlines():
        m = _SAMPLE.match(line)
        if not m:
            continue
        feed = _FEED_LABEL.search(m.group(2))
        if feed is None:
            continue
        kind = "received" if "received" in m.group(1) else "rejected"
        out[kind][feed.group(1)] = out[kind].get(feed.group(1), 0.0) + float(m.group(3))
    return out


def scrape(urls: Iterable[str], timeout: float = 0.5) -> dict[str, dict[str, float]]:
    """Sum the ingest counters of every worker that answers (the others count 0)."""
    import httpx

    total: dict[str, dict[str, float]] = {"received": {}, "rejected": {}}
    for url in urls:
        try:
            text = httpx.get(url, timeout=timeout).text
        except httpx.HTTPError:
            continue
        for kind, feeds in parse_metrics(text).items():
            for feed, value in feeds.items():
                total[kind][feed] = total[kind].get(feed, 0.0) + value
    return total


@dataclass
class Snapshot:
    """What the view shows at one instant."""

    at: float  # monotonic seconds
    elapsed_s: float
    phase: str
    progress: float  # 0..1 of the simulated span
    sim_clock: datetime | None
    stored: dict[str, int] = field(default_factory=dict)
    received: dict[str, float] = field(default_factory=dict)
    rejected: dict[str, float] = field(default_factory=dict)
    alerts: list[AlertRow] = field(default_factory=list)
    kpis: dict[str, float | None] = field(default_factory=dict)
    rates: dict[str, float] = field(default_factory=dict)  # stored rows/s per feed
    in_rates: dict[str, float] = field(default_factory=dict)  # received events/s per feed

    def with_rates(self, before: Snapshot | None) -> Snapshot:
        """Fill rates from the difference to an earlier snapshot."""
        if before is not None and self.at > before.at:
            dt = self.at - before.at
            self.rates = {f: max(0.0, (self.stored.get(f, 0) - before.stored.get(f, 0)) / dt)
                          for f in FEEDS}
            self.in_rates = {f: max(0.0, (self.received.get(f, 0.0)
                                          - before.received.get(f, 0.0)) / dt)
                             for f in FEEDS}
        return self

    def alert_counts(self) -> dict[str, int]:
        counts = {"critical": 0, "warning": 0, "info": 0}
        for a in self.alerts:
            counts[a.severity] = counts.get(a.severity, 0) + 1
        return counts


def _pct(v: float | None) -> str:
    return "  –  " if v is None else f"{100.0 * v:5.1f}%"


KPI_SHORT = {"online_share": "online", "on_time_share": "on time",
             "paid_online_share": "paid online", "digitised_share": "digitised"}


def plain_line(s: Snapshot) -> str:
    """One line for logs: phase, progress, stored rows and rates, alerts, KPIs."""
    stored = sum(s.stored.values())
    rate = sum(s.rates.values())
    a = s.alert_counts()
    kpis = " ".join(f"{KPI_SHORT[k]}={_pct(s.kpis.get(k)).strip()}" for k in KPIS)
    return (f"[{s.elapsed_s:6.1f}s] {s.phase:<9} sim {100.0 * s.progress:5.1f}% | stored "
            f"{stored:,} ({rate:,.0f}/s: " + ", ".join(
                f"{f} {s.rates.get(f, 0.0):,.0f}" for f in FEEDS)
            + f") | alerts crit {a['critical']} warn {a['warning']} info {a['info']}"
            f" | {kpis}")


def render(s: Snapshot, *, title: str) -> Any:
    """A rich renderable of the snapshot."""
    from rich.console import Group
    from rich.panel import Panel
    from rich.progress_bar import ProgressBar
    from rich.table import Table
    from rich.text import Text

    clock = f"{s.sim_clock:%Y-%m-%d %H:%M} UTC" if s.sim_clock else "–"
    head = Table.grid(padding=(0, 2))
    head.add_row(Text(title, style="bold"), Text(f"{s.phase}", style="cyan"),
                 Text(f"wall {s.elapsed_s:5.1f} s"), Text(f"simulated clock {clock}"))
    bar = Table.grid(padding=(0, 1))
    bar.add_row(ProgressBar(total=1.0, completed=s.progress, width=60),
                Text(f"{100.0 * s.progress:5.1f}% of the simulated span"))

    feeds = Table(title="events by feed", expand=True)
    for col in ("feed", "received/s", "stored/s", "stored", "dead-lettered"):
        feeds.add_column(col, justify="right" if col != "feed" else "left")
    for f in FEEDS:
        feeds.add_row(f, f"{s.in_rates.get(f, 0.0):,.0f}", f"{s.rates.get(f, 0.0):,.0f}",
                      f"{s.stored.get(f, 0):,}", f"{s.rejected.get(f, 0.0):,.0f}")
    feeds.add_row("total", f"{sum(s.in_rates.values()):,.0f}", f"{sum(s.rates.values()):,.0f}",
                  f"{sum(s.stored.values()):,}", f"{sum(s.rejected.values()):,.0f}",
                  style="bold")

    counts = s.alert_counts()
    alerts = Table(title=f"active alerts: critical {counts['critical']}, warning "
                         f"{counts['warning']}, info {counts['info']}", expand=True)
    for col in ("severity", "commune", "rule", "state"):
        alerts.add_column(col)
    styles = {"critical": "bold red", "warning": "yellow", "info": "blue"}
    for a in s.alerts[:ALERT_ROWS]:
        where = f"{a.commune_name or ''} {a.commune_code}" if a.commune_code else "province"
        alerts.add_row(Text(a.severity, style=styles.get(a.severity, "")), where, a.rule_id,
                       a.state)
    if len(s.alerts) > ALERT_ROWS:
        alerts.add_row("…", f"{len(s.alerts) - ALERT_ROWS} more", "", "")

    kpis = Table(title="headline KPIs (province, service_kpi_daily)", expand=True)
    for k in KPIS:
        kpis.add_column(KPI_SHORT[k], justify="right")
    kpis.add_row(*(_pct(s.kpis.get(k)) for k in KPIS))

    return Panel(Group(head, bar, feeds, alerts, kpis), title="ioc demo", border_style="blue")


class View:
    """Shows snapshots: a rich ``Live`` on a terminal, else a plain line every few s."""

    def __init__(self, *, tty: bool, title: str, plain_every_s: float = 5.0,
                 echo: Any = print) -> None:
        self.tty = tty
        self.title = title
        self.plain_every_s = plain_every_s
        self.echo = echo
        self._live: Any = None
        self._last_plain = 0.0

    def __enter__(self) -> View:
        if self.tty:
            from rich.live import Live

            self._live = Live(refresh_per_second=4, transient=False)
            self._live.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._live is not None:
            self._live.__exit__(None, None, None)
            self._live = None

    def show(self, s: Snapshot, *, force: bool = False) -> None:
        if self._live is not None:
            self._live.update(render(s, title=self.title))
            return
        now = time.monotonic()
        if force or now - self._last_plain >= self.plain_every_s:
            self._last_plain = now
            self.echo(plain_line(s))
