"""Fixtures of the console's browser tests: a real pipeline (fresh database and topics, a
real ``ioc worker``), a real ``ioc api`` process serving the console, keys of every role,
and Debian's chromium driven by Playwright through ``executable_path``.

Screenshots and figures go to ``reports/browser/`` (git-ignored); docs/console/ holds
copies for docs/console.md.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Coroutine, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any, Protocol

import httpx
import psycopg
import pytest
from iocdev.sandbox import Pipeline, pipeline
from iocdev.supervise import free_port
from iocdev.supervise import log_tail as tail
from playwright.sync_api import Browser, BrowserContext, Page, sync_playwright

from alerts import store
from alerts.model import Transition
from geo.reference import SOURCE, read_reference
from geo.store import write_units
from ioc.api.auth import create_key, ensure_department, settings_pepper
from ioccore.settings import ROOT, Settings

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]
OUT = ROOT / "reports" / "browser"
AXE = ROOT / "console" / "node_modules" / "axe-core" / "axe.min.js"

COMMUNE = "00004"  # Phường Ba Đình, Hà Nội
RULES = """
groups:
  - name: console
    rules:
      - id: console_pm25_{tag}
        feed: sensor
        metric: pm25
        scope: commune
        aggregate: avg
        window: 5m
        op: ">"
        threshold: 100
        clear: 50
        for: 0m
        severity: critical
        labels: {{ domain: environment, team: so-tnmt }}
        annotations:
          summary:
            vi: "PM2.5 tại {{commune}} là {{value:.0f}} µg/m³, vượt {{threshold}}"
            en: "PM2.5 in {{commune_en}} is {{value:.0f}} µg/m³, above {{threshold}}"
"""


@dataclass
class Console:
    """A running pipeline + API with keys of every role."""

    pipe: Pipeline
    url: str
    keys: dict[str, str]
    rule_id: str
    api_log: Path
    env: dict[str, str] = field(default_factory=dict)

    def get(self, path: str, role: str = "admin", **params: Any) -> Any:
        r = httpx.get(self.url + path, params=params, timeout=30,
                      headers={"Authorization": f"Bearer {self.keys[role]}"})
        r.raise_for_status()
        return r.json()


def _key(conninfo: str, settings: Settings, role: str, name: str,
         department: str | None = None) -> str:
    with psycopg.connect(conninfo, autocommit=True) as conn:
        _, key = create_key(conn, role=role, department=department,  # type: ignore[arg-type]
                            name=name, pepper=settings_pepper(settings.api))
    return key


class ApiProcess:
    """``ioc api`` as a real process on a fixed free port (restartable on the same port)."""

    def __init__(self, env: dict[str, str], log: Path) -> None:
        self.port = free_port()
        self.env = {**env, "IOC__API__PORT": str(self.port)}
        self.log = log
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "ioc.cli", "api", "--port", str(self.port),
             "--log-level", "warning"], env=self.env, cwd=ROOT,
            stdout=self.log.open("ab"), stderr=subprocess.STDOUT, start_new_session=True)
        _wait_http(self.url, self.proc, self.log)

    def stop(self) -> None:
        """SIGTERM, then SIGKILL what is left of its process group (the API's validation
        worker processes included: they outlived a terminated API here)."""
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.proc.pid, signal.SIGKILL)  # the group this test started


def _wait_http(url: str, proc: subprocess.Popen[bytes], log: Path, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"ioc api exited {proc.returncode}:\n{tail(log)}")
        try:
            if httpx.get(url + "/readyz", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    raise AssertionError(f"ioc api not ready:\n{tail(log)}")


@pytest.fixture(scope="module")
def console(stack: Settings, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Console]:
    tmp = tmp_path_factory.mktemp("console")
    tag = uuid.uuid4().hex[:8]
    rules = tmp / "rules"
    rules.mkdir()
    (rules / "console.yaml").write_text(RULES.format(tag=tag))
    with pipeline(stack, tmp, partitions=1) as pipe:
        units = read_reference(stack.resolve(stack.geo.reference)).units
        with psycopg.connect(pipe.conninfo) as conn:
            write_units(conn, units, source=SOURCE, valid_from=date(2025, 7, 1))
        with psycopg.connect(pipe.conninfo, autocommit=True) as conn:
            ensure_department(conn, "env", ["sensor"], "Sở Tài nguyên và Môi trường")
            ensure_department(conn, "transport", ["traffic"], "Sở Giao thông Vận tải")
            ensure_department(conn, "home", ["service"], "Sở Nội vụ")  # three cards a row
        keys = {
            "admin": _key(pipe.conninfo, stack, "admin", "admin-trung-tam"),
            "operator": _key(pipe.conninfo, stack, "operator", "truc-ban-a"),
            "operator2": _key(pipe.conninfo, stack, "operator", "truc-ban-b"),
            "viewer": _key(pipe.conninfo, stack, "viewer", "man-hinh-tuong"),
            "env": _key(pipe.conninfo, stack, "department", "so-tnmt", "env"),
            "transport": _key(pipe.conninfo, stack, "department", "so-gtvt", "transport"),
        }
        extra = {"IOC__ALERTS__RULES_DIR": str(rules)}
        pipe.start_worker(extra_env=extra)
        env = pipe.env(free_port())
        env.update(extra)
        api = ApiProcess(env, tmp / "api.log")
        try:
            api.start()
            yield Console(pipe, api.url, keys, f"console_pm25_{tag}", api.log, env)
        finally:
            api.stop()


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    """Chromium for one test module. Not session-wide: Playwright's sync API keeps its
    event loop running in this thread while it is started, and the async tests that run
    after these modules need the thread's loop free."""
    assert os.path.exists(CHROMIUM), "make setup installs Debian's chromium"
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield b
        finally:
            b.close()


