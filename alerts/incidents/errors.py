"""Errors of the incident package (the API maps them to 404, 409 and 422)."""

from __future__ import annotations

from alerts.incidents.machine import IllegalActionError


class IncidentNotFoundError(LookupError):
    """No such incident, or one the caller's department may not see (same answer)."""


class IncidentConflictError(IllegalActionError):
    """The request contradicts the incident's state (HTTP 409)."""


__all__ = ["IllegalActionError", "IncidentConflictError", "IncidentNotFoundError"]
