"""``ioc api`` as a real process (issue 24, findings 7 and 12): a client that sends its
request head slowly is disconnected after ``api.header_timeout_s``, a complete request
on another connection is served meanwhile, and the API refuses to listen beyond
loopback without an API-key pepper. And the gateway's validation budget (issue 24,
"a budget as a second line of defence"): a body over ``api.validation_budget_s`` is
answered 413 ``over_budget`` while other requests are served."""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import orjson
import psycopg
import pytest
from iocdev.sandbox import fresh_database

from ioc.api.auth import create_key, ensure_department, settings_pepper
from ioccore.settings import Settings

IOC = str(Path(sys.executable).with_name("ioc"))
"""The ``ioc`` command of this environment (the console script)."""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "IOC__API__KEY_PEPPER"}
    env.update(extra)
    return env


@pytest.fixture
def api_port(stack: Settings) -> Iterator[int]:
    with _api_process(_env(IOC__API__HEADER_TIMEOUT_S="1.5")) as port:
        yield port


@contextlib.contextmanager
def _api_process(env: dict[str, str]) -> Iterator[int]:
    """``ioc api`` on a free loopback port with ``env``, until it listens; stopped
    (by its pid) afterwards."""
    port = _free_port()
    proc = subprocess.Popen(
        [IOC, "api", "--port", str(port), "--log-level", "warning"],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
                break
            except OSError:
                assert proc.poll() is None, proc.stderr.read() if proc.stderr else b""
                time.sleep(0.2)
        else:
            raise AssertionError("ioc api did not listen within 30 s")
        yield port
    finally:
        proc.terminate()
        proc.wait(15)


def test_a_slow_headers_client_is_disconnected(api_port: int) -> None:
    slow = socket.create_connection(("127.0.0.1", api_port), timeout=10)
    started = time.monotonic()
    closed_after: float | None = None
    try:
        for byte in b"GET /healthz HTTP/1.1\r\nHost: ioc\r\nX-Slow: " + b"a" * 100:
            try:
                slow.sendall(bytes([byte]))
            except OSError:
                closed_after = time.monotonic() - started
                break
            slow.settimeout(0.25)
            try:
                if slow.recv(1) == b"":
                    closed_after = time.monotonic() - started
                    break
            except TimeoutError:
                pass
            # meanwhile a complete request is served
            if byte == ord("X"):
                with socket.create_connection(("127.0.0.1", api_port), timeout=5) as ok:
                    ok.sendall(b"GET /healthz HTTP/1.1\r\nHost: ioc\r\n\r\n")
                    assert ok.recv(64).startswith(b"HTTP/1.1 200")
    finally:
        slow.close()
    assert closed_after is not None, "the slow client was never disconnected"
    assert 1.0 <= closed_after < 5.0, closed_after


def test_no_pepper_beyond_loopback_is_refused(stack: Settings) -> None:
    started = time.monotonic()
    done = subprocess.run(
        [IOC, "api", "--host", "0.0.0.0", "--port",
         str(_free_port())], env=_env(), capture_output=True, text=True, timeout=60)
    assert done.returncode == 2
    assert "IOC__API__KEY_PEPPER" in done.stderr
    assert time.monotonic() - started < 60


BUDGET_S = 0.02
"""The gateway's validation budget in the test below: far below what the hostile body
costs (5,000 events that each take the slow diagnostic path: 0.1-0.5 s), far above what
a one-event request costs (well under a millisecond)."""


@pytest.fixture
def budget_api(stack: Settings) -> Iterator[tuple[int, str]]:
    """A real ``ioc api`` with ``IOC__API__VALIDATION_BUDGET_S`` set small, on a fresh
    database holding department ``env`` and a key of it: (port, key)."""
    with fresh_database(stack, "ioc_budget") as (name, conninfo):
        with psycopg.connect(conninfo, autocommit=True) as conn:
            ensure_department(conn, "env", ["sensor"], "Sở Tài nguyên và Môi trường")
            _, key = create_key(conn, role="department", department="env",
                                name=f"budget-{uuid.uuid4().hex[:6]}",
                                pepper=settings_pepper(stack.api))
        env = {**os.environ, "IOC__API__VALIDATION_BUDGET_S": str(BUDGET_S),
               "IOC__DATABASE__DBNAME": name}
        with _api_process(env) as port:
            yield port, key


def test_a_body_over_the_validation_budget_is_413_and_the_api_answers_meanwhile(
        budget_api: tuple[int, str]) -> None:
    port, key = budget_api
    base = f"http://127.0.0.1:{port}"
    bad = orjson.dumps({"schema_version": 1, "feed": "sensor", "event_id": "x",
                        "source_id": "s", "department": "env",
                        "occurred_at": "2025-11-03T08:00:00+07:00",
                        "body": {"metric": "pm25", "value": "high", "unit": "ug/m3"}})
    hostile = (bad + b"\n") * 5000  # each line takes the slow diagnostic path
    headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/x-ndjson"}
    answers: list[httpx.Response] = []
    in_flight = threading.Event()

    def post() -> None:  # one at a time: a key has one request in validation at most
        with httpx.Client(base_url=base, timeout=60) as client:
            in_flight.set()
            for _ in range(3):  # the worker is free again after each refusal
                answers.append(client.post("/v1/events", content=hostile, headers=headers))

    posters = [threading.Thread(target=post)]
    for t in posters:
        t.start()
    served_meanwhile = 0
    with httpx.Client(base_url=base, timeout=5) as client:
        in_flight.wait(10)
        while any(t.is_alive() for t in posters):
            started = time.monotonic()
            r = client.get("/healthz")
            assert r.status_code == 200
            assert time.monotonic() - started < 2.0
            served_meanwhile += 1
            time.sleep(0.01)
    for t in posters:
        t.join(60)
    assert len(answers) == 3
    for r in answers:
        assert r.status_code == 413, r.text
        body = r.json()
        assert body["error"] == "over_budget" and "budget" in body["message"], body
    assert served_meanwhile >= 1
