"""One error tree for ioc.

    IocError
     ├── ConfigError          settings or a config file cannot be used
     ├── StackError           a local service failed to install or start
     ├── ContractError        an event breaks the envelope contract (carries a reason code)
     ├── GeoError             boundaries cannot be loaded or a code is unknown
     ├── StorageError         the database refused or is unavailable
     │    ├── BackpressureError  a sink is full: stop consuming, retry after ``retry_after``
     │    └── RowsRejectedError       the database refused the rows themselves (not transient)
     ├── RuleError            an alert rule file is invalid (carries file and line)
     └── DeliveryError        a receiver refused or could not be reached

Code branches on these classes, never on message text.
"""

from __future__ import annotations


class IocError(Exception):
    """Root of every error ioc raises on purpose."""


class ConfigError(IocError):
    """Settings or a configuration file cannot be used."""


class StackError(IocError):
    """A local service failed to install or start; names the service and its log."""

    def __init__(self, service: str, reason: str, log: str | None = None) -> None:
        self.service = service
        self.reason = reason
        self.log = log
        where = f" (log: {log})" if log else ""
        super().__init__(f"{service}: {reason}{where}")


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


class BackpressureError(StorageError):
    """A sink cannot take more rows now; the caller pauses and retries later."""

    def __init__(self, message: str, retry_after: float = 1.0) -> None:
        self.retry_after = retry_after
        super().__init__(message)


class RowsRejectedError(StorageError):
    """The database refused a batch's rows (a data or constraint error): retrying the
    same rows cannot succeed, so the caller isolates and dead-letters the bad ones."""


class RuleError(IocError):
    """An alert rule file is invalid at ``file``:``line``."""

    def __init__(self, file: str, line: int | None, message: str) -> None:
        self.file = file
        self.line = line
        self.message = message
        super().__init__(f"{file}:{line or 0}: {message}")


class DeliveryError(IocError):
    """A receiver refused a notification or could not be reached."""
