"""Readiness polling: wait until a service really answers, or fail naming it."""

from __future__ import annotations

import socket
import time
from collections.abc import Callable
from pathlib import Path

import httpx

from iocdev import supervise
from iocdev.errors import StackError


def port_open(host: str, port: int, timeout: float = 0.5) -> bool:
    """True when something accepts TCP connections on host:port."""
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def http_ok(url: str, timeout: float = 2.0) -> bool:
    """True when GET ``url`` answers 200."""
    try:
        return httpx.get(url, timeout=timeout).status_code == 200
    except httpx.HTTPError:
        return False


def wait_until(
    service: str,
    check: Callable[[], bool],
    *,
    log: Path,
    timeout: float,
    pid: int | None = None,
    what: str = "did not answer",
) -> float:
    """Poll ``check`` until it returns True; return the seconds waited.

    Fails early when ``pid`` (the process just started) has exited. On failure raises
    :class:`StackError` naming the service, the reason and the log file.
    """
    start = time.monotonic()
    delay = 0.1
    last_error = ""
    while True:
        try:
            if check():
                return time.monotonic() - start
        except Exception as exc:  # any failure of a probe means "not yet"
            last_error = f" (last error: {type(exc).__name__}: {exc})"
        proc = supervise.child(pid) if pid is not None else None
        if proc is not None and (code := proc.poll()) is not None:
            raise StackError(service, f"process {pid} exited (code {code}) before it "
                             f"answered{last_error}", str(log))
        if time.monotonic() - start > timeout:
            raise StackError(service, f"{what} within {timeout:.0f} s{last_error}", str(log))
        time.sleep(delay)
        delay = min(delay * 1.5, 1.0)
