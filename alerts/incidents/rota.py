"""The duty rota: who answers an escalation, per department and ISO week.

``config/duty_rota.yaml``::

    ioc_leader: "Lãnh đạo trực IOC"
    departments:
      snnmt:
        head: "Trưởng phòng Môi trường"
        officers: ["Trực ban A", "Trực ban B"]   # rotate by ISO week (Vietnam time)
        weeks: {"2026-W50": "Trực ban B"}        # explicit weeks win over the rotation

Weeks are ISO weeks in Asia/Ho_Chi_Minh: a duty week starts Monday 00:00 Vietnam time.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from alerts.incidents.machine import TargetRole
from alerts.yamlnodes import Reader
from ioccore.errors import RuleError

VIETNAM = ZoneInfo("Asia/Ho_Chi_Minh")
_WEEK = re.compile(r"^\d{4}-W(0[1-9]|[1-4]\d|5[0-3])$")


@dataclass(frozen=True, slots=True)
class DepartmentDuty:
    head: str
    officers: tuple[str, ...]
    weeks: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Rota:
    ioc_leader: str
    departments: Mapping[str, DepartmentDuty]

    def who(self, department: str, role: TargetRole, at: datetime) -> str:
        """The person (or post) ``role`` of ``department`` at ``at``."""
        if role == "ioc_leader":
            return self.ioc_leader
        duty = self.departments.get(department)
        if duty is None:  # an unknown department escalates to the IOC's own desk
            return self.ioc_leader
        if role == "head":
            return duty.head
        return duty_officer(duty, at) or duty.head


def week_of(at: datetime) -> str:
    """``YYYY-Www`` of ``at`` in Vietnam time."""
    year, week, _ = at.astimezone(VIETNAM).isocalendar()
    return f"{year}-W{week:02d}"


def duty_officer(duty: DepartmentDuty, at: datetime) -> str | None:
    week = week_of(at)
    if week in duty.weeks:
        return duty.weeks[week]
    if not duty.officers:
        return None
    _, number, _ = at.astimezone(VIETNAM).isocalendar()
    return duty.officers[number % len(duty.officers)]


def parse(file: str, text: str, errors: list[RuleError]) -> Rota | None:
    r = Reader(file, errors)
    root = r.compose(text)
    if root is None:
        return None
    raw = r.mapping(root, "rota", {"ioc_leader", "departments"})
    if raw is None:
        return None
    before = len(errors)
    leader = r.string(raw["ioc_leader"], "rota.ioc_leader") if "ioc_leader" in raw else None
    if "ioc_leader" not in raw:
        r.error(root, "rota: missing key 'ioc_leader'")
    depts: dict[str, DepartmentDuty] = {}
    items = r.mapping(raw["departments"], "rota.departments") if "departments" in raw else {}
    for code, node in (items or {}).items():
        where = f"rota.departments.{code}"
        d = r.mapping(node, where, {"head", "officers", "weeks"})
        if d is None:
            continue
        if "head" not in d:
            r.error(node, f"{where}: missing key 'head'")
            continue
        head = r.string(d["head"], f"{where}.head")
        officers = [o for o in (r.string(n, f"{where}.officers[]") for n in
                                r.sequence(d["officers"], f"{where}.officers"))
                    if o] if "officers" in d else []
        weeks = r.string_map(d["weeks"], f"{where}.weeks") or {} if "weeks" in d else {}
        for week in weeks:
            if not _WEEK.match(week):
                r.error(d["weeks"], f"{where}.weeks: {week!r} is not an ISO week (2026-W49)")
        if head:
            depts[code] = DepartmentDuty(head, tuple(officers), weeks)
    if len(errors) > before or leader is None:
        return None
    return Rota(leader, depts)


def load(path: Path) -> Rota:
    errors: list[RuleError] = []
    rota = parse(str(path), path.read_text(encoding="utf-8"), errors)
    if rota is None:
        from alerts.incidents.sops import SopFilesError

        raise SopFilesError(errors or [RuleError(str(path), None, "invalid rota")])
    return rota
