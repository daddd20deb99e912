"""Passwords never go on a command line, where /proc/<pid>/cmdline shows them to every
local user (issue 24, finding 11): kafka-storage's --add-scram goes through a java
argument file; docker-compose's kafka-configs reads files and psql its environment."""

from __future__ import annotations

from pathlib import Path

import yaml
from iocdev.stack.kafka import format_argv

from ioccore.settings import ROOT


def test_storage_format_takes_the_scram_from_an_argument_file(tmp_path: Path) -> None:
    secret = 'pa"ss\\word'
    argfile = tmp_path / "format.args"
    argv = format_argv(["java", "-Xmx1g", "-cp", "libs/*", "kafka.tools.StorageTool"],
                       argfile, ["format", "--add-scram", f"SCRAM-SHA-512=[password={secret}]"])
    assert argv == ["java", "-Xmx1g", "-cp", "libs/*", f"@{argfile}"]
    assert not any("pa" in a and "ss" in a for a in argv)
    assert argfile.stat().st_mode & 0o777 == 0o600
    assert argfile.read_text().splitlines() == [
        '"kafka.tools.StorageTool"', '"format"', '"--add-scram"',
        '"SCRAM-SHA-512=[password=pa\\"ss\\\\word]"']


def test_compose_passes_no_password_as_an_argument() -> None:
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    init = compose["services"]["kafka-init"]["command"][0]
    assert "--add-config \"" not in init and "--add-config-file" in init
    roles = (ROOT / "config/postgres/init/02-roles.sh").read_text()
    assert "-v owner_pw" not in roles and "\\getenv owner_pw IOC_DB_OWNER_PASSWORD" in roles
