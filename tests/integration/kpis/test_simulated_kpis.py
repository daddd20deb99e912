"""The simulator's dossier events for two provinces across a Vietnam-time month boundary,
stored in shuffled batches with a replay, give exactly the KPIs computed independently
here in Python from the same events (per dossier: its earliest event of each kind), by
tier from the bundled registry; communes add up to provinces and provinces to the nation;
and the tier gap is the seed's (commune shops near 99 %, provincial departments near 60 %).
"""

from __future__ import annotations

import asyncio
import random
from collections import defaultdict
from collections.abc import Iterator
from datetime import date, datetime
from typing import Any

import psycopg
import pytest
from iocdev.sandbox import fresh_database
from iocdev.simulate.physics import VN_TZ

from ioccore import kpis
from ioccore.agencies import BUNDLED, BUNDLED_VALID_FROM, read_registry, write_registry
from ioccore.settings import Settings
from tests.support.dossiers import INSERT, service_rows

pytestmark = pytest.mark.integration

START = datetime(2026, 10, 29, tzinfo=VN_TZ)
SPAN = 5 * 86400.0


def _rows(province: str) -> list[tuple[Any, ...]]:
    return service_rows(province, START, SPAN, rate=0.4, seed=11)


def _expected(rows: list[tuple[Any, ...]]) -> dict[tuple[date, str, str], list[int]]:
    """(month, province, tier) -> [received, online, resolved, on time, paid, paid online]."""
    first: dict[tuple[str, str, str], tuple[Any, ...]] = {}
    for r in rows:
        key = (r[7], r[5], r[9])  # agency, dossier, status
        rank = (r[0], f"{r[2]} {r[1]}")
        if key not in first or rank < (first[key][0], f"{first[key][2]} {first[key][1]}"):
            first[key] = r
    out: dict[tuple[date, str, str], list[int]] = defaultdict(lambda: [0] * 6)
    for (agency, _d, status), r in first.items():
        month = r[0].astimezone(VN_TZ).date().replace(day=1)
        tier = "commune" if agency.startswith("ubnd-") else "province"
        for t in (tier, "all"):
            c = out[(month, r[4], t)]
            if status == "received":
                c[0] += 1
                c[1] += r[8] == "online"
            elif status == "resolved":
                c[2] += 1
                c[3] += r[11] <= r[10]
            elif status == "paid" and r[12]:
                c[4] += 1
                c[5] += bool(r[13])
    return out


@pytest.fixture(scope="module")
def db(stack: Settings) -> Iterator[str]:
    with fresh_database(stack, "ioc_simkpi") as (_, conninfo):
        yield conninfo


def test_simulated_dossiers_give_exact_kpis_by_tier(db: str) -> None:
    rows = _rows("01") + _rows("79")
    assert len(rows) > 2000
    stream = rows + random.Random(2).sample(rows, 300)  # and a partial replay
    random.Random(3).shuffle(stream)
    with psycopg.connect(db) as conn:
        write_registry(conn, read_registry(BUNDLED), source="bundled",
                       valid_from=BUNDLED_VALID_FROM)
        for i in range(0, len(stream), 500):
            with conn.transaction(), conn.cursor() as cur:
                cur.executemany(INSERT, stream[i:i + 500])

    async def fetch() -> tuple[list[kpis.CountRow], list[kpis.CountRow]]:
        async with await psycopg.AsyncConnection.connect(db) as conn:
            national = await kpis.fetch_counts(conn, grain="month", start=date(2026, 10, 1),
                                               end=date(2026, 12, 1), by_province=True)
            commune = await kpis.fetch_counts(conn, grain="month", start=date(2026, 10, 1),
                                              end=date(2026, 12, 1), commune="00004")
            return national, commune

    national, one_commune = asyncio.run(fetch())
    expected = _expected(rows)
    got = {(r.period, r.province_code, r.tier): [
        r.counts["received"], r.counts["received_online"], r.counts["resolved"],
        r.counts["resolved_on_time"], r.counts["paid_fee_bearing"], r.counts["paid_online"]]
        for r in national if r.province_code is not None}
    assert got == dict(expected)
    for r in national:  # the nation is the sum of its provinces
        if r.province_code is None:
            parts = [p for p in national if p.period == r.period and p.tier == r.tier
                     and p.province_code is not None]
            assert r.counts == {c: sum(p.counts[c] for p in parts) for c in kpis.COUNTS}
    assert one_commune  # a commune of Hà Nội has dossiers in the window
    nov = {r.tier: r.kpis()["online_share"].value for r in national
           if r.period == date(2026, 11, 1) and r.province_code == "01"}
    assert nov["commune"] == pytest.approx(0.99, abs=0.02)
    assert nov["province"] == pytest.approx(0.60, abs=0.1)
