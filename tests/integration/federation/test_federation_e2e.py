"""Two provinces and the nation, each with its own Kafka, joined by MirrorMaker 2.

Province 01 is the shared stack's broker, province 31 and the nation get brokers of
their own (ports 28xxx, 29xxx); each has its own database on the shared PostgreSQL. Real
processes throughout: ``ioc federation publish`` per province, one MirrorMaker per
province, ``ioc federation ingest`` at the nation. The national rows must equal the
provinces' own, exactly, after: the first sync, new and late dossier events, a replay
of everything a province ever published, a province cut off (its MirrorMaker stopped)
while it keeps working, and a forged record naming the other province.
"""

from __future__ import annotations

import asyncio
import json
import random
from collections.abc import Iterator
from datetime import datetime
from typing import Any

import psycopg
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from iocdev import supervise
from iocdev.federation import running, topology
from iocdev.federation.running import Running
from iocdev.settings import DevSettings
from iocdev.simulate.physics import VN_TZ

from ioccore import kpis
from tests.support.dossiers import INSERT, service_rows

pytestmark = [pytest.mark.integration, pytest.mark.slow]

START = datetime(2026, 10, 30, tzinfo=VN_TZ)  # a Vietnam-time month boundary inside
SPAN = 3 * 86400.0
CODES = ("01", "31")
COLS = ", ".join(kpis.COUNTS)
PROVINCE_ROWS = (f"SELECT day, agency, applicant_province, applicant_commune, province_code,"
                 f" commune_code, tier, {COLS} FROM kpi_daily"
                 " WHERE received + resolved + paid_fee_bearing > 0")
NATION_ROWS = (f"SELECT day, agency, applicant_province, applicant_commune, province_code,"
               f" commune_code, tier, {COLS} FROM fed_kpi_counts WHERE origin = %s"
               " AND received + resolved + paid_fee_bearing > 0")


def _rows(province: str, seed: int) -> list[tuple[Any, ...]]:
    return service_rows(province, START, SPAN, rate=0.3, seed=seed)


def _store(conninfo: str, rows: list[tuple[Any, ...]]) -> None:
    with psycopg.connect(conninfo) as conn:
        for i in range(0, len(rows), 500):
            with conn.transaction(), conn.cursor() as cur:
                cur.executemany(INSERT, rows[i:i + 500])


@pytest.fixture(scope="module")
def federation(stack: DevSettings, tmp_path_factory: pytest.TempPathFactory
               ) -> Iterator[Running]:
    with running.federation(stack, CODES, tmp_path_factory.mktemp("federation")) as fed:
        yield fed


def _province_rows(p: running.Province) -> set[tuple[Any, ...]]:
    with psycopg.connect(p.conninfo) as conn:
        return set(conn.execute(PROVINCE_ROWS).fetchall())


def _nation_rows(fed: Running, code: str) -> set[tuple[Any, ...]]:
    with psycopg.connect(fed.nation_conninfo) as conn:
        return set(conn.execute(NATION_ROWS, (code,)).fetchall())


def _in_sync(fed: Running) -> bool:
    return all(_province_rows(p) == _nation_rows(fed, c) for c, p in fed.provinces.items())


def _explain(fed: Running) -> str:
    lines = []
    for c, p in fed.provinces.items():
        mine, theirs = _province_rows(p), _nation_rows(fed, c)
        lines.append(f"{c}: province {len(mine)} rows, nation {len(theirs)}, "
                     f"missing {len(mine - theirs)}, extra {len(theirs - mine)}")
    for p in fed.provinces.values():
        assert p.publisher is not None and p.mirror is not None
        lines.append(p.publisher.describe())
        lines.append(supervise.log_tail(p.mirror.log, 15))
    return "\n".join(lines)


def _wait_in_sync(fed: Running, timeout: float = 120.0) -> None:
    try:
        topology.wait_for(lambda: _in_sync(fed), timeout, "national rows equal to provinces'")
    except TimeoutError as exc:
        raise AssertionError(f"{exc}\n{_explain(fed)}") from None


def _nation_totals(fed: Running) -> dict[tuple[Any, ...], dict[str, int]]:
    async def go() -> dict[tuple[Any, ...], dict[str, int]]:
        async with await psycopg.AsyncConnection.connect(fed.nation_conninfo) as conn:
            rows = await kpis.fetch_counts(conn, grain="month", start=START.date().replace(day=1),
                                           end=datetime(2026, 12, 1).date(), by_province=True,
                                           source="fed_kpi_daily")
        return {(r.period, r.province_code, r.tier): r.counts for r in rows}
    return asyncio.run(go())


def _province_totals(fed: Running) -> dict[tuple[Any, ...], dict[str, int]]:
    async def one(p: running.Province) -> list[kpis.CountRow]:
        async with await psycopg.AsyncConnection.connect(p.conninfo) as conn:
            return await kpis.fetch_counts(conn, grain="month",
                                           start=START.date().replace(day=1),
                                           end=datetime(2026, 12, 1).date(), by_province=True)
    out: dict[tuple[Any, ...], dict[str, int]] = {}
    for p in fed.provinces.values():
        for r in asyncio.run(one(p)):
            if r.province_code is None:
                continue
            out[(r.period, r.province_code, r.tier)] = r.counts
    return out


