"""Private Mailpit and Alertmanager processes, and Mailpit's HTTP API, for notification
tests, the notification benchmark and the mail-outage chaos run.

Each user gets its own Mailpit (SMTP + API on free loopback ports, its own database) and
its own Alertmanager running the shipped routing configuration pointed at that Mailpit,
so tests never disturb the shared stack's and can stop their SMTP server at will.
Processes are started and stopped by :mod:`iocdev.supervise` (by pid, never by name).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import yaml

from alerts.receiver_tokens import ensure_tokens, webhook_receivers
from ioccore.settings import ROOT, Settings
from iocdev import supervise
from iocdev.settings import DevSettings
from iocdev.stack.mailpit import argv as mailpit_argv
from iocdev.stack.prometheus import render_alertmanager
from iocdev.stack.ready import http_ok
from iocdev.supervise import Process, free_port

ALERTMANAGER_BIN = "/usr/bin/prometheus-alertmanager"
SHIPPED_CONFIG = ROOT / "config" / "alertmanager" / "alertmanager.yml"


@dataclass(frozen=True, slots=True)
class Message:
    """A message as Mailpit lists it."""

    id: str
    to: tuple[str, ...]
    subject: str
    created: str
    """RFC 3339 time Mailpit received it."""

    @classmethod
    def from_api(cls, m: dict[str, Any]) -> Message:
        return cls(str(m["ID"]), tuple(str(t["Address"]) for t in m.get("To") or []),
                   str(m.get("Subject", "")), str(m.get("Created", "")))


class MailpitApi:
    """The few calls of Mailpit's HTTP API (``/api/v1``) tests need."""

    def __init__(self, base: str) -> None:
        self.base = base.rstrip("/")

    def messages(self, limit: int = 500) -> list[Message]:
        r = httpx.get(f"{self.base}/api/v1/messages", params={"limit": limit}, timeout=5)
        r.raise_for_status()
        return [Message.from_api(m) for m in r.json().get("messages") or []]

    def to(self, address: str) -> list[Message]:
        """Messages addressed to ``address``, oldest first."""
        return sorted((m for m in self.messages() if address in m.to),
                      key=lambda m: m.created)

    def text(self, message_id: str) -> str:
        r = httpx.get(f"{self.base}/api/v1/message/{message_id}", timeout=5)
        r.raise_for_status()
        return str(r.json().get("Text", ""))

    def html(self, message_id: str) -> str:
        r = httpx.get(f"{self.base}/api/v1/message/{message_id}", timeout=5)
        r.raise_for_status()
        return str(r.json().get("HTML", ""))

    def ready(self) -> bool:
        try:
            return httpx.get(f"{self.base}/readyz", timeout=2).status_code == 200
        except httpx.HTTPError:
            return False


@dataclass
class PrivateMailpit:
    """A Mailpit of one test's own; ``stop``/``start`` keep its ports and messages."""

    binary: Path
    tmp: Path
    smtp_port: int = field(default_factory=free_port)
    web_port: int = field(default_factory=free_port)
    process: Process | None = None

    @property
    def smarthost(self) -> str:
        return f"127.0.0.1:{self.smtp_port}"

    @property
    def api(self) -> MailpitApi:
        return MailpitApi(f"http://127.0.0.1:{self.web_port}")

    def start(self, timeout: float = 30.0) -> None:
        self.process = supervise.spawn(
            "mailpit", mailpit_argv(self.binary, host="127.0.0.1", smtp_port=self.smtp_port,
                                    web_port=self.web_port, database=self.tmp / "mailpit.db"),
            log=self.tmp / "mailpit.log", cwd=self.tmp)
        supervise.wait_started(self.process, self.api.ready, "Mailpit",
                               timeout=timeout, interval=0.2)

    def stop(self) -> None:
        if self.process is not None:
            self.process.stop(timeout=10)
            self.process = None


@contextlib.contextmanager
def private_mailpit(settings: Settings, tmp: Path) -> Iterator[PrivateMailpit]:
    """A started private Mailpit (the stack's build of it); stopped afterwards."""
    binary = settings.stack.root / "mailpit" / "bin" / "mailpit"
    if not binary.exists():
        raise RuntimeError(f"{binary} is missing: run `ioc stack up` (it builds Mailpit)")
    tmp.mkdir(parents=True, exist_ok=True)
    box = PrivateMailpit(binary, tmp)
    box.start()
    try:
        yield box
    finally:
        box.stop()


@dataclass
class PrivateAlertmanager:
    base: str
    config: dict[str, Any]
    process: Process

    def failed_requests(self, integration: str) -> float:
        """Failed attempts (``alertmanager_notification_requests_failed_total``) of one
        integration (email, webhook): every retry counts."""
        r = httpx.get(f"{self.base}/metrics", timeout=5)
        r.raise_for_status()
        total = 0.0
        for line in r.text.splitlines():
            if line.startswith("alertmanager_notification_requests_failed_total{") and \
                    f'integration="{integration}"' in line:
                total += float(line.rsplit(" ", 1)[1])
        return total

    def alerts(self, filters: list[str] | None = None) -> list[dict[str, Any]]:
        r = httpx.get(f"{self.base}/api/v2/alerts",
                      params=[("filter", f) for f in filters or []], timeout=5)
        r.raise_for_status()
        return list(r.json())


@contextlib.contextmanager
def private_alertmanager(settings: DevSettings, tmp: Path, *, smarthost: str,
                         api_url: str | None = None, tokens_dir: Path | None = None,
                         source: Path = SHIPPED_CONFIG, timing: dict[str, str] | None = None
                         ) -> Iterator[PrivateAlertmanager]:
    """An Alertmanager running the shipped routing tree (``source``) with mail to
    ``smarthost`` and webhooks to ``api_url`` (default: the API of ``settings``) with
    the receivers' tokens of ``tokens_dir`` (made when missing). ``timing`` overrides
    the root route's ``group_wait``/``group_interval``/``repeat_interval`` (tests that
    cannot wait a minute); nothing else changes."""
    tmp.mkdir(parents=True, exist_ok=True)
    tokens = tokens_dir or settings.receiver_tokens_dir()
    config = render_alertmanager(source, settings, api_url=api_url, smarthost=smarthost,
                                 tokens_dir=tokens)
    ensure_tokens(tokens, sorted({w.receiver for w in webhook_receivers(config)}))
    config["route"].update(timing or {})
    path = tmp / "alertmanager.yml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    port = free_port()
    proc = supervise.spawn(
        "alertmanager", [ALERTMANAGER_BIN, f"--config.file={path}",
                         f"--storage.path={tmp / 'am-data'}",
                         f"--web.listen-address=127.0.0.1:{port}",
                         "--cluster.listen-address="],
        log=tmp / "alertmanager.log", cwd=tmp)
    base = f"http://127.0.0.1:{port}"
    try:
        supervise.wait_started(proc, lambda: http_ok(f"{base}/-/ready"), "Alertmanager",
                               timeout=30, interval=0.2)
        yield PrivateAlertmanager(base, config, proc)
    finally:
        proc.stop(timeout=20)
