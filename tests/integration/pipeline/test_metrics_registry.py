"""The metric registry is checked, not trusted.

1. After an end-to-end run (valid events that fire an alert, a late event, a bad
   message, the alert delivered to the stack's Alertmanager) the worker's ``/metrics``
   has a sample of every metric ``ioccore.metrics`` declares for workers, except those
   declared ``ON_EVENT_ONLY`` with a reason.
2. With Alertmanager unreachable, a real Prometheus scraping the worker and loading
   ``config/prometheus/rules/pipeline.yml`` fires ``IocAlertDeliveryFailing`` (its ``for``
   shortened to 0s so the test does not wait ten minutes; the expression is the file's).
"""

from __future__ import annotations

import json
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from iocdev.sandbox import Pipeline, envelope, private_prometheus
from iocdev.supervise import free_port
from prometheus_client import metrics as prom_metrics
from prometheus_client.parser import text_string_to_metric_families

from ioccore import metrics
from tests.support.rulefiles import pm25_rule, rules_env

pytestmark = [pytest.mark.integration, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[3]
def start_worker(pipe: Pipeline, tmp: Path, **env: str) -> str:
    rule = pm25_rule(f"registry_pm25_high_{uuid.uuid4().hex[:8]}",
                     summary="PM2.5 {commune_en}")
    pipe.start_worker(extra_env={**rules_env(tmp, rule), **env})
    return f"127.0.0.1:{pipe.web_ports[-1]}"


def produce_run(pipe: Pipeline) -> None:
    t0 = datetime.now(UTC).replace(second=0, microsecond=0) - timedelta(minutes=2)
    events: list[dict[str, Any]] = [
        envelope("sensor", f"v{i}", "aq-reg", t0 + timedelta(seconds=i),
                 {"metric": "pm25", "value": 150.0, "unit": "ug/m3"}, commune_code="00004")
        for i in range(20)]
    # a reading 30 s into the next minute closes minute t0: it is evaluated (event time)
    events.append(envelope("sensor", "v-close", "aq-reg", t0 + timedelta(seconds=90),
                           {"metric": "pm25", "value": 150.0, "unit": "ug/m3"},
                           commune_code="00004"))
    pipe.produce("sensor", [(b"aq-reg", json.dumps(events).encode()),
                            (b"bad", b"{not json")])
    pipe.wait_for("SELECT count(*) FROM sensor_readings", 21)
    late = envelope("sensor", "late-1", "aq-reg", t0 - timedelta(minutes=30),
                    {"metric": "pm25", "value": 10.0, "unit": "ug/m3"}, commune_code="00004")
    pipe.produce("sensor", [(b"aq-reg", json.dumps([late]).encode())])
    pipe.wait_for("SELECT count(*) FROM sensor_readings WHERE late", 1)


def worker_metrics() -> dict[str, str]:
    """Declared name (as exposed, counters with ``_total``) -> attribute in ioccore.metrics."""
    out: dict[str, str] = {}
    for attr, value in vars(metrics).items():
        if isinstance(value, prom_metrics.MetricWrapperBase):
            name = value._name + ("_total" if value._type == "counter" else "")
            out[name] = attr
    return out


def sampled(text: str) -> set[str]:
    names: set[str] = set()
    for family in text_string_to_metric_families(text):
        if family.samples:
            names.add(family.name + ("_total" if family.type == "counter" else ""))
    return names


def test_after_an_end_to_end_run_every_declared_worker_metric_has_samples(
        pipe: Pipeline, tmp_path: Path) -> None:
    web = start_worker(pipe, tmp_path)
    produce_run(pipe)
    pipe.wait_for("SELECT count(*) FROM alert_outbox WHERE delivered_at IS NOT NULL", 1)
    time.sleep(6)  # one consumer-lag round
    text = httpx.get(f"http://{web}/metrics", timeout=10).text
    have = sampled(text)
    declared = worker_metrics()
    for reason_holder in (metrics.ON_EVENT_ONLY, metrics.API_ONLY, metrics.SIMULATOR_ONLY,
                          metrics.MQTT_BRIDGE_ONLY):
        assert set(reason_holder) <= set(declared), "exemptions must name declared metrics"
    exempt = (set(metrics.ON_EVENT_ONLY) | metrics.API_ONLY | metrics.SIMULATOR_ONLY
              | metrics.MQTT_BRIDGE_ONLY)
    missing = sorted(n for n in declared if n not in have and n not in exempt)
    assert not missing, f"declared but never set in a worker: {missing}"
    # what this run did cause must be there even if exempt in general
    assert {"ioc_stream_events_late_total", "ioc_alerts_transitions_total",
            "ioc_alerts_outbox_delivered_total"} <= have
    ready = httpx.get(f"http://{web}/readyz", timeout=5).json()
    assert ready == {"status": "ready", "failed": [],
                     "checks": {"kafka": "ok", "database": "ok"}, "down_since": {},
                     "waiting": 0}


def test_prometheus_fires_delivery_failing_when_alertmanager_is_down(
        pipe: Pipeline, tmp_path: Path) -> None:
    web = start_worker(pipe, tmp_path,  # nothing listens on that port
                       IOC__ALERTMANAGER__PORT=str(free_port()))
    rules = yaml.safe_load((ROOT / "config/prometheus/rules/pipeline.yml").read_text())
    for group in rules["groups"]:
        group["rules"] = [dict(r, **{"for": "0s"}) for r in group["rules"]
                          if r.get("alert") == "IocAlertDeliveryFailing"]
    (tmp_path / "rules.yml").write_text(yaml.safe_dump(rules))
    with private_prometheus([web], tmp_path / "prometheus",
                            rule_files=[tmp_path / "rules.yml"]) as prometheus:
        produce_run(pipe)
        pipe.wait_for("SELECT count(*) > 0 FROM alert_outbox WHERE attempts > 1", True)
        deadline = time.monotonic() + 90
        firing: list[dict[str, Any]] = []
        while time.monotonic() < deadline and not firing:
            try:
                got = httpx.get(f"{prometheus.base}/api/v1/alerts", timeout=5).json()
                firing = [a for a in got["data"]["alerts"]
                          if a["labels"]["alertname"] == "IocAlertDeliveryFailing"
                          and a["state"] == "firing"]
            except httpx.HTTPError:
                pass
            time.sleep(1)
        assert firing, "IocAlertDeliveryFailing never fired"
        assert firing[0]["labels"]["receiver"] == "alertmanager"
        assert pipe.query("SELECT count(*) FROM alert_outbox WHERE delivered_at IS NULL"
                          )[0][0] >= 1  # waiting, not lost
