"""The one fixed instant tests build event times from (a Monday, 07:00 in Vietnam)."""

from __future__ import annotations

from datetime import UTC, datetime

T0 = datetime(2026, 11, 23, 0, 0, tzinfo=UTC)
