"""Dossier flows of the public-service centre (one-stop shops of communes and the
province's departments).

Per agency: shares of online submission, on-time resolution, online payment of fees
and digitised records, drawn around the seed figures (commune level ~99.39 % online,
province level ~60.48 %; on time ~95 % with a few communes below 80 %; fee-bearing
paid online >= 80 % target with variation; digitised 90-100 %).

A configurable month-on-month rise (:class:`OnlineRise`, ``ioc simulate --online-rise
2026-11:0.008:0.26``) replaces every agency's online share of the simulated province:
``before`` for dossiers received before the month (Vietnam time), ``after`` from its
first day on, as Hà Nội reported (under 1 % to over 25 % within one month).

Each service event is one status change. Newly received dossiers are queued and later
advance (in_progress, paid, resolved/returned) when their planned time has come; when
no queued dossier is ready (short simulated spans) a backlog dossier received days
earlier is synthesised with the same shares, so KPIs match the targets from the first
minute.
"""

from __future__ import annotations

import random
from collections import deque
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from iocdev.simulate.communes import Commune
from iocdev.simulate.physics import DAY, HOUR, VN_TZ, local, rng

PROCEDURES: tuple[tuple[str, str, bool, float], ...] = (
    # (procedure code, description, fee-bearing, SLA days)
    ("1.001193", "Đăng ký khai sinh", False, 1.0),
    ("1.000894", "Đăng ký kết hôn", False, 3.0),
    ("2.000908", "Chứng thực bản sao", True, 1.0),
    ("1.001612", "Đăng ký hộ kinh doanh", True, 3.0),
    ("1.004227", "Cấp giấy chứng nhận quyền sử dụng đất", True, 15.0),
    ("1.009994", "Cấp giấy phép xây dựng", True, 10.0),
    ("1.003620", "Xác nhận tình trạng hôn nhân", False, 3.0),
    ("2.001035", "Cấp phiếu lý lịch tư pháp", True, 10.0),
)
PROVINCE_DEPARTMENTS = ("stp", "sxd", "snnmt", "syt", "sgddt", "scthuong", "stc", "snv")
DEPARTMENT_NAMES = {
    "stp": "Sở Tư pháp", "sxd": "Sở Xây dựng", "snnmt": "Sở Nông nghiệp và Môi trường",
    "syt": "Sở Y tế", "sgddt": "Sở Giáo dục và Đào tạo", "scthuong": "Sở Công Thương",
    "stc": "Sở Tài chính", "snv": "Sở Nội vụ",
}


def agency_name(department: str) -> str:
    """The Vietnamese name of a provincial department (without the province)."""
    return DEPARTMENT_NAMES[department]


def commune_agency(commune_code: str) -> str:
    """The agency code of a commune's one-stop shop (as in the registry)."""
    return f"ubnd-{commune_code}"


@dataclass(frozen=True, slots=True)
class OnlineRise:
    """Online share ``before`` a month and ``after`` its start (epoch s, Vietnam time)."""

    month_start: float
    before: float
    after: float

    @classmethod
    def parse(cls, text: str) -> OnlineRise:
        """``YYYY-MM:before:after``, shares in 0..1, e.g. ``2026-11:0.008:0.26``."""
        try:
            month, before, after = text.split(":")
            start = datetime.strptime(month, "%Y-%m").replace(tzinfo=VN_TZ)
            rise = cls(start.timestamp(), float(before), float(after))
        except ValueError as exc:
            raise ValueError(f"not YYYY-MM:before:after: {text!r}") from exc
        if not (0.0 <= rise.before <= 1.0 and 0.0 <= rise.after <= 1.0):
            raise ValueError(f"shares must be in 0..1: {text!r}")
        return rise

    def share(self, received_at: float) -> float:
        return self.before if received_at < self.month_start else self.after


@dataclass(slots=True)
class Agency:
    source_id: str
    agency: str
    commune: Commune | None  # None: a province department (dossiers from any commune)
    online: float
    on_time: float
    paid_online: float
    digitised: float
    rise: OnlineRise | None = None
    received: deque[dict[str, Any]] = field(default_factory=deque)
    in_progress: deque[dict[str, Any]] = field(default_factory=deque)
    counter: int = 0


def make_agencies(seed: int, province: str, communes: list[Commune],
                  rise: OnlineRise | None = None) -> list[Agency]:
    """Commune one-stop shops (online ~99.39 %) and provincial departments (~60.48 %);
    with ``rise``, every agency's online share follows it instead."""
    out = []
    for c in communes:
        r = rng(seed, "agency", c.code)
        lagging = r.random() < 0.07
        out.append(Agency(
            source_id=f"dvc-{c.code}", agency=commune_agency(c.code), commune=c,
            online=min(1.0, max(0.97, r.gauss(0.9939, 0.004))),
            on_time=r.uniform(0.70, 0.79) if lagging else min(0.995, r.gauss(0.955, 0.02)),
            paid_online=min(0.99, max(0.6, r.gauss(0.85, 0.06))),
            digitised=r.uniform(0.90, 1.0)))
    for d in PROVINCE_DEPARTMENTS:
        r = rng(seed, "agency", province, d)
        out.append(Agency(
            source_id=f"dvc-p{province}-{d}", agency=f"{d}-{province}", commune=None,
            online=min(0.95, max(0.3, r.gauss(0.6048, 0.08))),
            on_time=min(0.99, r.gauss(0.93, 0.03)),
            paid_online=min(0.99, max(0.5, r.gauss(0.82, 0.07))),
            digitised=r.uniform(0.90, 1.0)))
    for a in out:
        a.rise = rise
    return out


