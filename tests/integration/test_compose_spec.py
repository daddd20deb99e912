"""docker-compose.yml is valid Compose.

The Compose Specification JSON schema is not vendored: it is taken from the
``compose/config/compose_spec.json`` file shipped in the ``docker-compose`` 1.29.2
wheel on PyPI (Apache-2.0), downloaded once with pip (hash-checked) into the
git-ignored stack folder. An integration test because of that download (the unit
tests need no network).
"""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
import zipfile
from typing import Any

import jsonschema
import pytest
import yaml

from ioccore.settings import ROOT, Settings

COMPOSE = ROOT / "docker-compose.yml"
SPEC_WHEEL = "docker_compose-1.29.2-py2.py3-none-any.whl"
SPEC_SHA256 = "8d5589373b35c8d3b1c8c1182c6e4a4ff14bffa3dd0b605fcd08f73c94cef809"
SPEC_MEMBER = "compose/config/compose_spec.json"


@pytest.fixture(scope="module")
def compose_schema(settings: Settings) -> dict[str, Any]:
    cache = settings.stack.root / "cache" / "compose-spec"
    schema_file = cache / "compose_spec.json"
    if not schema_file.exists():
        cache.mkdir(parents=True, exist_ok=True)
        wheel = cache / SPEC_WHEEL
        if not wheel.exists():
            subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps",
                            "--only-binary=:all:", "-q", "-d", str(cache),
                            "docker-compose==1.29.2"], check=True)
        digest = hashlib.sha256(wheel.read_bytes()).hexdigest()
        assert digest == SPEC_SHA256, f"unexpected {SPEC_WHEEL}: sha256 {digest}"
        with zipfile.ZipFile(wheel) as zf:
            schema_file.write_bytes(zf.read(SPEC_MEMBER))
    schema: dict[str, Any] = json.loads(schema_file.read_text())
    return schema


def test_compose_matches_the_compose_specification(compose_schema: dict[str, Any]) -> None:
    compose = yaml.safe_load(COMPOSE.read_text())
    validator = jsonschema.Draft201909Validator(compose_schema)
    errors = sorted(validator.iter_errors(compose), key=lambda e: list(e.path))
    assert not errors, "\n".join(f"{list(e.path)}: {e.message}" for e in errors)
