"""KPIs on the real database, through the real sink and stage 2, against values computed
by hand (docs/kpis.md): a late event, a duplicate with another event_id, a replay of
everything, a month boundary in Vietnam time (2026-11-01 00:00 +07:00 =
2026-10-31T17:00Z), an agency the registry does not know, targets per tier.

Hand-computed dossiers (VN = Vietnam time):

- A, ubnd-00004 (commune): received online digitised Oct 31 23:30 VN (sent LATE);
  resolved online on time Nov 1 00:30 VN.
- B, ubnd-00004 (commune): received offline Nov 1 00:10 VN; a second 'received' (new
  event_id) online, digitised at 00:20 VN; resolved offline LATE Nov 5.
- C, stp-01 (province): received online digitised Nov 2; paid online Nov 3; due Nov 4,
  never resolved: overdue.
- D, stp-01 (province): received offline Nov 2; paid offline Nov 3; resolved offline on
  time Nov 3.
- E, x-unknown (unassigned): received online Nov 10; returned Nov 11 (closed, not overdue).
- F, stp-01 (province): received online Oct 15, due Oct 20, never resolved: overdue.

October: received 2 (A, F), online 2, digitised 1 (A).
November, all tiers: received 4 (B, C, D, E), online 2 (C, E: B's first receipt was
offline), digitised 2 (B via its second event, C); resolved 3 (A, B, D), online 1 (A),
on time 2 (A, D); fee-bearing paid 2 (C, D), online 1 (C).
November by tier: commune received 1 online 0, resolved 2 online 1 on time 1;
province received 2 online 1, resolved 1 on time 1, paid 2 online 1; unassigned
received 1 online 1.
"""

from __future__ import annotations

import asyncio
import io
from collections.abc import Awaitable, Callable
from datetime import UTC, date, datetime, timedelta
from typing import Any

import psycopg
import pytest

from ioccore.agencies import parse_registry, write_registry
from ioccore.events.record import Record, encode_records
from tests.integration.api.apihelpers import ApiDb, api_client, bearer, new_key

pytestmark = pytest.mark.integration

VN_MIDNIGHT_NOV = datetime(2026, 10, 31, 17, 0, tzinfo=UTC)
REGISTRY = """code,name,tier,seat_commune,province_code
ubnd-00004,Bộ phận Một cửa Phường Ba Đình,commune,00004,01
stp-01,Sở Tư pháp Thành phố Hà Nội,province,00004,01
"""


def _t(days: float = 0, minutes: float = 0) -> datetime:
    return VN_MIDNIGHT_NOV + timedelta(days=days, minutes=minutes)


def ev(eid: str, dossier: str, agency: str, status: str, at: datetime, *,
       channel: str = "online", due: datetime | None = None, digitised: bool = False,
       fee: bool = False, paid_online: bool | None = None,
       resolved_at: datetime | None = None, commune: str = "00004") -> Record:
    return Record(
        event_id=eid, source_id=f"desk-{agency}", department="pscc", feed="service",
        occurred_at=at, received_at=at.timestamp(), commune_code=commune,
        province_code="01", geo="code", dossier_id=dossier, procedure_code="1.001193",
        agency=agency, channel=channel,  # type: ignore[arg-type]
        status=status, due_at=due or at + timedelta(days=3),  # type: ignore[arg-type]
        resolved_at=resolved_at if status == "resolved" else None, fee_bearing=fee,
        paid_online=paid_online, digitised=digitised)


A_RECEIVED = ev("a1", "A", "ubnd-00004", "received", _t(minutes=-30), digitised=True,
                due=_t(days=2))
EVENTS: list[Record] = [
    ev("a2", "A", "ubnd-00004", "resolved", _t(minutes=30), due=_t(days=2),
       resolved_at=_t(minutes=30)),
    ev("b1", "B", "ubnd-00004", "received", _t(minutes=10), channel="offline",
       due=_t(days=2)),
    ev("b1-again", "B", "ubnd-00004", "received", _t(minutes=20), digitised=True,
       due=_t(days=2)),
    ev("c1", "C", "stp-01", "received", _t(days=1), digitised=True, fee=True,
       due=_t(days=3), commune="00008"),
    ev("c2", "C", "stp-01", "paid", _t(days=2), fee=True, paid_online=True,
       due=_t(days=3), commune="00008"),
    ev("d1", "D", "stp-01", "received", _t(days=1), channel="offline", fee=True),
    ev("d2", "D", "stp-01", "paid", _t(days=2), channel="offline", fee=True,
       paid_online=False),
    ev("d3", "D", "stp-01", "resolved", _t(days=2, minutes=60), channel="offline", fee=True,
       due=_t(days=3), resolved_at=_t(days=2, minutes=60)),
    ev("b2", "B", "ubnd-00004", "resolved", _t(days=4), channel="offline", due=_t(days=2),
       resolved_at=_t(days=4)),
    ev("e1", "E", "x-unknown", "received", _t(days=9), due=_t(days=9, minutes=60)),
    ev("e2", "E", "x-unknown", "returned", _t(days=10), due=_t(days=9, minutes=60)),
    ev("f1", "F", "stp-01", "received", _t(days=-17), due=_t(days=-12)),
]


