"""The value types the alerts package passes around.

:class:`WindowPoint` is what stage 2 hands the evaluator (one closed or updated
one-minute window, exactly as the rollup upsert returned it: the sink returns this
type, there is no second one); :class:`Transition` is what the evaluator and the operator actions
produce and what the store persists, the outbox delivers and the alerts topic carries.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    from alerts.rules import Limits

Severity = Literal["info", "warning", "critical"]
SEVERITIES: tuple[Severity, ...] = ("info", "warning", "critical")

State = Literal["inactive", "pending", "firing", "acknowledged", "resolved"]
STATES: tuple[State, ...] = ("inactive", "pending", "firing", "acknowledged", "resolved")
ACTIVE_STATES: frozenset[str] = frozenset({"pending", "firing", "acknowledged"})

Kind = Literal["state", "renotify", "escalate"]
"""``state``: a change of state; ``renotify``/``escalate``: firing→firing reminders."""

SYSTEM = "system"
"""Actor of every transition the evaluator makes."""


@dataclass(frozen=True, slots=True)
class WindowPoint:
    """One one-minute event-time window of one metric in one commune (or of one source).

    ``minute`` is the window start (UTC, second 0). ``source_id`` is ``None`` for the
    commune total and set for a per-source window (needed only by source-scope rules).
    """

    commune_code: str
    province_code: str
    metric: str
    minute: datetime
    count: int
    sum: float
    min: float
    max: float
    last: float
    source_id: str | None = None
    last_at: datetime | None = None
    """Time of the newest event in the window, when known (stage 2 knows it)."""


@dataclass(frozen=True, slots=True)
class Reading:
    """What one rule sees for one scope at one evaluation."""

    scope: dict[str, str]
    value: float | None
    limits: Limits | None
    guards_ok: bool = True


@dataclass(frozen=True, slots=True)
class CommuneInfo:
    """Names used in annotations."""

    name: str
    province_code: str
    province_name: str
    name_en: str | None = None
    province_name_en: str | None = None


@dataclass(frozen=True, slots=True)
class Transition:
    """One change in an alert's life (or a reminder), numbered ``seq`` per fingerprint."""

    fingerprint: str
    seq: int
    rule_id: str
    kind: Kind
    from_state: State
    to_state: State
    at: datetime
    severity: Severity
    labels: Mapping[str, str]
    annotations: Mapping[str, str]
    value: float | None = None
    actor: str = SYSTEM
    note: str | None = None
    receiver: str | None = None
    """Escalation target named by the rule (``escalate`` transitions only)."""
    since: datetime | None = None
    """When the current firing episode started (annotation ``since`` in Alertmanager,
    and ``startsAt`` of the resolution; alerts/alertmanager.py)."""
    replaces: Mapping[str, str] | None = None
    """``escalate`` only: the labels before escalation (Alertmanager closes that alert)."""
    backfilled: bool = False
    """Already in the past when evaluated (backfill policy, docs/alerts.md): stored and
    sent to the webhook marked so, never paged to Alertmanager."""

    @property
    def commune_code(self) -> str | None:
        return self.labels.get("commune_code")

    @property
    def province_code(self) -> str | None:
        return self.labels.get("province_code")

    def to_json(self) -> dict[str, Any]:
        """JSON-ready form (the alerts topic and webhooks use it)."""
        return {
            "fingerprint": self.fingerprint,
            "seq": self.seq,
            "rule_id": self.rule_id,
            "kind": self.kind,
            "from_state": self.from_state,
            "to_state": self.to_state,
            "at": self.at.isoformat(),
            "severity": self.severity,
            "labels": dict(self.labels),
            "annotations": dict(self.annotations),
            "value": self.value,
            "actor": self.actor,
            "note": self.note,
            "receiver": self.receiver,
            "since": self.since.isoformat() if self.since else None,
            "backfilled": self.backfilled,
        }


@dataclass(slots=True)
class AlertState:
    """The mutable state of one alert (one fingerprint), as persisted in ``alerts``."""

    fingerprint: str
    rule_id: str
    state: State
    severity: Severity
    labels: dict[str, str]
    annotations: dict[str, str] = field(default_factory=dict)
    seq: int = 0
    started_at: datetime | None = None
    """Start of the current episode (when it became pending)."""
    firing_at: datetime | None = None
    clear_since: datetime | None = None
    """While firing: since when the condition is false (``keep_firing_for``)."""
    last_notified_at: datetime | None = None
    escalated: bool = False
    acknowledged_by: str | None = None
    acknowledged_at: datetime | None = None
    resolved_at: datetime | None = None
    last_value: float | None = None
    updated_at: datetime | None = None

    @property
    def active(self) -> bool:
        return self.state in ACTIVE_STATES


def fingerprint(rule_id: str, scope: Mapping[str, str]) -> str:
    """Stable id of an alert: a hash of the rule id and the scope labels."""
    material = rule_id + "\x00" + "\x00".join(f"{k}={scope[k]}" for k in sorted(scope))
    return hashlib.sha256(material.encode()).hexdigest()[:20]
