"""A real Prometheus scrapes a running ioc metrics endpoint and the metric comes back
through its query API.

The endpoint is prometheus_client's HTTP server in this process, serving the metrics
of ioc/core/metrics.py; the Prometheus is a second, private one (Debian's /usr/bin/prometheus)
on free loopback ports with its own temporary storage, stopped by its pid at the end.
"""

from __future__ import annotations

import socket
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import yaml
from prometheus_client import start_http_server

from ioc.core.metrics import EVENTS_RECEIVED

pytestmark = pytest.mark.integration

PROMETHEUS = "/usr/bin/prometheus"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def metrics_port() -> Iterator[int]:
    port = _free_port()
    server, thread = start_http_server(port, addr="127.0.0.1")
    try:
        yield port
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


@pytest.fixture
def private_prometheus(metrics_port: int, tmp_path: Path) -> Iterator[str]:
    assert Path(PROMETHEUS).exists(), "Debian's prometheus is installed by `ioc stack up`"
    port = _free_port()
    config = tmp_path / "prometheus.yml"
    config.write_text(yaml.safe_dump({
        "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
        "scrape_configs": [{"job_name": "ioc-worker", "scrape_interval": "1s",
                            "static_configs": [{"targets": [f"127.0.0.1:{metrics_port}"]}]}],
    }))
    log = (tmp_path / "prometheus.log").open("w")
    proc = subprocess.Popen(
        [PROMETHEUS, f"--config.file={config}", f"--web.listen-address=127.0.0.1:{port}",
         f"--storage.tsdb.path={tmp_path / 'data'}", "--storage.tsdb.retention.time=1h"],
        stdout=log, stderr=subprocess.STDOUT)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)
        log.close()


def _query(base: str, expr: str) -> list[dict[str, object]]:
    try:
        response = httpx.get(f"{base}/api/v1/query", params={"query": expr}, timeout=5)
    except httpx.TransportError:
        return []                      # not listening yet
    if response.status_code != 200:
        return []
    result: list[dict[str, object]] = response.json()["data"]["result"]
    return result


def test_prometheus_scrapes_a_metric_and_answers_with_it(private_prometheus: str) -> None:
    feed = f"itest-{uuid.uuid4().hex[:8]}"
    EVENTS_RECEIVED.labels(feed=feed).inc(42)
    try:
        _scrape_and_check(private_prometheus, feed)
    finally:
        EVENTS_RECEIVED.remove(feed)


def _scrape_and_check(private_prometheus: str, feed: str) -> None:
    expr = f'ioc_ingest_events_received_total{{feed="{feed}", job="ioc-worker"}}'
    deadline = time.monotonic() + 60
    result: list[dict[str, object]] = []
    while time.monotonic() < deadline:
        result = _query(private_prometheus, expr)
        if result:
            break
        time.sleep(0.5)
    assert result, "the metric never appeared in the private Prometheus"
    value = result[0]["value"]
    assert isinstance(value, list) and float(value[1]) == 42.0
    up = _query(private_prometheus, 'up{job="ioc-worker"}')
    assert up and isinstance(up[0]["value"], list) and up[0]["value"][1] == "1"
