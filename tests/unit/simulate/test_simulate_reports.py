"""The citizen-report simulator: seeded, diurnal, rain-driven flooding, a late share."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta

from iocdev.simulate.communes import communes_from_rows
from iocdev.simulate.reports import Rain, diurnal, report_flow

from ioccore.feedback import catalogue

COMMUNES = communes_from_rows([(f"{i:05d}", "01", 21.0 + i / 100, 105.8) for i in range(100)])
START = datetime(2026, 11, 30, 17, 0, tzinfo=UTC)  # midnight in Vietnam


def test_same_seed_same_reports() -> None:
    cat = catalogue.default()
    one = report_flow(COMMUNES, cat, start=START, hours=24, seed=3)
    assert one == report_flow(COMMUNES, cat, start=START, hours=24, seed=3)
    assert one != report_flow(COMMUNES, cat, start=START, hours=24, seed=4)


def test_rhythm_rain_and_timeliness() -> None:
    cat = catalogue.default()
    assert diurnal(START + timedelta(hours=8)) > 5 * diurnal(START + timedelta(hours=3))
    dry = report_flow(COMMUNES, cat, start=START, hours=48, seed=1)
    wet = report_flow(COMMUNES, cat, start=START, hours=48, seed=1,
                      rain=Rain(START + timedelta(hours=7), START + timedelta(hours=10)))
    flooding = Counter(r.report.service_code for r in wet)["flooding"]
    assert flooding > 3 * Counter(r.report.service_code for r in dry)["flooding"]
    night = sum(1 for r in dry if (r.report.occurred_at - START).seconds // 3600 in (1, 2, 3))
    morning = sum(1 for r in dry if (r.report.occurred_at - START).seconds // 3600 in (7, 8, 9))
    assert morning > 3 * night
    resolved = [r for r in dry if r.statuses[-1][1] == "resolved"]
    late = [r for r in resolved if r.statuses[-1][0] > r.report.occurred_at + timedelta(
        hours=catalogue.default().service(r.report.service_code).sla_hours)]  # type: ignore[union-attr]
    assert 0.1 < len(late) / len(resolved) < 0.3
    assert all(a[0] <= b[0] for r in dry for a, b in zip(r.statuses, r.statuses[1:],
                                                            strict=False))


def test_every_flow_is_causal_whatever_the_seed() -> None:
    """Statuses in time order and a rating only after "resolved", for every seed: a
    4-hour SLA once resolved a report before it was assigned, which left it "assigned"
    in the store and its rating refused."""
    cat = catalogue.default()
    for seed in range(40):
        for r in report_flow(COMMUNES, cat, start=START, hours=12, seed=seed):
            times = [at for at, _, _ in r.statuses]
            assert times == sorted(times), (seed, r.report.event_id)
            if r.rating is not None:
                assert r.statuses[-1][1] == "resolved" and r.rating[0] > times[-1]
