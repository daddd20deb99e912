"""requirements.lock pins every dependency of the deployed image with hashes, and the
Dockerfile installs from it with --require-hashes (issue 24, finding 15)."""

from __future__ import annotations

import re
import tomllib

from ioccore.settings import ROOT


def _name(requirement: str) -> str:
    return re.split(r"[\[<>=!~;\s]", requirement, maxsplit=1)[0].lower().replace("_", "-")


def test_every_dependency_is_pinned_with_hashes() -> None:
    lock = (ROOT / "requirements.lock").read_text()
    pins = dict(re.findall(r"^([A-Za-z0-9_.\-\[\],]+)==(\S+) \\", lock, re.M))
    pinned = {_name(n) for n in pins}
    wanted = {_name(r) for r in tomllib.loads(
        (ROOT / "pyproject.toml").read_text())["project"]["dependencies"]}
    assert wanted <= pinned, wanted - pinned
    entries = re.split(r"\n(?=\S)", lock.strip())
    for entry in entries:
        if entry.startswith("#"):
            continue
        assert "--hash=sha256:" in entry, entry.splitlines()[0]


def test_the_image_installs_only_hashed_files() -> None:
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert "pip install --require-hashes --no-deps -r requirements.lock" in dockerfile
    installs = [line for line in dockerfile.splitlines()
                if "pip install" in line and "-e tools" not in line]
    for line in installs:
        assert "--require-hashes" in line or "--no-deps -e ." in line, line
