"""Citizen-report flows for demos and tests: seeded, so the same options give the same
reports.

What makes them realistic: a diurnal rhythm (few reports at night, peaks in the morning
and the evening, Vietnam time), flooding reports driven by rain (an episode multiplies
their rate by its intensity), categories in proportion, status histories routed to the
category's department with a share resolved late, a few rejected as duplicates, and
ratings that follow timeliness. :func:`backfill` stores a flow through the same
functions the API uses (``ioccore.feedback.store``), with the simulated times.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Final

from psycopg import AsyncConnection

from ioccore.feedback import store
from ioccore.feedback.catalogue import Catalogue
from ioccore.feedback.contract import FeedbackRatingV1, FeedbackReportV1, FeedbackStatusV1
from iocdev.simulate.communes import Commune

WEIGHTS: Final[dict[str, float]] = {"flooding": 0.5, "streetlight": 1.0,
                                    "illegal_dumping": 1.2, "pothole": 0.9,
                                    "fallen_tree": 0.3, "noise": 0.8}
"""Reports per hour per 100 communes at the daily peak, by category (no rain)."""
TEXT: Final[dict[str, str]] = {
    "flooding": "Nước ngập ngang bánh xe, xe máy chết máy", "streetlight": "Đèn đường tắt cả tuần",
    "illegal_dumping": "Có người đổ phế thải xây dựng ra vỉa hè", "pothole": "Ổ gà lớn giữa đường",
    "fallen_tree": "Cây đổ chắn ngang đường", "noise": "Karaoke quá 22 giờ"}
VN: Final = timedelta(hours=7)


def diurnal(t: datetime) -> float:
    """Relative report rate by the hour of day in Vietnam (peak 1.0 at 8:00 and 19:00)."""
    h = ((t + VN).hour + (t + VN).minute / 60) % 24
    return max(0.05, math.exp(-((h - 8) ** 2) / 8) + math.exp(-((h - 19) ** 2) / 8))


@dataclass(frozen=True, slots=True)
class Rain:
    """A rain episode: flooding reports run ``factor`` times faster during it."""

    start: datetime
    end: datetime
    factor: float = 25.0


@dataclass(frozen=True, slots=True)
class SimReport:
    report: FeedbackReportV1
    department: str
    statuses: tuple[tuple[datetime, str, str | None], ...]
    rating: tuple[datetime, int] | None


def report_flow(communes: list[Commune], catalogue: Catalogue, *, start: datetime,
                hours: float, seed: int = 0, rain: Rain | None = None,
                late_share: float = 0.2, reject_share: float = 0.05) -> list[SimReport]:
    """Reports over ``hours`` from ``start`` (aware), minute by minute."""
    rng = random.Random(seed)
    scale = len(communes) / 100.0
    out: list[SimReport] = []
    for minute in range(int(hours * 60)):
        t = start + timedelta(minutes=minute)
        for svc in catalogue.services:
            rate = WEIGHTS.get(svc.code, 0.5) * scale * diurnal(t) / 60.0
            if svc.code == "flooding" and rain is not None and rain.start <= t < rain.end:
                rate *= rain.factor
            for _ in range(_poisson(rng, rate)):
                out.append(_one(rng, communes, svc.code, svc.department, svc.sla_hours,
                                t + timedelta(seconds=rng.randrange(60)), len(out),
                                late_share, reject_share))
    return out


def _poisson(rng: random.Random, lam: float) -> int:
    n, p, limit = 0, 1.0, math.exp(-lam)
    while True:
        p *= rng.random()
        if p <= limit:
            return n
        n += 1


def _one(rng: random.Random, communes: list[Commune], code: str, department: str,
         sla_hours: float, t: datetime, n: int, late_share: float,
         reject_share: float) -> SimReport:
    c = communes[rng.randrange(len(communes))]
    report = FeedbackReportV1(
        event_id=f"sim-{n}", source_id="sim-app", occurred_at=t, service_code=code,
        description=TEXT.get(code, code), lat=round(c.lat + rng.uniform(-0.004, 0.004), 6),
        lon=round(c.lon + rng.uniform(-0.004, 0.004), 6))
    sla = timedelta(hours=sla_hours)
    assigned = t + timedelta(minutes=rng.uniform(5, 60))
    statuses: list[tuple[datetime, str, str | None]] = [(assigned, "assigned", None)]
    if rng.random() < reject_share:
        statuses.append((assigned + timedelta(minutes=10), "rejected", "duplicate"))
        return SimReport(report, department, tuple(statuses), None)
    late = rng.random() < late_share
    done = t + sla * (rng.uniform(1.1, 2.5) if late else rng.uniform(0.2, 0.95))
    # resolved after it was assigned, however short the SLA: the store keeps the latest
    # status, and a rating is refused unless that is "resolved"
    done = max(done, assigned + timedelta(minutes=10))
    statuses.append((assigned + (done - assigned) / 3, "in_progress", None))
    statuses.append((done, "resolved", None))
    rating = None
    if rng.random() < 0.6:
        rating = (done + timedelta(hours=rng.uniform(0.5, 24)),
                  rng.randint(1, 3) if late else rng.randint(4, 5))
    return SimReport(report, department, tuple(statuses), rating)


async def backfill(conn: AsyncConnection[Any], flow: list[SimReport], catalogue: Catalogue,
                   *, now: datetime, nearest_max_m: float = 2000.0) -> dict[str, int]:
    """Store ``flow`` as the API would, skipping what has not happened by ``now``;
    idempotent (a re-run stores nothing new). Counts of what was stored."""
    counts = {"reports": 0, "statuses": 0, "ratings": 0}
    for sim in flow:
        if sim.report.occurred_at > now:
            continue
        svc = catalogue.service(sim.report.service_code)
        assert svc is not None
        report_id, created = await store.store_report(
            conn, sim.report, svc, store.Contact(), nearest_max_m=nearest_max_m)
        counts["reports"] += created
        for i, (at, status, reason) in enumerate(sim.statuses):
            if at > now:
                break
            counts["statuses"] += await store.store_status(conn, FeedbackStatusV1(
                event_id=f"{sim.report.event_id}-{i}", source_id=f"sim-{sim.department}",
                department=sim.department, report_id=report_id, occurred_at=at,
                status=status, reason=reason))  # type: ignore[arg-type]
        if sim.rating is not None and sim.rating[0] <= now:
            await store.store_rating(conn, FeedbackRatingV1(
                report_id=report_id, rating=sim.rating[1], occurred_at=sim.rating[0]))
            counts["ratings"] += 1
    return counts
