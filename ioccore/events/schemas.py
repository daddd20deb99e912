"""JSON Schema files generated from the models: ``config/schemas/*.json``.

Regenerate after changing :mod:`ioccore.events.models` or :mod:`ioccore.events.units`::

    .venv/bin/python -m ioccore.events.schemas

A unit test fails when the files differ from what this module generates.
Rules JSON Schema cannot state (physical ranges after unit conversion, resolved_at
when resolved, duplicates, future timestamps) are documented in ``docs/events.md``.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Any

import msgspec

from ioccore.events import units
from ioccore.events.models import BODY_V1_BY_FEED, EnvelopeV1
from ioccore.settings import ROOT

SCHEMA_DIR = ROOT / "config" / "schemas"
BASE_ID = "https://ioc.example.gov.vn/schemas/"
DRAFT = "https://json-schema.org/draft/2020-12/schema"


def _unit_rules() -> list[dict[str, Any]]:
    """Per-metric accepted units, as if/then clauses on the sensor body."""
    rules: list[dict[str, Any]] = []
    for metric in units.METRICS:
        spellings = units.spellings(metric)
        rules.append({
            "if": {"properties": {"metric": {"const": metric}}, "required": ["metric"]},
            "then": {"properties": {"unit": {
                "description": (f"Canonical {units.CANONICAL_UNIT[metric]}; the validator "
                                "matches any case, µ/μ/u, ³/3, with or without ° and "
                                "blanks."),
                "enum": spellings,
            }}},
        })
    return rules


def _add_unit_rules(schema: dict[str, Any]) -> None:
    defs = schema.get("$defs", {})
    target = defs.get("SensorBodyV1", schema if schema.get("title") == "SensorBodyV1" else None)
    if target is not None:
        target["allOf"] = _unit_rules()


def _finish(schema: dict[str, Any], name: str, title: str) -> dict[str, Any]:
    _add_unit_rules(schema)
    return {"$schema": DRAFT, "$id": BASE_ID + name, "title": title, **schema}


def generate() -> dict[str, dict[str, Any]]:
    """File name -> JSON Schema document."""
    out: dict[str, dict[str, Any]] = {}
    out["envelope.v1.json"] = _finish(
        msgspec.json.schema(EnvelopeV1), "envelope.v1.json", "IOC event envelope, schema v1")
    batch = msgspec.json.schema(
        EnvelopeV1 | Annotated[list[EnvelopeV1], msgspec.Meta(min_length=1)])
    out["message.v1.json"] = _finish(
        batch, "message.v1.json",
        "IOC Kafka message value, schema v1: one envelope or a non-empty array of them")
    for feed, body in BODY_V1_BY_FEED.items():
        name = f"{feed}.v1.json"
        out[name] = _finish(msgspec.json.schema(body), name, f"IOC {feed} body, schema v1")
    return out


def render(schema: dict[str, Any]) -> str:
    """The exact file text for a schema (stable key order, trailing newline)."""
    return json.dumps(schema, indent=2, ensure_ascii=False) + "\n"


def write(directory: Path = SCHEMA_DIR) -> list[Path]:
    """Write every generated schema into ``directory``; returns the paths."""
    directory.mkdir(parents=True, exist_ok=True)
    paths = []
    for name, schema in generate().items():
        path = directory / name
        path.write_text(render(schema), encoding="utf-8")
        paths.append(path)
    return paths


if __name__ == "__main__":
    for p in write(Path(sys.argv[1]) if len(sys.argv) > 1 else SCHEMA_DIR):
        print(p)
