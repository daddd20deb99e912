"""The province's publisher on the real database: a committed change wakes it (no poll
interval in the latency), what it sends is the province's own row, and a round's
queries are per-key lookups whose cost does not grow with the history or the queue.

Kafka is not the subject here (the end-to-end test carries these records through real
brokers and MirrorMaker): ``send`` keeps what it is given and acknowledges at once.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import psycopg
import pytest
from iocdev.sandbox import fresh_database

from ioccore.federation import KpiDayRecord, decode
from ioccore.kpis import COUNTS
from ioccore.settings import Settings
from streams.federation import publisher as publishing
from streams.federation.publisher import Publisher
from tests.support.dossiers import INSERT, service_rows

pytestmark = pytest.mark.integration
T0 = datetime(2026, 12, 1, 1, tzinfo=UTC)


@pytest.fixture
def conninfo(stack: Settings) -> Iterator[str]:
    with fresh_database(stack, "ioc_fedpub") as (_, info):
        yield info


class Sent:
    """The records given to ``send``, acknowledged at once."""

    def __init__(self) -> None:
        self.records: list[KpiDayRecord] = []

    async def __call__(self, key: bytes, value: bytes) -> asyncio.Future[None]:
        record = decode(value)
        if isinstance(record, KpiDayRecord):
            self.records.append(record)
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        done.set_result(None)
        return done


def _store(conninfo: str, rows: list[tuple[Any, ...]]) -> None:
    with psycopg.connect(conninfo) as conn, conn.cursor() as cur:
        cur.executemany(INSERT, rows)


async def _until(check: Any, within_s: float) -> float:
    loop = asyncio.get_running_loop()
    start = loop.time()
    while not check():
        if loop.time() - start > within_s:
            raise TimeoutError
        await asyncio.sleep(0.02)
    return loop.time() - start


def test_a_commit_wakes_the_publisher_and_it_sends_the_province_rows(conninfo: str) -> None:
    rows = service_rows("01", T0, 600, rate=0.5, seed=3)
    assert len(rows) > 20
    first, later = rows[: len(rows) // 2], rows[len(rows) // 2:]
    _store(conninfo, first)
    sent = Sent()

    async def scenario() -> float:
        stop = asyncio.Event()

        async def connect() -> psycopg.AsyncConnection[Any]:
            return await psycopg.AsyncConnection.connect(conninfo, autocommit=True)

        task = asyncio.create_task(publishing.run(
            Publisher("01", sent), connect, every_s=60.0, snapshot_every_s=60.0, stop=stop))
        try:
            await _until(lambda: sent.records, 20.0)  # the first start queues history
            n = len(sent.records)
            await asyncio.sleep(0.5)  # the first round is over: the next waits 60 s
            await asyncio.to_thread(_store, conninfo, later)
            # a poll of every_s would take 60 s; the commit's notification wakes it
            return await _until(lambda: len(sent.records) > n
                                and _queued(conninfo) == 0, 10.0)
        finally:
            stop.set()
            await asyncio.wait_for(task, 10.0)

    waited = asyncio.run(scenario())
    assert waited < 10.0
    newest: dict[tuple[Any, ...], KpiDayRecord] = {}
    for r in sent.records:
        k = (r.key.day, r.key.agency, r.key.applicant_province, r.key.applicant_commune)
        if k not in newest or newest[k].as_of <= r.as_of:
            newest[k] = r
    with psycopg.connect(conninfo) as conn:
        own = {tuple(row[:4]): tuple(int(v) for v in row[4:]) for row in conn.execute(
            f"SELECT day, agency, applicant_province, applicant_commune, "
            f"{', '.join(COUNTS)} FROM kpi_daily")}
    assert own, "the dossiers were folded into KPI rows"
    assert {k: tuple(getattr(r.values, c) for c in COUNTS) for k, r in newest.items()} == own


def _queued(conninfo: str) -> int:
    with psycopg.connect(conninfo) as conn:
        row = conn.execute("SELECT count(*) FROM federation_dirty").fetchone()
    return int(row[0]) if row else -1


def test_a_round_is_per_key_lookups_whatever_the_history_or_the_queue(conninfo: str) -> None:
    """The plans a round runs: no scan of kpi_counts_daily (the province's history) nor of
    the queue, even where the statistics say a scan would be cheap."""
    keys = [(T0.date(), f"agency-{i}", "01", f"{i:05d}") for i in range(2000)]
    with psycopg.connect(conninfo) as conn:
        conn.execute(
            "INSERT INTO kpi_counts_daily (day, agency, province_code, commune_code) "
            "SELECT * FROM unnest(%s::date[], %s::text[], %s::text[], %s::text[])",
            [list(c) for c in zip(*keys, strict=True)])
        conn.execute(
            "INSERT INTO federation_dirty (day, agency, province_code, commune_code) "
            "SELECT day, agency, province_code, commune_code FROM kpi_counts_daily, "
            "generate_series(1, 20)")
        conn.commit()
        conn.execute("ANALYZE kpi_counts_daily")
        conn.execute("ANALYZE federation_dirty")
        claim = "\n".join(r[0] for r in conn.execute(
            "EXPLAIN " + publishing._CLAIM, {"n": 500}).fetchall())
        values = "\n".join(r[0] for r in conn.execute(
            "EXPLAIN " + publishing._VALUES, {
                "days": [k[0] for k in keys[:500]], "agencies": [k[1] for k in keys[:500]],
                "provinces": [k[2] for k in keys[:500]],
                "communes": [k[3] for k in keys[:500]]}).fetchall())
        conn.rollback()
    assert "Seq Scan on federation_dirty" not in claim, claim
    assert "Seq Scan on kpi_counts_daily" not in values, values
    assert "Index Scan using kpi_counts_daily" in values, values
