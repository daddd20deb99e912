"""Two writers claiming the same event identities at once, on the real database.

The sink claims identities with an anti-join and a plain INSERT (no ``ON CONFLICT``), so a
writer that loses a race gets a unique violation on the key table. That must never refuse
or lose a row: the losing write runs again under its savepoint and counts the winner's
rows as duplicates. Each event is stored once, both batches succeed, the rollups equal a
GROUP BY over the raw rows, and a replay adds nothing.
"""

from __future__ import annotations

import asyncio
import random
from datetime import timedelta
from typing import Any

import psycopg
import pytest
from prometheus_client import REGISTRY

from ioccore.events.record import Record, encode_records
from streams.health import Health
from streams.retry import run_batch
from streams.sinks import statements
from streams.sinks.timescale import TimescaleSink, WriteResult, rows_of
from streams.stage2 import Enriched, Stage2, make_pool
from tests.support.clock import T0

pytestmark = pytest.mark.integration


def reading(i: int) -> Record:
    return Record(event_id=f"e{i}", source_id=f"s{i % 7}", department="env", feed="sensor",
                  occurred_at=T0 + timedelta(seconds=i), received_at=T0.timestamp(),
                  commune_code=f"{i % 3:05d}", province_code="01", geo="code",
                  metric="pm25", value=float(i % 50), unit="ug/m3")


def dossier_event(i: int) -> Record:
    return Record(event_id=f"d{i}", source_id="desk-1", department="hcc", feed="service",
                  occurred_at=T0 + timedelta(seconds=i), received_at=T0.timestamp(),
                  commune_code="00004", province_code="01", geo="code",
                  dossier_id=f"D{i % 40}", procedure_code="1.0001", agency="UBND",
                  channel="online", status="received" if i % 2 else "resolved",
                  due_at=T0 + timedelta(days=1), resolved_at=None if i % 2 else T0,
                  fee_bearing=False, digitised=True)


@pytest.fixture
def db(migrated_db: tuple[str, str]) -> str:
    return migrated_db[1]


def claim_retries() -> float:
    return REGISTRY.get_sample_value("ioc_sink_claim_retries_total") or 0.0


def query(conninfo: str, sql: str) -> list[tuple[Any, ...]]:
    with psycopg.connect(conninfo) as conn:
        return conn.execute(sql).fetchall()


ROLLUPS = """SELECT commune_code, bucket, count::int, sum FROM rollup_1m
             WHERE metric = 'pm25' ORDER BY 1, 2"""
GROUP_BY = """SELECT commune_code, time_bucket('1 minute', time) AS b, count(*)::int,
                     sum(value) FROM sensor_readings GROUP BY 1, 2 ORDER BY 1, 2"""


def assert_stored_once(db: str, ids: set[str]) -> None:
    stored = query(db, "SELECT event_id, count(*)::int FROM sensor_readings GROUP BY 1")
    assert {e for e, _ in stored} == ids
    assert all(n == 1 for _, n in stored)
    assert query(db, "SELECT count(*)::int FROM sensor_readings_keys")[0][0] == len(ids)
    assert query(db, ROLLUPS) == query(db, GROUP_BY)


async def _waiting_on_lock(db: str, pid: int) -> None:
    """Until backend ``pid`` waits for a lock (the other transaction's key)."""
    async with await psycopg.AsyncConnection.connect(db, autocommit=True) as watch:
        for _ in range(500):
            cur = await watch.execute(
                "SELECT wait_event_type FROM pg_stat_activity WHERE pid = %s", (pid,))
            row = await cur.fetchone()
            if row and row[0] == "Lock":
                return
            await asyncio.sleep(0.01)
    raise AssertionError("the second writer never waited for the first one's keys")


async def claim_only(conn: psycopg.AsyncConnection[Any], records: list[Record]) -> None:
    """The sink's insert-and-roll-up statement alone, without the sources upsert before
    it (which, in a whole sink write, makes a second writer of the same sources wait
    before its claim): a writer whose claim can meet another's in the key index."""
    async with conn.cursor() as cur:
        async with cur.copy(statements.copy_into_staging("sensor").encode()) as copy:
            copy.set_types(list(statements.TYPES["sensor"]))
            for row in rows_of("sensor", records, [False] * len(records)):
                await copy.write_row(row)
        await cur.execute(statements.insert_and_roll_up("sensor").encode())


