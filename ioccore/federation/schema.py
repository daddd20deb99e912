"""``config/schemas/federation.v1.json``, generated from the contract's types.

Regenerate after changing :mod:`ioccore.federation.contract`::

    .venv/bin/python -m ioccore.federation.schema
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import msgspec

from ioccore.federation.contract import Record
from ioccore.settings import ROOT

PATH = ROOT / "config" / "schemas" / "federation.v1.json"


def schema() -> dict[str, Any]:
    out: dict[str, Any] = {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": "https://ioc.example.gov.vn/schemas/federation.v1.json",
        "title": "IOC federation record, schema v1",
        "description": ("One record per Kafka message on ioc.federation.v1: absolute values "
                        "under a key; the newest as_of per (province, key) wins."),
    }
    out.update(msgspec.json.schema(Record))
    return out


def render() -> str:
    return json.dumps(schema(), indent=2, ensure_ascii=False) + "\n"


def main(argv: list[str]) -> int:
    target = Path(argv[0]) if argv else PATH
    target.write_text(render())
    print(f"wrote {target}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
