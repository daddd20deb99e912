"""The contract every local service implements, and what they share."""

from __future__ import annotations

import signal
from abc import ABC, abstractmethod
from pathlib import Path

from iocdev.settings import DevSettings
from iocdev.stack.layout import Layout
from iocdev.supervise import PidFile


class Service(ABC):
    """One local service.

    ``install`` adds what Debian packages do not provide (jars, builds) and may take
    minutes the first time, ``prepare`` writes configs and initialises data once, both
    idempotent and fast when done. ``argv`` is the foreground command recorded in the
    pid files. ``probe`` is one cheap check that the service answers (never raises for
    "not yet"); ``wait_ready`` polls until it truly works and may bootstrap content.
    """

    name: str
    packages: tuple[str, ...] = ()
    stop_signal: signal.Signals = signal.SIGTERM
    start_timeout: float = 90.0

    def __init__(self, settings: DevSettings, layout: Layout) -> None:
        self.settings = settings
        self.layout = layout
        self.pidfile = PidFile(layout.run, self.name)

    @property
    def home(self) -> Path:
        return self.layout.service_dir(self.name)

    @property
    def log(self) -> Path:
        return self.layout.log(self.name)

    @property
    def host(self) -> str:
        return self.settings.stack.host

    @property
    @abstractmethod
    def port(self) -> int:
        """The port it answers on."""

    def install(self) -> None:  # noqa: B027 - optional hook
        """Install what the Debian packages do not provide."""

    def prepare(self) -> None:  # noqa: B027 - optional hook
        """Write configuration and initialise data (once)."""

    @abstractmethod
    def argv(self) -> list[str]:
        """The foreground command line."""

    @property
    def user(self) -> str | None:
        """The OS user to run as (None: the current one)."""
        return None

    @abstractmethod
    def probe(self) -> bool:
        """True when the service answers now."""

    def wait_ready(self, pid: int | None) -> float:
        """Wait until the service really works; seconds waited. Raises StackError."""
        from iocdev.stack.ready import wait_until

        return wait_until(self.name, self.probe, log=self.log, timeout=self.start_timeout,
                          pid=pid)