@pytest.mark.parametrize(("winner", "reruns"), [("claim", 1), ("sink", 0)])
def test_the_loser_of_a_claim_race_stores_only_what_the_winner_did_not(
        db: str, winner: str, reruns: int) -> None:
    """Writer A holds keys 0-59 uncommitted; B writes 30-89 and waits for A; A commits;
    B stores 60-89 and counts 30-59 as duplicates. When B waited in the key index
    (``claim``: A ran only the claim statement), its claim failed with a unique violation
    and was run again; a whole sink write (``sink``) makes B wait at the sources upsert
    before it claims, so B's claim already sees A's keys."""
    first = [reading(i) for i in range(60)]
    second = [reading(i) for i in range(30, 90)]
    sink = TimescaleSink()
    retries_before = claim_retries()

    async def run() -> WriteResult:
        a = await psycopg.AsyncConnection.connect(db)
        b = await psycopg.AsyncConnection.connect(db)
        try:
            for conn in (a, b):
                await TimescaleSink.prepare(conn)
            b_pid = b.info.backend_pid

            async def write_b() -> WriteResult:
                async with b.transaction():
                    return await sink.write(b, second, [False] * len(second))

            async with a.transaction():
                if winner == "claim":
                    await claim_only(a, first)
                else:
                    won = await sink.write(a, first, [False] * len(first))
                    assert won.inserted == {"sensor": 60}
                lost = asyncio.create_task(write_b())
                await _waiting_on_lock(db, b_pid)
            return await lost
        finally:
            await a.close()
            await b.close()

    result = asyncio.run(run())
    assert result.inserted == {"sensor": 30}
    assert result.duplicates == {"sensor": 30}
    assert not result.rejected
    assert claim_retries() == retries_before + reruns
    assert_stored_once(db, {f"e{i}" for i in range(90)})
    rollups = query(db, ROLLUPS)

    async def replay() -> list[WriteResult]:
        async with await psycopg.AsyncConnection.connect(db) as conn:
            await TimescaleSink.prepare(conn)
            out = []
            for batch in (first, second):
                async with conn.transaction():
                    out.append(await sink.write(conn, batch, [False] * len(batch)))
            return out

    assert [r.inserted for r in asyncio.run(replay())] == [{"sensor": 0}, {"sensor": 0}]
    assert query(db, ROLLUPS) == rollups


def test_two_stage2_workers_on_overlapping_batches_store_each_event_once(db: str) -> None:
    """Two stage-2 instances (two workers around a rebalance) take shuffled, overlapping
    batches at once, through ``run_batch`` as the worker does: every batch succeeds (a
    lost race is rerun, a deadlock retried), each event is stored exactly once, the
    rollups equal a GROUP BY and the dossiers fold as from one writer."""
    rng = random.Random(11)
    events = [reading(i) for i in range(600)] + [dossier_event(i) for i in range(120)]
    batches: list[list[list[Record]]] = [[], []]
    for n in (0, 1):
        mine = events[:]
        rng.shuffle(mine)
        for start in range(0, len(mine), 90):
            batches[n].append(mine[start:start + 90])

    async def one_worker(n: int) -> list[int]:
        stage2 = Stage2(make_pool(db), allowed_lateness_s=1e9)
        health = Health()
        inserted = []
        for offset, batch in enumerate(batches[n]):
            await run_batch(stage2, [Enriched("e", n, offset, encode_records(batch))],
                            messages=1, health=health, retry_max_s=0.2)
            inserted.append(offset)
        await stage2.close()
        return inserted

    async def both() -> list[list[int]]:
        return list(await asyncio.gather(one_worker(0), one_worker(1)))

    done = asyncio.run(both())
    assert done == [list(range(len(batches[0]))), list(range(len(batches[1])))]
    assert_stored_once(db, {f"e{i}" for i in range(600)})
    assert query(db, "SELECT count(DISTINCT event_id)::int, count(*)::int"
                     " FROM service_events") == [(120, 120)]
    assert query(db, "SELECT count(*)::int FROM dossiers") == [(40,)]
