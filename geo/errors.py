"""Errors of the geo package.

    ioccore.errors.GeoError
     ├── BoundaryFileError   a boundary file cannot be used (carries a reason code)
     └── CommuneCodeError    an event's commune code is not in the registry (reason code)

Reason codes are stable strings callers may branch on (dead-letter reasons, metrics
labels); messages are for people.
"""

from __future__ import annotations

from ioccore.errors import GeoError


class BoundaryFileError(GeoError):
    """A boundary file (or the bundled reference) cannot be used.

    ``reason`` is one of: ``unreadable``, ``missing_columns``, ``no_crs``,
    ``non_polygon``, ``empty_geometry``, ``duplicate_codes``, ``bad_level``,
    ``unknown_parent``, ``child_outside_parent``, ``empty``.
    """

    def __init__(self, reason: str, message: str) -> None:
        self.reason = reason
        self.message = message
        super().__init__(f"{reason}: {message}")


class CommuneCodeError(GeoError):
    """An event carries a commune code that cannot be used.

    ``reason`` is ``unknown_commune_code`` (neither current nor pre-2025) or
    ``ambiguous_legacy_code`` (a pre-2025 commune split between several new ones).
    """

    def __init__(self, reason: str, code: str, message: str) -> None:
        self.reason = reason
        self.code = code
        self.message = message
        super().__init__(f"{reason}: {message}")
