"""config/schemas == the models; the documented examples validate against both."""

from __future__ import annotations

import json
import re
from pathlib import Path

import jsonschema
import pytest

from ioccore.events import schemas
from ioccore.events.reasons import DESCRIPTIONS, Reason
from ioccore.events.validate import Validator

ROOT = Path(__file__).resolve().parents[3]
DOC = ROOT / "docs" / "events.md"


@pytest.mark.parametrize("name", sorted(schemas.generate()))
def test_schema_files_match_the_models(name: str) -> None:
    path = schemas.SCHEMA_DIR / name
    assert path.exists(), "run: .venv/bin/python -m ioccore.events.schemas"
    assert path.read_text("utf-8") == schemas.render(schemas.generate()[name]), (
        f"{name} is stale: run .venv/bin/python -m ioccore.events.schemas")
    jsonschema.Draft202012Validator.check_schema(json.loads(path.read_text("utf-8")))


def _doc_examples() -> list[str]:
    return re.findall(r"```json\n(.*?)```", DOC.read_text("utf-8"), flags=re.S)


def test_doc_examples_are_valid_for_schema_and_validator() -> None:
    schema = json.loads((schemas.SCHEMA_DIR / "message.v1.json").read_text("utf-8"))
    examples = [e for e in _doc_examples() if '"schema_version"' in e]
    feeds = set()
    for text in examples:
        obj = json.loads(text)
        jsonschema.validate(obj, schema)
        ok, bad = Validator(max_message_bytes=1 << 20, max_future_skew_s=300,
                            known_commune={"00004", "00097"}).validate(
            text.encode(), now=1_800_000_000.0)
        assert ok and not bad, bad
        feeds |= {r.feed for r in ok}
    assert feeds == {"sensor", "traffic", "service"}


def test_schema_refuses_a_wrong_unit() -> None:
    schema = json.loads((schemas.SCHEMA_DIR / "sensor.v1.json").read_text("utf-8"))
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({"metric": "pm25", "value": 1, "unit": "ppm"}, schema)
    jsonschema.validate({"metric": "pm25", "value": 1, "unit": "mg/m3"}, schema)


def test_doc_lists_every_reason() -> None:
    text = DOC.read_text("utf-8")
    assert set(DESCRIPTIONS) == set(Reason)
    for reason in Reason:
        assert f"`{reason.value}`" in text, reason
