"""Mailpit: the local stack's SMTP server, with a web inbox and an HTTP API.

Alertmanager's email receivers send here (``mail.smarthost`` unset), so an operator sees
every notification at ``http://127.0.0.1:<mail.web_port>/`` and tests read them through
Mailpit's API (``/api/v1/...``). Built from the Go module proxy
(``go install github.com/axllent/mailpit@v1.33.1``) into the stack folder; the module and
build caches live there too. Listens on loopback only; messages are kept in
``.stack/mailpit/mailpit.db`` (the newest :data:`MAX_MESSAGES`).
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

from iocdev.errors import StackError
from iocdev.stack.ready import http_ok
from iocdev.stack.service import Service

MODULE = "github.com/axllent/mailpit"
VERSION = "v1.33.1"
MAX_MESSAGES = 5000
GO_CANDIDATES = ("/usr/local/go/bin/go", "/usr/lib/go/bin/go")


def go_binary() -> str | None:
    """The Go toolchain: ``$PATH``'s, else a usual install location."""
    found = shutil.which("go")
    if found:
        return found
    return next((c for c in GO_CANDIDATES if Path(c).exists()), None)


def build(root: Path, log: Path) -> Path:
    """``go install MODULE@VERSION`` with every cache under ``root``; the binary."""
    binary = root / "bin" / "mailpit"
    marker = root / "bin" / f".version-{VERSION}"
    if binary.exists() and marker.exists():
        return binary
    go = go_binary()
    if go is None:
        raise StackError("mailpit", "no Go toolchain (go) found to build "
                         f"{MODULE}@{VERSION}; install Go >= 1.24", str(log))
    env = {**os.environ, "GOBIN": str(root / "bin"), "GOPATH": str(root / "go"),
           "GOMODCACHE": str(root / "go" / "mod"), "GOCACHE": str(root / "go" / "cache"),
           "GOFLAGS": "-buildvcs=false -modcacherw", "CGO_ENABLED": "0"}
    (root / "bin").mkdir(parents=True, exist_ok=True)
    with log.open("a") as out:
        out.write(f"$ go install {MODULE}@{VERSION}\n")
        out.flush()
        result = subprocess.run([go, "install", f"{MODULE}@{VERSION}"], env=env,
                                stdout=out, stderr=subprocess.STDOUT, check=False)
    if result.returncode != 0 or not binary.exists():
        raise StackError("mailpit", f"go install {MODULE}@{VERSION} failed "
                         f"(exit {result.returncode})", str(log))
    marker.write_text(VERSION + "\n")
    return binary


def argv(binary: Path, *, host: str, smtp_port: int, web_port: int,
         database: Path) -> list[str]:
    """Mailpit's foreground command: SMTP and web on ``host`` only."""
    return [str(binary), f"--listen={host}:{web_port}", f"--smtp={host}:{smtp_port}",
            f"--database={database}", f"--max={MAX_MESSAGES}",
            "--smtp-auth-accept-any", "--smtp-auth-allow-insecure",
            "--disable-version-check", "--quiet"]


class Mailpit(Service):
    name = "mailpit"
    start_timeout = 30.0

    @property
    def port(self) -> int:
        return self.settings.mail.web_port

    @property
    def smtp_port(self) -> int:
        return self.settings.mail.smtp_port

    @property
    def binary(self) -> Path:
        return self.home / "bin" / "mailpit"

    def install(self) -> None:
        build(self.home, self.layout.log("mailpit-build"))

    def prepare(self) -> None:
        self.home.mkdir(parents=True, exist_ok=True)

    def argv(self) -> list[str]:
        return argv(self.binary, host=self.host, smtp_port=self.smtp_port,
                    web_port=self.port, database=self.home / "mailpit.db")

    def probe(self) -> bool:
        return http_ok(f"http://{self.host}:{self.port}/readyz")
