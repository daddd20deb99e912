"""``ioc worker --stages``: what one process runs (the stages themselves are proven on
the real broker in tests/integration/pipeline/test_rollups.py)."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from ioc.cli import app


@pytest.mark.parametrize("value", ["stage3", "both", "1"])
def test_an_unknown_stage_is_refused_before_anything_starts(value: str) -> None:
    result = CliRunner().invoke(app, ["worker", "--stages", value])
    assert result.exit_code == 2
    assert "all, stage1 or stage2" in result.output