def test_the_nation_equals_the_provinces_under_late_events_replays_and_an_outage(
        federation: Running) -> None:
    fed = federation
    rows = {c: _rows(c, seed=int(c)) for c in CODES}
    for c in CODES:
        assert len(rows[c]) > 300
        random.Random(5).shuffle(rows[c])
    half = {c: len(rows[c]) // 2 for c in CODES}
    for c in CODES:
        _store(fed.provinces[c].conninfo, rows[c][:half[c]])
    _wait_in_sync(fed)

    # late events (the shuffled second half reaches back over the whole span) and a
    # partial replay of the first half
    for c in CODES:
        _store(fed.provinces[c].conninfo, rows[c][half[c]:] + rows[c][: half[c] // 3])
    _wait_in_sync(fed)

    # province 31 cut off from the nation while it keeps working, then back
    p31 = fed.provinces["31"]
    assert p31.mirror is not None
    p31.mirror.stop()
    extra = _rows("31", seed=99)[:300]
    _store(p31.conninfo, extra)
    with psycopg.connect(p31.conninfo) as conn:
        topology.wait_for(lambda: conn.execute(
            "SELECT count(*) FROM federation_dirty").fetchone() == (0,), 30,
            "province 31 publishing while cut off")
    assert _province_rows(p31) != _nation_rows(fed, "31")
    p31.mirror.start(fed.libs, fed.log4j)
    _wait_in_sync(fed)

    # a replay of everything: every key queued again and re-sent (duplicates)
    for p in fed.provinces.values():
        with psycopg.connect(p.conninfo) as conn:
            conn.execute("INSERT INTO federation_dirty (day, agency, province_code, "
                         "commune_code) SELECT day, agency, province_code, commune_code "
                         "FROM kpi_counts_daily")
    before = {c: _nation_rows(fed, c) for c in CODES}
    with psycopg.connect(fed.provinces["01"].conninfo) as conn:
        topology.wait_for(lambda: conn.execute(
            "SELECT count(*) FROM federation_dirty").fetchone() == (0,), 60, "replay sent")
    assert {c: _nation_rows(fed, c) for c in CODES} == before

    # the KPI query at the nation: per province, the provinces' own totals; for the
    # nation, their sum
    totals = _nation_totals(fed)
    provinces = _province_totals(fed)
    assert {k: v for k, v in totals.items() if k[1] is not None} == provinces
    summed: dict[tuple[Any, ...], dict[str, int]] = {}
    for (period, _province, tier), counts in provinces.items():
        acc = summed.setdefault((period, None, tier), dict.fromkeys(kpis.COUNTS, 0))
        for c in kpis.COUNTS:
            acc[c] += counts[c]
    assert {k: v for k, v in totals.items() if k[1] is None} == summed
    assert (START.date().replace(day=1), "31", "all") in totals


def test_a_record_naming_another_province_is_refused(federation: Running) -> None:
    """Province 01's topic carries a forged record for 31: dead-lettered, not stored."""
    fed = federation
    forged = {"kind": "kpi_day", "schema": "ioc.federation.v1", "province_code": "31",
              "as_of": "2099-01-01T00:00:00Z",
              "key": {"day": "2026-10-30", "agency": "forged", "applicant_province": "31",
                      "applicant_commune": "unassigned"},
              "values": {"province_code": "31", "commune_code": "unassigned",
                         "tier": "unassigned", **dict.fromkeys(kpis.COUNTS, 1)}}

    async def send() -> None:
        kafka = topology.as_user(fed.provinces["01"].kafka, topology.PUBLISHER)
        producer = AIOKafkaProducer(bootstrap_servers=kafka.bootstrap_servers,
                                    **kafka.client_options())
        await producer.start()
        try:
            await producer.send_and_wait(fed.topic, json.dumps(forged).encode(),
                                         key=b"31|kpi_day|forged")
        finally:
            await producer.stop()

    asyncio.run(send())

    async def dead_letters() -> list[bytes]:
        kafka = fed.nation_kafka  # the nation's admin reads its dead letters
        consumer = AIOKafkaConsumer(kafka.topics.deadletter.name,
                                    bootstrap_servers=kafka.bootstrap_servers,
                                    auto_offset_reset="earliest", **kafka.client_options())
        await consumer.start()
        try:
            got = await consumer.getmany(timeout_ms=2000)
            return [h[1] for msgs in got.values() for m in msgs for h in m.headers
                    if h[0] == "ioc-reason"]
        finally:
            await consumer.stop()

    topology.wait_for(lambda: b"foreign_province" in asyncio.run(dead_letters()), 60,
                      "the forged record dead-lettered")
    with psycopg.connect(fed.nation_conninfo) as conn:
        assert conn.execute("SELECT count(*) FROM fed_kpi_counts WHERE agency = 'forged'"
                            ).fetchone() == (0,)

