"""Errors of the development tooling (below :class:`ioccore.errors.IocError`, so a CLI
catching the root reports them too)."""

from __future__ import annotations

from ioccore.errors import IocError


class StackError(IocError):
    """A local service failed to install or start; names the service and its log."""

    def __init__(self, service: str, reason: str, log: str | None = None) -> None:
        self.service = service
        self.reason = reason
        self.log = log
        where = f" (log: {log})" if log else ""
        super().__init__(f"{service}: {reason}{where}")
