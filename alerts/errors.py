"""Errors of the alerts package, rooted in :mod:`ioccore.errors`.

    ioccore.errors.IocError
     └── AlertsError                 root of everything this package raises
          ├── RuleFilesError         one or more rule files are invalid (also a RuleError;
          │                          ``errors`` holds every RuleError with file and line)
          ├── AlertNotFoundError          no alert (or silence) with that id
          ├── InvalidTransitionError      an operator action does not apply in the current state
          └── ReceiverError          a receiver refused or could not be reached
                                     (also an ioccore.errors.DeliveryError)
"""

from __future__ import annotations

from collections.abc import Sequence

from ioccore.errors import DeliveryError, IocError, RuleError


class AlertsError(IocError):
    """Root of the errors raised by the alerts package."""


class RuleFilesError(AlertsError, RuleError):
    """Rule files failed validation; ``errors`` lists every problem found."""

    def __init__(self, errors: Sequence[RuleError]) -> None:
        self.errors = list(errors)
        first = self.errors[0] if self.errors else RuleError("?", None, "invalid rules")
        RuleError.__init__(self, first.file, first.line, first.message)
        self.args = ("\n".join(str(e) for e in self.errors),)

    def __str__(self) -> str:
        return "\n".join(str(e) for e in self.errors)


class AlertNotFoundError(AlertsError):
    """No alert or silence with that identifier."""


class InvalidTransitionError(AlertsError):
    """An operator action that the alert's current state does not allow."""

    def __init__(self, fingerprint: str, state: str, action: str) -> None:
        self.fingerprint = fingerprint
        self.state = state
        self.action = action
        super().__init__(f"cannot {action} alert {fingerprint} in state {state}")


class ReceiverError(AlertsError, DeliveryError):
    """A receiver refused a notification or could not be reached."""

    def __init__(self, receiver: str, message: str, status: int | None = None) -> None:
        self.receiver = receiver
        self.status = status
        super().__init__(f"{receiver}: {message}")
