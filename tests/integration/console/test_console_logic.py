"""The console's pure logic (grouping, folding the live stream's transitions), property
tested in JavaScript with fast-check under node's test runner (`npm test` in console/)."""

from __future__ import annotations

import shutil
import subprocess

from ioccore.settings import ROOT


def test_console_logic_properties() -> None:
    npm = shutil.which("npm")
    assert npm, "make setup installs node and npm"
    result = subprocess.run([npm, "test", "--silent"], cwd=ROOT / "console",
                            capture_output=True, text=True, timeout=300, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "# fail 0" in result.stdout, result.stdout