@pytest.fixture(scope="module")
def loaded(api_db: ApiDb) -> ApiDb:
    with psycopg.connect(api_db.conninfo) as conn:
        write_registry(conn, parse_registry(io.StringIO(REGISTRY)), source="test",
                       valid_from=date(2025, 7, 1))
        conn.execute("INSERT INTO kpi_target_values (kpi, province_code, tier, target, "
                     "valid_from) VALUES ('online_share', '01', 'province', 0.6, "
                     "'2026-11-01'), ('online_share', '*', 'commune', 0.99, '2025-07-01')")
        conn.commit()

    async def run() -> None:
        process, close = _stage2(api_db.conninfo)
        first = await process([encode_records(EVENTS[:6]), encode_records(EVENTS[6:])])
        assert sum(first.write.inserted.values()) == len(EVENTS)
        late = await process([encode_records([A_RECEIVED])])  # its source is days ahead
        assert late.write.late == {"service": 1}
        again = await process([encode_records([*EVENTS, A_RECEIVED])])  # a replay
        assert sum(again.write.inserted.values()) == 0
        await close()

    asyncio.run(run())
    return api_db


def _stage2(conninfo: str) -> tuple[Callable[[list[bytes]], Awaitable[Any]],
                                    Callable[[], Awaitable[None]]]:
    """The real stage 2 writing enriched message values; ``(process, close)``."""
    from streams.stage2 import Enriched, Stage2, make_pool

    stage = Stage2(make_pool(conninfo), allowed_lateness_s=300)
    offsets = iter(range(1_000_000))

    async def process_messages(values: list[bytes]) -> Any:
        return await stage.process([Enriched("enriched", 0, next(offsets), v)
                                    for v in values])

    return process_messages, stage.close


def _kpis(body: dict[str, Any], period: str, tier: str) -> dict[str, Any]:
    match = [p for p in body["periods"] if p["period"] == period and p["tier"] == tier]
    assert len(match) == 1, (period, tier, body["periods"])
    return match[0]["kpis"]  # type: ignore[no-any-return]


def _nd(k: dict[str, Any]) -> tuple[int, int]:
    return k["numerator"], k["denominator"]


async def test_monthly_kpis_by_tier_are_exact(loaded: ApiDb) -> None:
    key = new_key(loaded, "viewer")
    async with api_client(loaded.settings) as client:
        r = await client.get("/v1/kpis", headers=bearer(key), params={
            "scope": "province", "province": "01", "grain": "month",
            "from": "2026-10-01", "to": "2026-11-30"})
    assert r.status_code == 200, r.text
    body = r.json()
    assert (body["from"], body["to"]) == ("2026-10-01", "2026-11-30")
    assert [(p["period"], p["tier"]) for p in body["periods"]] == [
        ("2026-10-01", "all"), ("2026-10-01", "province"), ("2026-10-01", "commune"),
        ("2026-11-01", "all"), ("2026-11-01", "province"), ("2026-11-01", "commune"),
        ("2026-11-01", "unassigned")]
    october = _kpis(body, "2026-10-01", "all")
    assert _nd(october["online_share"]) == (2, 2)
    assert _nd(october["digitised_share"]) == (1, 2)
    assert october["on_time_share"]["value"] is None
    nov = _kpis(body, "2026-11-01", "all")
    assert _nd(nov["online_share"]) == (2, 4)
    assert _nd(nov["digitised_share"]) == (2, 4)
    assert _nd(nov["resolved_online_share"]) == (1, 3)
    assert _nd(nov["on_time_share"]) == (2, 3)
    assert _nd(nov["paid_online_share"]) == (1, 2)
    assert nov["online_share"]["previous"] == 1.0  # October: 2 of 2
    assert nov["online_share"]["target"] == 0.8  # the national default (kpi_targets)
    commune = _kpis(body, "2026-11-01", "commune")
    assert _nd(commune["online_share"]) == (0, 1)
    assert _nd(commune["resolved_online_share"]) == (1, 2)
    assert _nd(commune["on_time_share"]) == (1, 2)
    assert commune["online_share"]["target"] == 0.99  # tier '*' province row
    province = _kpis(body, "2026-11-01", "province")
    assert _nd(province["online_share"]) == (1, 2)
    assert _nd(province["on_time_share"]) == (1, 1)
    assert _nd(province["paid_online_share"]) == (1, 2)
    assert province["online_share"]["target"] == 0.6  # province 01, tier province
    assert _kpis(body, "2026-10-01", "province")["online_share"]["target"] == 0.8  # not yet
    assert _nd(_kpis(body, "2026-11-01", "unassigned")["online_share"]) == (1, 1)


