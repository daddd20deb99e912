"""Debian packages: find the missing ones with dpkg-query, install them with apt-get.

Only the machine's own apt sources are used, and ``apt-get update`` runs only when
something is missing. Root is required to install (``sudo -n`` is tried otherwise).
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from iocdev.errors import StackError


def missing(packages: list[str]) -> list[str]:
    """The packages of ``packages`` that are not installed."""
    result = subprocess.run(
        ["dpkg-query", "-W", "-f=${Package} ${db:Status-Status}\n", *packages],
        capture_output=True, text=True, check=False,
    )
    installed = {
        line.split()[0]
        for line in result.stdout.splitlines()
        if line.split()[1:] == ["installed"]
    }
    return [p for p in packages if p not in installed]


def privileged(argv: list[str]) -> list[str]:
    """``argv`` as root: unchanged when we are root, through ``sudo -n`` otherwise."""
    return argv if os.geteuid() == 0 else ["sudo", "-n", *argv]


def install(packages: list[str], *, log: Path, service: str = "apt") -> list[str]:
    """Install whatever of ``packages`` is missing; return what was installed."""
    todo = missing(packages)
    if not todo:
        return []
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("ab") as out:
        for argv in (
            ["apt-get", "update"],
            ["apt-get", "install", "-y", "--no-install-recommends", *todo],
        ):
            out.write(f"\n=== {' '.join(argv)}\n".encode())
            out.flush()
            full = privileged(["env", "DEBIAN_FRONTEND=noninteractive", *argv])
            code = subprocess.run(full, stdout=out, stderr=subprocess.STDOUT,
                                  stdin=subprocess.DEVNULL, check=False).returncode
            if code != 0:
                raise StackError(service, f"`{' '.join(argv)}` failed with code {code}",
                                 str(log))
    still = missing(todo)
    if still:
        raise StackError(service, f"packages still missing after install: {still}", str(log))
    return todo



def main(packages: list[str]) -> None:
    """Install what is missing of ``packages`` (``make setup``: chromium, node/npm)."""
    from iocdev.settings import get_dev_settings

    settings = get_dev_settings()
    done = install(packages, log=settings.resolve(settings.stack.home) / "logs" / "apt.log")
    print(f"installed: {' '.join(done)}" if done else f"present: {' '.join(packages)}")
