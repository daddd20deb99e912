"""How ``ioc api`` serves the app: uvicorn with connection limits and a header deadline.

uvicorn bounds idle keep-alive connections (``timeout_keep_alive``), the size of an
incomplete request head (``h11_max_incomplete_event_size``) and open connections
(``limit_concurrency``, then 503), but not the time a client may take to send its
headers: one byte every few seconds held a connection for ever (issue 24, finding 7).
:class:`HeadDeadlineProtocol` closes a connection whose request head has not arrived
within ``api.header_timeout_s`` of the connection or of the previous response.

It also refuses to start without an API-key pepper when listening beyond loopback
(:func:`check_pepper`): outside a developer's machine, stored key hashes must not be
checkable offline without the server's secret.
"""

from __future__ import annotations

import asyncio
import ipaddress
from typing import Any

import uvicorn
from fastapi import FastAPI
from uvicorn.protocols.http.h11_impl import H11Protocol

from ioccore.errors import ConfigError
from ioccore.settings import Settings


class HeadDeadlineProtocol(H11Protocol):
    """uvicorn's h11 protocol with a deadline for each request's head."""

    head_timeout_s: float = 10.0

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._head_deadline: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def handle_events(self) -> None:
        before = self.cycle
        super().handle_events()
        if self.cycle is not before:  # a request head arrived: the app has it now
            self._disarm()

    def on_response_complete(self) -> None:
        self._arm()  # the next request's head (pipelined ones disarm it at once)
        super().on_response_complete()

    def _arm(self) -> None:
        self._disarm()
        self._head_deadline = self.loop.call_later(self.head_timeout_s, self._head_late)

    def _disarm(self) -> None:
        if self._head_deadline is not None:
            self._head_deadline.cancel()
            self._head_deadline = None

    def _head_late(self) -> None:
        self._head_deadline = None
        if not self.transport.is_closing():
            self.transport.close()


def _loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_pepper(settings: Settings, host: str) -> None:
    """``ConfigError`` when the API would listen beyond loopback without a key pepper."""
    if settings.api.key_pepper is None and not _loopback(host):
        raise ConfigError(
            f"refusing to serve on {host} without an API-key pepper: set "
            "IOC__API__KEY_PEPPER (e.g. python -c 'import secrets; "
            "print(secrets.token_urlsafe(32))'); only loopback may run without one")


def server_config(app: FastAPI, settings: Settings, *, host: str, port: int,
                  log_level: str = "info") -> uvicorn.Config:
    """The uvicorn configuration of ``ioc api``, limits from ``settings.api``."""
    api = settings.api
    protocol = type("HeadDeadline", (HeadDeadlineProtocol,),
                    {"head_timeout_s": api.header_timeout_s})
    return uvicorn.Config(
        app, host=host, port=port, http=protocol, log_config=None, access_log=False,
        server_header=False, log_level=log_level.lower(),
        limit_concurrency=api.limit_concurrency, timeout_keep_alive=int(api.keep_alive_s),
        h11_max_incomplete_event_size=api.max_header_bytes)
