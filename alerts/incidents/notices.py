"""What escalations post to Alertmanager (routed like every alert, by ``department``).

An escalation is an alert ``IncidentEscalation`` that ends when the next level is due;
acknowledging (or starting, or resolving) the incident ends it at once: the same alert
is posted again with ``endsAt`` = that moment (``store._end_escalations``), so the
receivers hear that it was taken.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from alerts.incidents.config import IncidentConfig


@dataclass(frozen=True, slots=True)
class Fired:
    incident_id: int
    timer_id: int
    kind: str
    level: int
    target_role: str
    target_name: str
    department: str


def escalation_alert(cfg: IncidentConfig, *, incident_id: int, title: str, f: Fired,
                     severity: str, province_code: str | None, at: datetime,
                     lasts: timedelta) -> dict[str, Any]:
    """The Alertmanager alert of one escalation (routed by ``department``). It is posted
    once and ends after ``lasts`` (when the next level is due), so Alertmanager does not
    resolve it after its own ``resolve_timeout`` while the deadline is still missed."""
    what_vi = "chưa được tiếp nhận" if f.kind == "ack" else "chưa được xử lý xong"
    what_en = "not acknowledged" if f.kind == "ack" else "not resolved"
    labels = {"alertname": "IncidentEscalation", "department": f.department,
              "severity": "critical" if f.target_role == "ioc_leader" else severity,
              "incident_id": str(incident_id), "escalation_level": str(f.level),
              "escalated_to": f.target_role, "deadline": f.kind}
    if province_code:
        labels["province_code"] = province_code
    link = f"{cfg.console_url}{incident_id}" if cfg.console_url else ""
    return {
        "labels": labels,
        "annotations": {
            "summary": f"Sự cố #{incident_id} {what_vi} đúng hạn: {title}"
                       f" — chuyển cấp {f.level} ({f.target_name})",
            "summary_en": f"Incident #{incident_id} {what_en} in time: {title}"
                          f" — escalated to level {f.level} ({f.target_name})",
            "escalated_to_name": f.target_name,
            "console_url": link,
        },
        "startsAt": at.isoformat(),
        "endsAt": (at + lasts).isoformat(),
        "generatorURL": link,
    }
