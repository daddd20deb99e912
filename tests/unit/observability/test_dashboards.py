"""The provisioned Grafana dashboards are valid dashboard models for the pinned Grafana.

No registry package ships the dashboard JSON schema as a file (the npm and PyPI
grafana-foundation-sdk packages ship TypeScript and Python types only), so the model's
shape is checked with the JSON Schema below, written from the Grafana 11.6 dashboard
types (schemaVersion 41), plus the rules a schema cannot say: unique ids, no overlapping
panels, datasources that provisioning creates, variables that exist, time columns for
time series, latitude/longitude for geomaps, metric names from ioccore/metrics.py.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from types import ModuleType
from typing import Any

import jsonschema
import pytest
import yaml

from ioccore.settings import ROOT

GRAFANA = ROOT / "config" / "grafana"
DASHBOARDS = sorted((GRAFANA / "dashboards").glob("*.json"))
EXPECTED = {"ioc-overview", "ioc-commune", "ioc-environment", "ioc-traffic", "ioc-services",
            "ioc-kpi-national", "ioc-pipeline", "ioc-incidents", "ioc-scorecards",
            "ioc-federation", "ioc-feedback"}
BUILT_IN_VARS = {"__interval", "__interval_ms", "__rate_interval", "__range", "__from",
                 "__to", "__timeFilter", "__timeGroupAlias", "__timeGroup", "__timeFrom",
                 "__timeTo", "__unixEpochFilter", "__unixEpochGroupAlias", "__timeEpoch",
                 "__dashboard", "__org", "__user"}

_GRID = {"type": "object", "required": ["x", "y", "w", "h"],
         "properties": {k: {"type": "integer", "minimum": 0} for k in ("x", "y", "w", "h")}}
_DS_REF = {"type": "object", "required": ["type", "uid"],
           "properties": {"type": {"type": "string"}, "uid": {"type": "string"}}}
_TARGET = {
    "type": "object", "required": ["refId", "datasource"],
    "properties": {"refId": {"type": "string", "pattern": "^[A-Z]$"}, "datasource": _DS_REF,
                   "format": {"enum": ["time_series", "table"]},
                   "rawSql": {"type": "string", "minLength": 10},
                   "expr": {"type": "string", "minLength": 3},
                   "legendFormat": {"type": "string"}},
    "oneOf": [{"required": ["rawSql", "format"]}, {"required": ["expr"]}],
}
_THRESHOLDS = {"type": "object", "required": ["mode", "steps"],
               "properties": {"mode": {"enum": ["absolute", "percentage"]},
                              "steps": {"type": "array", "minItems": 1, "items": {
                                  "type": "object", "required": ["color", "value"],
                                  "properties": {"color": {"type": "string"},
                                                 "value": {"type": ["number", "null"]}}}}}}
_PANEL = {
    "type": "object",
    "required": ["id", "type", "title", "gridPos", "datasource", "targets", "fieldConfig",
                 "options"],
    "properties": {
        "id": {"type": "integer", "minimum": 1},
        "type": {"enum": ["timeseries", "stat", "table", "geomap", "bargauge", "gauge",
                          "barchart", "piechart", "text"]},
        "title": {"type": "string", "minLength": 1},
        "description": {"type": "string"},
        "gridPos": _GRID, "datasource": _DS_REF,
        "targets": {"type": "array", "minItems": 1, "items": _TARGET},
        "fieldConfig": {"type": "object", "required": ["defaults", "overrides"], "properties": {
            "defaults": {"type": "object", "properties": {
                "unit": {"type": "string"}, "thresholds": _THRESHOLDS,
                "min": {"type": "number"}, "max": {"type": "number"}}},
            "overrides": {"type": "array", "items": {
                "type": "object", "required": ["matcher", "properties"]}}}},
        "options": {"type": "object"},
    },
}
_ROW = {"type": "object", "required": ["id", "type", "title", "gridPos", "collapsed", "panels"],
        "properties": {"type": {"const": "row"}, "id": {"type": "integer"}, "gridPos": _GRID,
                       "collapsed": {"type": "boolean"}, "panels": {"type": "array"}}}
_VARIABLE = {
    "type": "object", "required": ["type", "name", "query"],
    "properties": {"type": {"enum": ["query", "custom", "constant", "interval", "datasource",
                                     "textbox", "adhoc"]},
                   "name": {"type": "string", "pattern": "^[a-z_][a-z0-9_]*$"},
                   "multi": {"type": "boolean"}, "includeAll": {"type": "boolean"},
                   "refresh": {"enum": [0, 1, 2]}, "datasource": _DS_REF}}
DASHBOARD_SCHEMA: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "type": "object",
    "required": ["uid", "title", "schemaVersion", "panels", "time", "templating", "tags",
                 "timezone", "editable", "annotations"],
    "properties": {
        "uid": {"type": "string", "pattern": "^[A-Za-z0-9_-]{8,40}$"},
        "title": {"type": "string", "minLength": 1},
        "schemaVersion": {"const": 41},
        "tags": {"type": "array", "items": {"type": "string"}, "contains": {"const": "ioc"}},
        "timezone": {"type": "string"}, "editable": {"type": "boolean"},
        "graphTooltip": {"enum": [0, 1, 2]}, "refresh": {"type": "string"},
        "time": {"type": "object", "required": ["from", "to"]},
        "templating": {"type": "object", "required": ["list"],
                       "properties": {"list": {"type": "array", "items": _VARIABLE}}},
        "annotations": {"type": "object", "required": ["list"]},
        "panels": {"type": "array", "minItems": 1,
                   "items": {"if": {"properties": {"type": {"const": "row"}}},
                             "then": _ROW, "else": _PANEL}},
    },
}


def _builder() -> ModuleType:
    from iocdev import dashboards

    return dashboards


def _load(path: Path) -> dict[str, Any]:
    data = json.loads(path.read_text(encoding="utf-8"))
    assert isinstance(data, dict)
    return data


def _panels(model: dict[str, Any]) -> list[dict[str, Any]]:
    return [p for p in model["panels"] if p["type"] != "row"]


def _provisioned_datasources() -> dict[str, str]:
    found: dict[str, str] = {}
    for path in (GRAFANA / "provisioning" / "datasources").glob("*.yml"):
        for ds in yaml.safe_load(path.read_text(encoding="utf-8"))["datasources"]:
            found[ds["uid"]] = ds["type"]
    return found


def test_the_dashboards_exist_and_are_up_to_date() -> None:
    assert {p.stem for p in DASHBOARDS} == EXPECTED
    assert _builder().main(["--check"]) == 0, "run python tools/iocdev/dashboards.py"


def test_grafana_version_matches_compose() -> None:
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text(encoding="utf-8"))
    image = compose["services"]["grafana"]["image"]
    assert image == f"grafana/grafana:{_builder().GRAFANA_VERSION}"


@pytest.mark.parametrize("path", DASHBOARDS, ids=lambda p: p.stem)
def test_dashboard_matches_the_model_schema(path: Path) -> None:
    model = _load(path)
    jsonschema.Draft202012Validator.check_schema(DASHBOARD_SCHEMA)
    errors = sorted(jsonschema.Draft202012Validator(DASHBOARD_SCHEMA).iter_errors(model),
                    key=lambda e: list(e.path))
    assert not errors, "\n".join(f"{list(e.path)}: {e.message}" for e in errors[:10])
    assert model["uid"] == path.stem


def test_uids_and_titles_are_unique() -> None:
    models = [_load(p) for p in DASHBOARDS]
    assert len({m["uid"] for m in models}) == len(models)
    assert len({m["title"] for m in models}) == len(models)


@pytest.mark.parametrize("path", DASHBOARDS, ids=lambda p: p.stem)
def test_panel_ids_unique_and_grid_without_overlap(path: Path) -> None:
    model = _load(path)
    ids = [p["id"] for p in model["panels"]]
    assert len(ids) == len(set(ids))
    taken: dict[tuple[int, int], int] = {}
    for p in model["panels"]:
        g = p["gridPos"]
        assert g["w"] >= 1 and g["h"] >= 1 and g["x"] + g["w"] <= 24, p["title"]
        for x in range(g["x"], g["x"] + g["w"]):
            for y in range(g["y"], g["y"] + g["h"]):
                assert (x, y) not in taken, f"{p['title']} overlaps panel {taken[(x, y)]}"
                taken[(x, y)] = p["id"]


@pytest.mark.parametrize("path", DASHBOARDS, ids=lambda p: p.stem)
def test_datasources_exist_in_provisioning(path: Path) -> None:
    provisioned = _provisioned_datasources()
    model = _load(path)
    refs = [p["datasource"] for p in _panels(model)]
    refs += [t["datasource"] for p in _panels(model) for t in p["targets"]]
    refs += [v["datasource"] for v in model["templating"]["list"] if "datasource" in v]
    for ref in refs:
        assert ref["uid"] in provisioned, ref
        assert provisioned[ref["uid"]] == ref["type"], ref
    for p in _panels(model):
        for t in p["targets"]:
            is_sql = t["datasource"]["type"] == "grafana-postgresql-datasource"
            assert ("rawSql" in t) == is_sql and ("expr" in t) != is_sql, p["title"]


def test_timescaledb_datasource_settings() -> None:
    path = GRAFANA / "provisioning" / "datasources" / "ioc.yml"
    sources = {d["uid"]: d for d in yaml.safe_load(path.read_text())["datasources"]}
    ts = sources["ioc-timescaledb"]
    assert ts["type"] == "grafana-postgresql-datasource"
    assert ts["user"] == "ioc_grafana"  # read-only role (docs/security.md)
    assert ts["jsonData"] | {"database": "ioc", "sslmode": "disable", "postgresVersion": 1500,
                             "timescaledb": True} == ts["jsonData"]
    assert sources["ioc-prometheus"]["type"] == "prometheus"


def test_dashboard_provider_points_at_the_mounted_folder() -> None:
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text(encoding="utf-8"))
    mounts = {v.split(":")[0]: v.split(":")[1]
              for v in compose["services"]["grafana"]["volumes"]}
    provider = yaml.safe_load(
        (GRAFANA / "provisioning" / "dashboards" / "ioc.yml").read_text())["providers"][0]
    assert mounts["./config/grafana/dashboards"] == provider["options"]["path"]
    assert mounts["./config/grafana/provisioning"] == "/etc/grafana/provisioning"


@pytest.mark.parametrize("path", DASHBOARDS, ids=lambda p: p.stem)
def test_variables_used_are_defined(path: Path) -> None:
    model = _load(path)
    defined = {v["name"] for v in model["templating"]["list"]}
    texts = [t.get("rawSql") or t.get("expr") for p in _panels(model) for t in p["targets"]]
    texts += [v["query"] for v in model["templating"]["list"]]
    for text in texts:
        for name in re.findall(r"\$\{?(\w+)", text):
            assert name in defined or name in BUILT_IN_VARS, f"${name} undefined in {text}"


@pytest.mark.parametrize("path", DASHBOARDS, ids=lambda p: p.stem)
def test_sql_panels_return_the_columns_their_visualisation_needs(path: Path) -> None:
    for p in _panels(_load(path)):
        for t in p["targets"]:
            if "rawSql" not in t:
                continue
            q = t["rawSql"]
            if p["type"] == "timeseries":
                assert t["format"] == "time_series", p["title"]
                assert "$__timeGroupAlias(" in q or re.search(r"\bAS time\b", q), p["title"]
            if p["type"] == "geomap":
                assert t["format"] == "table", p["title"]
                assert re.search(r"\blatitude\b", q) and re.search(r"\blongitude\b", q)
                assert "approximate" in p["description"].lower(), p["title"]


def test_pipeline_dashboard_covers_the_issue() -> None:
    model = _load(GRAFANA / "dashboards" / "ioc-pipeline.json")
    exprs = " ".join(t["expr"] for p in _panels(model) for t in p["targets"] if "expr" in t)
    for needle in ("ioc_ingest_events_received_total", "ioc_ingest_events_rejected_total",
                   "histogram_quantile(0.5", "histogram_quantile(0.99",
                   "ioc_kafka_consumer_lag_messages", "ioc_sink_flush_seconds_bucket",
                   "ioc_alerts_active"):
        assert needle in exprs, needle
