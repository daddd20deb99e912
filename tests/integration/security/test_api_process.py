"""``ioc api`` as a real process (issue 24, findings 7 and 12): a client that sends its
request head slowly is disconnected after ``api.header_timeout_s``, a complete request
on another connection is served meanwhile, and the API refuses to listen beyond
loopback without an API-key pepper."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

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
    port = _free_port()
    proc = subprocess.Popen(
        [IOC, "api", "--port", str(port), "--log-level", "warning"],
        env=_env(IOC__API__HEADER_TIMEOUT_S="1.5"), stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE)
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
