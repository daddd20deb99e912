"""The live view's pieces: metric parsing, rates, the plain line and the rich panel."""

from __future__ import annotations

import io
from datetime import UTC, datetime

from iocdev.demo.live import Snapshot, parse_metrics, plain_line, render
from iocdev.demo.queries import AlertRow
from iocdev.demo.run import format_span
from rich.console import Console

METRICS = """# HELP ioc_ingest_events_received_total Events read.
# TYPE ioc_ingest_events_received_total counter
ioc_ingest_events_received_total{feed="sensor"} 1200.0
ioc_ingest_events_received_total{feed="traffic"} 300.0
ioc_ingest_events_created{feed="sensor"} 1.7e9
ioc_ingest_events_rejected_total{feed="sensor",reason="bad_unit"} 4.0
ioc_ingest_events_rejected_total{feed="sensor",reason="not_json"} 2.0
"""


def test_parse_metrics_sums_reasons_per_feed() -> None:
    assert parse_metrics(METRICS) == {"received": {"sensor": 1200.0, "traffic": 300.0},
                                      "rejected": {"sensor": 6.0}}


def _snap(at: float, stored: int, alerts: list[AlertRow] | None = None) -> Snapshot:
    return Snapshot(at=at, elapsed_s=at, phase="simulate", progress=0.5,
                    sim_clock=datetime(2026, 1, 5, 8, tzinfo=UTC),
                    stored={"sensor": stored, "traffic": 0, "service": 0},
                    received={"sensor": float(stored)}, alerts=alerts or [],
                    kpis={"online_share": 0.853})


def test_rates_and_plain_line() -> None:
    alerts = [AlertRow("00001", "Phường A", "pm25_1h", "critical", "firing", 160.0)]
    snap = _snap(12.0, 5000, alerts).with_rates(_snap(10.0, 1000))
    assert snap.rates["sensor"] == 2000.0
    assert snap.in_rates["sensor"] == 2000.0
    line = plain_line(snap)
    assert "sim  50.0%" in line and "5,000" in line and "crit 1" in line
    assert "online=85.3%" in line


def test_rich_panel_renders() -> None:
    alerts = [AlertRow(f"0000{i}", f"Xã {i}", "pm25_1h", "warning", "firing", 60.0)
              for i in range(12)]
    console = Console(width=120, record=True, file=io.StringIO())
    console.print(render(_snap(1.0, 10, alerts), title="province 01"))
    text = console.export_text()
    assert "events by feed" in text and "6 more" in text and "85.3%" in text


def test_format_span() -> None:
    assert format_span(7200) == "2h"
    assert format_span(1200) == "20m"
    assert format_span(90) == "90s"
