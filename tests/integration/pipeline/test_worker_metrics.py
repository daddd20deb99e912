"""A real Prometheus scrapes a running ``ioc worker`` and reads its metrics back; the
worker's health endpoints answer."""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from iocdev.sandbox import Pipeline, envelope, free_port, pipeline

from ioc.core.settings import Settings
from tests.integration.observability.test_prometheus_scrape import PROMETHEUS, _query

pytestmark = [pytest.mark.integration, pytest.mark.slow]


@pytest.fixture
def pipe(stack: Settings, tmp_path: Path) -> Iterator[Pipeline]:
    with pipeline(stack, tmp_path, partitions=1) as p:
        yield p


def start_prometheus(target: str, tmp: Path) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    config = tmp / "prometheus.yml"
    config.write_text(yaml.safe_dump({"scrape_configs": [{
        "job_name": "ioc-worker", "scrape_interval": "1s",
        "static_configs": [{"targets": [target]}]}]}))
    proc = subprocess.Popen(
        [PROMETHEUS, f"--config.file={config}", f"--web.listen-address=127.0.0.1:{port}",
         f"--storage.tsdb.path={tmp / 'prom'}"],
        stdout=(tmp / "prometheus.log").open("wb"), stderr=subprocess.STDOUT)
    return proc, f"http://127.0.0.1:{port}"


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
    assert ready.status_code == 200 and ready.json()["ready"] is True
    prometheus, base = start_prometheus(web, tmp_path)
    try:
        expr = 'sum(ioc_ingest_events_received_total{job="ioc-worker",feed="sensor"})'
        deadline = time.monotonic() + 60
        result: list[dict[str, object]] = []
        while time.monotonic() < deadline and not result:
            result = _query(base, expr)
            time.sleep(0.5)
        assert result, "the worker's metric never reached Prometheus"
        value = result[0]["value"]
        assert isinstance(value, list) and float(value[1]) == 31.0  # 30 valid + 1 rejected
        rejected = _query(base, 'ioc_ingest_events_rejected_total{reason="not_json"}')
        assert rejected and float(rejected[0]["value"][1]) == 1.0  # type: ignore[index]
    finally:
        prometheus.terminate()
        prometheus.wait(timeout=20)