async def test_days_weeks_and_a_commune_follow_vietnam_time(loaded: ApiDb) -> None:
    key = new_key(loaded, "viewer")
    async with api_client(loaded.settings) as client:
        days = (await client.get("/v1/kpis", headers=bearer(key), params={
            "grain": "day", "from": "2026-10-31", "to": "2026-11-01"})).json()
        weeks = (await client.get("/v1/kpis", headers=bearer(key), params={
            "grain": "week", "from": "2026-10-28", "to": "2026-11-03"})).json()
        commune = (await client.get("/v1/kpis", headers=bearer(key), params={
            "scope": "commune", "commune": "00008", "from": "2026-11-01",
            "to": "2026-11-30"})).json()
        refused = [(await client.get("/v1/kpis", headers=bearer(key), params=p)).status_code
                   for p in ({"from": "2026-11-02", "to": "2026-11-01"},
                             {"from": "2025-01-01", "to": "2026-11-01"},
                             {"scope": "province"}, {"scope": "commune"},
                             {"grain": "year"}, {"province": "1"})]
    assert refused == [400, 400, 400, 400, 422, 422]
    assert _nd(_kpis(days, "2026-10-31", "all")["online_share"]) == (1, 1)  # A only
    assert _nd(_kpis(days, "2026-11-01", "all")["online_share"]) == (0, 1)  # B offline
    assert _nd(_kpis(days, "2026-11-01", "all")["on_time_share"]) == (1, 1)  # A resolved
    # ISO week from Monday 2026-10-26: A and B received; the next week C and D
    assert weeks["from"] == "2026-10-26"
    assert _nd(_kpis(weeks, "2026-10-26", "all")["online_share"]) == (1, 2)
    assert _nd(_kpis(weeks, "2026-11-02", "all")["online_share"]) == (1, 2)
    assert _nd(_kpis(commune, "2026-11-01", "all")["online_share"]) == (1, 1)  # C
    assert _nd(_kpis(commune, "2026-11-01", "all")["paid_online_share"]) == (1, 1)


async def test_national_view_ranks_provinces_with_the_tier_gap(loaded: ApiDb) -> None:
    key = new_key(loaded, "viewer")
    async with api_client(loaded.settings) as client:
        r = await client.get("/v1/kpis/national", headers=bearer(key), params={
            "period": "2026-11-15", "rank_by": "online_share"})
        bad = await client.get("/v1/kpis/national", headers=bearer(key),
                               params={"rank_by": "nope"})
    assert bad.status_code == 400 and bad.json()["error"] == "invalid_query"
    body = r.json()
    assert body["period"] == "2026-11-01"
    top = body["provinces"][0]
    assert (top["rank"], top["province_code"]) == (1, "01")
    online = top["kpis"]["online_share"]
    assert _nd(online["all"]) == (2, 4) and online["all"]["previous"] == 1.0
    assert online["tier_gap"] == pytest.approx(0.0 - 0.5)  # commune 0/1, province 1/2
    assert _nd(body["nation"]["on_time_share"]["all"]) == (2, 3)


async def test_overdue_dossiers_per_agency_now(loaded: ApiDb) -> None:
    key = new_key(loaded, "viewer")
    async with api_client(loaded.settings) as client:
        r = await client.get("/v1/kpis/overdue", headers=bearer(key),
                             params={"province": "01"})
        unauth = await client.get("/v1/kpis/overdue")
    assert unauth.status_code == 401
    agencies = r.json()["agencies"]
    assert [(a["agency"], a["tier"], a["overdue"]) for a in agencies] == [
        ("stp-01", "province", 2)]  # C and F; E was returned, A, B, D resolved
    assert agencies[0]["oldest_due_at"] == "2026-10-19T17:00:00Z"  # F's due_at
