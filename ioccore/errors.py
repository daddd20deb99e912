"""One error tree for ioc.

    IocError
     ├── ConfigError          settings or a config file cannot be used
     ├── ContractError        an event breaks the envelope contract (carries a reason code)
     ├── GeoError             boundaries cannot be loaded or a code is unknown
     ├── StorageError         the database refused or is unavailable
     ├── RuleError            an alert rule file is invalid (carries file and line)
     └── DeliveryError        a receiver refused or could not be reached

Code branches on these classes, never on message text. The development tooling adds
``iocdev.errors.StackError`` (a local service failed to install or start) below the root.
"""

from __future__ import annotations


class IocError(Exception):
    """Root of every error ioc raises on purpose."""


class ConfigError(IocError):
    """Settings or a configuration file cannot be used."""


class ContractError(IocError):
    """An event breaks the contract; ``reason`` is a stable machine-readable code."""

    def __init__(self, reason: str, message: str) -> None:
        self.reason = reason
        self.message = message
        super().__init__(f"{reason}: {message}")


class GeoError(IocError):
    """Boundaries cannot be loaded, or a code is not in the registry."""


class StorageError(IocError):
    """The database refused a write or is not reachable."""


class RuleError(IocError):
    """An alert rule file is invalid at ``file``:``line``."""

    def __init__(self, file: str, line: int | None, message: str) -> None:
        self.file = file
        self.line = line
        self.message = message
        super().__init__(f"{file}:{line or 0}: {message}")


class DeliveryError(IocError):
    """A receiver refused a notification or could not be reached."""
