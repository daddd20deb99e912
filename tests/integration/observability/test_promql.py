"""Every PromQL expression (dashboard panels and alerting rules) is accepted by the real
Prometheus of the local stack: ``GET /api/v1/query`` answers ``status: success``."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import httpx
import pytest
import yaml
from iocdev.settings import DevSettings

from ioccore.settings import ROOT
from tests.integration.observability.grafana_expand import Expander

pytestmark = pytest.mark.integration

DASHBOARDS = sorted((ROOT / "config" / "grafana" / "dashboards").glob("*.json"))
RULES = sorted((ROOT / "config" / "prometheus" / "rules").glob("*.yml"))


def _expressions() -> list[object]:
    now = datetime.now(UTC)
    exp = Expander(now - timedelta(hours=1), now, interval="15s")
    params: list[object] = []
    for path in DASHBOARDS:
        model = json.loads(path.read_text(encoding="utf-8"))
        for panel in model["panels"]:
            for target in panel.get("targets", []):
                if "expr" in target:
                    params.append(pytest.param(
                        exp.expand(target["expr"]),
                        id=f"{model['uid']}:{panel['title']}:{target['refId']}"))
    for path in RULES:
        for group in yaml.safe_load(path.read_text(encoding="utf-8"))["groups"]:
            for rule in group["rules"]:
                name = rule.get("alert") or rule.get("record")
                params.append(pytest.param(rule["expr"], id=f"{path.stem}:{name}"))
    return params


@pytest.mark.parametrize("expr", _expressions())
def test_prometheus_accepts(expr: str, stack: DevSettings) -> None:
    for path in ("query", "query_range"):
        query = {"query": expr}
        if path == "query_range":
            end = datetime.now(UTC).timestamp()
            query |= {"start": str(end - 3600), "end": str(end), "step": "60"}
        response = httpx.get(f"{stack.prometheus.url}/api/v1/{path}", params=query,
                             timeout=10)
        body = response.json()
        assert response.status_code == 200 and body["status"] == "success", body
