"""The TimescaleDB sink and stage 2 on the real database: idempotent writes, exact
rollups for every feed's metrics, a row the database refuses is isolated and
dead-lettered instead of stalling the partition, and connections a restart killed are
replaced."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

import psycopg
import pytest

from ioccore.events.record import Record, encode_records
from streams.health import Health
from streams.retry import run_batch
from streams.stage2 import Enriched, Refused, Stage2, make_pool
from tests.support.clock import T0

pytestmark = pytest.mark.integration



def service(i: int, **over: Any) -> Record:
    fields: dict[str, Any] = dict(
        event_id=f"d{i}", source_id="desk-1", department="hcc", feed="service",
        occurred_at=T0 + timedelta(seconds=i), received_at=T0.timestamp(),
        commune_code="00004", province_code="01", geo="code", dossier_id=f"D{i}",
        procedure_code="1.0001", agency="UBND", channel="online" if i % 4 else "offline",
        status="resolved", due_at=T0 + timedelta(seconds=30),
        resolved_at=T0 + timedelta(seconds=i), fee_bearing=False, digitised=True)
    fields.update(over)
    return Record(**fields)


@pytest.fixture
def db(migrated_db: tuple[str, str]) -> str:
    return migrated_db[1]


def query(conninfo: str, sql: str) -> list[tuple[Any, ...]]:
    with psycopg.connect(conninfo) as conn:
        return conn.execute(sql).fetchall()


def test_service_kpi_inputs_are_exact_and_a_refused_row_is_isolated(db: str) -> None:
    records = [service(i) for i in range(40)]
    records[17] = service(17, dossier_id="D\x0017")  # PostgreSQL text cannot hold NUL
    refused: list[Refused] = []

    async def run() -> None:
        async def on_rejected(rows: list[Refused]) -> None:
            refused.extend(rows)

        stage2 = Stage2(make_pool(db), allowed_lateness_s=300, on_rejected=on_rejected,
                        max_rows=7)  # several writes in one transaction, one refused row
        msg = Enriched("enriched", 3, 41, encode_records(records))
        first = await stage2.process([msg])
        assert sum(first.write.inserted.values()) == 39
        again = await stage2.process([msg])  # replay: nothing new
        assert sum(again.write.inserted.values()) == 0
        await stage2.close()

    asyncio.run(run())
    assert [r.record.event_id for r in refused] == ["d17", "d17"]  # once per attempt
    assert refused[0].reason
    assert (refused[0].origin.partition, refused[0].origin.offset) == (3, 41)
    rows = dict(query(db, "SELECT metric, sum(count)::int FROM rollup_1m GROUP BY 1"))
    assert rows["service.resolved"] == 39
    on_time = query(db, "SELECT sum(sum), sum(count) FROM rollup_1m"
                        " WHERE metric = 'service.resolved.on_time'")[0]
    # resolved_at = T0+i s, due at T0+30 s: i in 0..30 except 17 are on time
    assert (on_time[0], on_time[1]) == (30.0, 39)
    online = query(db, "SELECT sum(sum) FROM rollup_1m WHERE metric = 'service.resolved.online'")
    assert online[0][0] == sum(1 for i in range(40) if i % 4 and i != 17)


def test_stage2_replaces_connections_a_restart_killed(db: str) -> None:
    """Every connection terminated (what a PostgreSQL restart does): the pool's check
    replaces the dead one and the next batch is stored without a failed attempt."""
    batch1 = [service(i) for i in range(10)]
    batch2 = [service(i) for i in range(10, 20)]

    async def run() -> int:
        stage2 = Stage2(make_pool(db), allowed_lateness_s=300)
        health = Health()
        await run_batch(stage2, [Enriched("e", 0, 0, encode_records(batch1))], messages=1,
                        health=health)
        with psycopg.connect(db, autocommit=True) as admin:
            killed = admin.execute(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
                " WHERE datname = current_database() AND pid <> pg_backend_pid()"
                " AND usename = current_user").fetchone()  # the sink's: no superuser here
            assert killed and killed[0] >= 1
        failures = await run_batch(stage2, [Enriched("e", 0, 1, encode_records(batch2))],
                                   messages=1, health=health)
        await stage2.close()
        return failures

    assert asyncio.run(run()) == 0
    assert query(db, "SELECT count(*) FROM service_events")[0][0] == 20


def test_stage2_checks_a_connection_only_after_it_sat_idle(db: str) -> None:
    """``database.check_idle_s``: a connection taken again within it is not checked (a
    round trip a batch), so connections killed right after a batch fail the next batch
    once, and it is stored on its retry (nothing lost, no duplicate); killed while the
    connection sat idle longer, they are replaced before the batch as before."""
    batches = [[service(i) for i in range(k * 10, k * 10 + 10)] for k in range(3)]

    def kill() -> None:
        with psycopg.connect(db, autocommit=True) as admin:
            killed = admin.execute(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
                " WHERE datname = current_database() AND pid <> pg_backend_pid()"
                " AND usename = current_user").fetchone()
            assert killed and killed[0] >= 1

    async def run() -> list[int]:
        stage2 = Stage2(make_pool(db, check_idle_s=0.5), allowed_lateness_s=300)
        health = Health()
        failures = []
        for k, records in enumerate(batches):
            if k == 1:
                kill()  # right after batch 0: inside the window, not checked
            if k == 2:
                await asyncio.sleep(0.7)  # idle past the window: checked
                kill()
            failures.append(await run_batch(
                stage2, [Enriched("e", 0, k, encode_records(records))], messages=1,
                health=health, retry_max_s=0.2))
        await stage2.close()
        return failures

    assert asyncio.run(run()) == [0, 1, 0]
    assert query(db, "SELECT count(*), count(DISTINCT event_id) FROM service_events")[0] == \
        (30, 30)
