"""Pre-2025 commune codes mapped to the communes in force since 2025-07-01.

The table comes from ``vietnamadminunits``' ``converter_2025.json`` (see
:mod:`geo.reference`). An old commune that went whole into one new commune maps
unambiguously; an old commune split between several new ones is *ambiguous* and is
rejected (the package's "default" pick is kept in the data for people, not used here).

Most new communes reuse the code of one of the old communes merged into them, so many
old codes are also current codes. A current code always wins (see
:meth:`geo.index.CommuneIndex.check_code`); this table is only consulted for codes
that are not current.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from geo.bundled import LEGACY_FILE, legacy_targets
from geo.errors import CommuneCodeError

UNKNOWN = "unknown_commune_code"
AMBIGUOUS = "ambiguous_legacy_code"


class LegacyCodes:
    """Old commune code -> the new commune code(s) it became part of."""

    __slots__ = ("_targets",)

    def __init__(self, targets: Mapping[str, tuple[str, ...]]) -> None:
        self._targets = dict(targets)

    @classmethod
    def from_file(cls, path: Path = LEGACY_FILE) -> LegacyCodes:
        return cls(legacy_targets(path))

    def __len__(self) -> int:
        return len(self._targets)

    def __contains__(self, code: object) -> bool:
        return code in self._targets

    def targets(self, code: str) -> tuple[str, ...]:
        """Every new commune the old one went into (empty if unknown)."""
        return self._targets.get(code, ())

    def resolve(self, code: str) -> str:
        """The single new code for ``code``; :class:`CommuneCodeError` otherwise."""
        found = self._targets.get(code)
        if not found:
            raise CommuneCodeError(UNKNOWN, code, f"{code!r} is not a commune code")
        if len(found) > 1:
            raise CommuneCodeError(
                AMBIGUOUS, code,
                f"pre-2025 commune {code!r} was split between {', '.join(found)}; "
                "send a location or a current commune code",
            )
        return found[0]
