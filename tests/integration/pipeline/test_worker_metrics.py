"""A real Prometheus scrapes a running ``ioc worker`` and reads its metrics back; the
worker's health endpoints answer."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from iocdev.sandbox import Pipeline, envelope, private_prometheus

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def test_prometheus_scrapes_a_running_worker(pipe: Pipeline, tmp_path: Path) -> None:
    at = datetime.now(UTC) - timedelta(minutes=1)
    events: list[dict[str, Any]] = [
        envelope("sensor", f"m{i}", "aq-m", at + timedelta(seconds=i),
                 {"metric": "pm25", "value": 20.0, "unit": "ug/m3"}, commune_code="00004")
        for i in range(30)]
    pipe.produce("sensor", [(b"aq-m", json.dumps(events).encode()),
                            (b"bad", b"{not json")])
    pipe.start_worker()
    web = f"127.0.0.1:{pipe.web_ports[0]}"
    pipe.wait_for("SELECT count(*) FROM sensor_readings", 30)
    assert httpx.get(f"http://{web}/healthz", timeout=5).status_code == 200
    ready = httpx.get(f"http://{web}/readyz", timeout=5)
    assert ready.status_code == 200 and ready.json()["status"] == "ready"
    with private_prometheus([web], tmp_path / "prometheus") as prometheus:
        expr = 'sum(ioc_ingest_events_received_total{job="ioc-worker",feed="sensor"})'
        result = prometheus.wait_for(expr)
        assert float(result[0]["value"][1]) == 31.0  # 30 valid + 1 rejected
        rejected = prometheus.wait_for(
            'ioc_ingest_events_rejected_total{reason="not_json"}')
        assert float(rejected[0]["value"][1]) == 1.0
