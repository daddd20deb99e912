"""The development tooling's settings: the deployed ones plus what only tools/ reads.

:class:`DevSettings` extends :class:`ioccore.settings.Settings` with the local stack's
keys (Kafka and Scala versions, the loopback host every service binds), the address of
its Prometheus and Grafana's port. Same sources, same overrides
(``IOC__STACK__KAFKA_VERSION``, ``IOC__PROMETHEUS__PORT``, ``IOC__GRAFANA__PORT``);
deployed processes ignore these variables.
"""

from __future__ import annotations

from functools import lru_cache

from pydantic import BaseModel, ConfigDict

from ioccore.settings import DataHome, HttpService, Settings


class StackSettings(DataHome):
    """The local stack: where it installs and stores (``home``), what it installs."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    kafka_version: str = "3.9.1"
    scala_version: str = "2.13"
    host: str = "127.0.0.1"
    """Every service listens on this loopback address only."""


class GrafanaSettings(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    port: int = 13000


class DevSettings(Settings):
    """Settings of the development tooling (stack, demo, simulators, tests, chaos)."""

    stack: StackSettings = StackSettings()
    prometheus: HttpService = HttpService(port=19090)
    """The local stack's Prometheus (the deployed processes are scraped, never ask it)."""
    grafana: GrafanaSettings = GrafanaSettings()

    def smarthost(self) -> str:
        """Where Alertmanager sends mail: ``mail.smarthost``, else the local Mailpit."""
        return self.mail.smarthost or f"{self.stack.host}:{self.mail.smtp_port}"


@lru_cache(maxsize=1)
def get_dev_settings() -> DevSettings:
    """The process-wide development settings (read once)."""
    return DevSettings()  # type: ignore[call-arg]