@pytest.fixture(scope="session")
def out_dir() -> Path:
    OUT.mkdir(parents=True, exist_ok=True)
    return OUT


def context(browser: Browser, *, width: int = 1920, height: int = 1080,
            bypass_csp: bool = False) -> BrowserContext:
    return browser.new_context(viewport={"width": width, "height": height}, locale="vi-VN",
                               timezone_id="Asia/Ho_Chi_Minh", bypass_csp=bypass_csp)


class Site(Protocol):
    """Where the console runs and the keys to sign in with."""

    @property
    def url(self) -> str: ...

    @property
    def keys(self) -> dict[str, str]: ...


def sign_in(page: Page, console: Site, role: str, query: str = "") -> None:
    """Open the console and sign in with the key of ``role`` (typed, as a user would)."""
    page.goto(f"{console.url}/console/{query}")
    page.fill("#key", console.keys[role])
    page.click("form button[type=submit]")
    page.wait_for_selector("header.topbar")


def axe_serious(page: Page) -> list[dict[str, Any]]:
    """axe-core's serious and critical violations on the page as it is now."""
    page.evaluate(AXE.read_text())
    result = page.evaluate("async () => (await axe.run(document, {resultTypes: ['violations']}))"
                           ".violations.map(v => ({id: v.id, impact: v.impact, help: v.help,"
                           " nodes: v.nodes.slice(0, 3).map(n => n.target.join(' '))}))")
    return [v for v in result if v["impact"] in ("serious", "critical")]


def save(page: Page, out_dir: Path, name: str, *, full_page: bool = False) -> Path:
    path = out_dir / f"{name}.png"
    page.screenshot(path=str(path), full_page=full_page)
    return path


def copy_to_docs(paths: list[Path]) -> None:
    """Copies of the screenshots for docs/console.md (IOC_CONSOLE_DOCS=1)."""
    if os.environ.get("IOC_CONSOLE_DOCS") != "1":
        return
    docs = ROOT / "docs" / "console"
    docs.mkdir(parents=True, exist_ok=True)
    for p in paths:
        shutil.copy2(p, docs / p.name)


def firing(fp: str, rule: str, commune: str, severity: str, province: str = "01") -> Transition:
    """A transition to firing of one commune's alert, as the worker would store it."""
    labels = {"alertname": rule, "commune_code": commune, "province_code": province,
              "severity": severity, "team": "so-tnmt" if "pm" in rule else "ioc-ops"}
    return Transition(fingerprint=fp, seq=1, rule_id=rule, kind="state",
                      from_state="inactive", to_state="firing",
                      at=datetime.now(UTC).replace(microsecond=0),
                      severity=severity,  # type: ignore[arg-type]
                      labels=labels, annotations={"summary_vi": f"{rule} tại {commune}",
                                                  "summary_en": f"{rule} in {commune}"},
                      value=123.0)


def in_thread(coro: Coroutine[Any, Any, None]) -> None:
    """Run ``coro`` on its own loop (Playwright's sync API holds this thread's loop)."""
    with ThreadPoolExecutor(1) as pool:
        pool.submit(asyncio.run, coro).result()


def persist(conninfo: str, transitions: list[Transition]) -> None:
    """Store transitions through the alerts store (the test as the only writer)."""
    async def go() -> None:
        async with await psycopg.AsyncConnection.connect(conninfo, autocommit=True) as conn:
            for i in range(0, len(transitions), 1000):
                await store.persist(conn, transitions[i:i + 1000], receivers=[])
    in_thread(go())