def online_share(agency: Agency, received_at: float) -> float:
    """The agency's chance that a dossier received at ``received_at`` came online."""
    return agency.rise.share(received_at) if agency.rise is not None else agency.online


def _iso(t: float) -> str:
    return local(t).isoformat(timespec="seconds")


def next_event(agency: Agency, t: float, communes: list[Commune], r: random.Random
               ) -> tuple[dict[str, Any], str, dict[str, Any]]:
    """(service body, commune_code, truth) for the agency's next status change at t."""
    x = r.random()
    if x < 0.42:
        d = _new(agency, t, communes, r)
        agency.received.append(d)
        if len(agency.received) > 500:
            agency.received.popleft()
        return _body(d, "received", t), d["commune"], _truth(d, "received", t)
    if x < 0.62:
        d = _take(agency.received, t, "progress_at") or _backlog(agency, t, communes, r)
        agency.in_progress.append(d)
        if len(agency.in_progress) > 500:
            agency.in_progress.popleft()
        return _body(d, "in_progress", t), d["commune"], _truth(d, "in_progress", t)
    if x < 0.75:
        d = _backlog(agency, t, communes, r, fee=True)
        return _body(d, "paid", t), d["commune"], _truth(d, "paid", t)
    d = _take(agency.in_progress, t, "resolve_at") or _backlog(agency, t, communes, r)
    status = "returned" if r.random() < 0.04 else "resolved"
    return _body(d, status, t), d["commune"], _truth(d, status, t)


def _take(queue: deque[dict[str, Any]], t: float, key: str) -> dict[str, Any] | None:
    if queue and queue[0][key] <= t:
        return queue.popleft()
    return None


def _new(agency: Agency, t: float, communes: list[Commune], r: random.Random,
         received_at: float | None = None, fee: bool | None = None) -> dict[str, Any]:
    agency.counter += 1
    code, _name, fee_bearing, sla = PROCEDURES[r.randrange(len(PROCEDURES))]
    if fee is not None and fee_bearing != fee:
        code, _name, fee_bearing, sla = next(p for p in PROCEDURES if p[2] == fee)
    commune = agency.commune or communes[r.randrange(len(communes))]
    rec = t if received_at is None else received_at
    late = r.random() >= agency.on_time
    duration = sla * DAY * (r.uniform(1.05, 2.0) if late else r.uniform(0.2, 0.95))
    return {
        "id": f"{agency.agency}-{local(rec).year}-{agency.counter:07d}",
        "agency": agency.agency,
        "procedure": code, "fee": fee_bearing, "commune": commune.code,
        "channel": "online" if r.random() < online_share(agency, rec) else "offline",
        "digitised": r.random() < agency.digitised,
        "paid_online": r.random() < agency.paid_online,
        "received_at": rec, "due_at": rec + sla * DAY, "late": late,
        "progress_at": rec + r.uniform(0.2, 4.0) * HOUR, "resolve_at": rec + duration,
    }


def _backlog(agency: Agency, t: float, communes: list[Commune], r: random.Random,
             fee: bool | None = None) -> dict[str, Any]:
    """A dossier received earlier whose resolution (if any) happens now, on time or late
    as the agency's share says."""
    d = _new(agency, t, communes, r, received_at=t - r.uniform(0.5, 5.0) * DAY, fee=fee)
    if d["late"]:
        d["due_at"] = t - r.uniform(1.0, 72.0) * HOUR
    else:
        d["due_at"] = max(d["due_at"], t + r.uniform(1.0, 72.0) * HOUR)
    d["resolve_at"] = t
    return d


def _body(d: dict[str, Any], status: str, t: float) -> dict[str, Any]:
    body: dict[str, Any] = {
        "dossier_id": d["id"], "procedure_code": d["procedure"],
        "agency": d["agency"], "channel": d["channel"], "status": status,
        "due_at": _iso(d["due_at"]), "fee_bearing": d["fee"], "digitised": d["digitised"],
    }
    if status in ("resolved", "returned"):
        body["resolved_at"] = _iso(t)
    if status == "paid":
        body["paid_online"] = d["paid_online"]
    return body


def _truth(d: dict[str, Any], status: str, t: float) -> dict[str, Any]:
    truth: dict[str, Any] = {"status": status, "online": d["channel"] == "online"}
    if status in ("resolved", "returned"):
        truth["on_time"] = t <= d["due_at"]
    if status == "paid":
        truth["paid_online"] = d["paid_online"]
    return truth


__all__ = ["PROCEDURES", "VN_TZ", "Agency", "OnlineRise", "make_agencies", "next_event",
           "online_share"]
