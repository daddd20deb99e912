"""The TimescaleDB sink and stage 2 on the real database: idempotent writes, exact
rollups for every feed's metrics, and a row the database refuses is isolated and
dead-lettered instead of stalling the partition."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from iocdev.sandbox import Pipeline

from ioc.core.events.record import Record
from streams.sinks.timescale import TimescaleSink
from streams.stage2 import Stage2

pytestmark = pytest.mark.integration

T0 = datetime(2026, 11, 23, 2, 0, tzinfo=UTC)


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


def test_service_kpi_inputs_are_exact_and_a_refused_row_is_isolated(pipe: Pipeline) -> None:
    records = [service(i) for i in range(40)]
    records[17] = service(17, dossier_id="D\x0017")  # PostgreSQL text cannot hold NUL
    refused: list[tuple[Record, str]] = []

    async def run() -> None:
        sink = TimescaleSink(pipe.conninfo)

        async def on_rejected(rows: list[tuple[Record, str]]) -> None:
            refused.extend(rows)

        stage2 = Stage2(sink, allowed_lateness_s=300, on_rejected=on_rejected)
        from ioc.core.events.record import encode_records

        await stage2.process([encode_records(records)])
        again = await stage2.process([encode_records(records)])  # replay: nothing new
        assert sum(again.write.inserted.values()) == 0
        await sink.close()

    asyncio.run(run())
    assert [r.event_id for r, _ in refused] == ["d17", "d17"]  # once per attempt
    assert refused[0][1]
    rows = dict(pipe.query("SELECT metric, sum(count)::int FROM rollup_1m GROUP BY 1"))
    assert rows["service.resolved"] == 39
    on_time = pipe.query("SELECT sum(sum), sum(count) FROM rollup_1m"
                         " WHERE metric = 'service.resolved.on_time'")[0]
    # resolved_at = T0+i s, due at T0+30 s: i in 0..30 except 17 are on time
    assert (on_time[0], on_time[1]) == (30.0, 39)
    online = pipe.query("SELECT sum(sum) FROM rollup_1m WHERE metric = 'service.resolved.online'")
    assert online[0][0] == sum(1 for i in range(40) if i % 4 and i != 17)


def test_sink_reconnects_and_retries_after_losing_its_connection(pipe: Pipeline) -> None:
    import psycopg

    from ioc.core import metrics

    batch1 = [service(i) for i in range(10)]
    batch2 = [service(i) for i in range(10, 20)]

    async def run() -> None:
        sink = TimescaleSink(pipe.conninfo, retry_max_s=1.0, give_up_after_s=30)
        await sink.write(batch1, [False] * len(batch1))
        with psycopg.connect(pipe.conninfo, autocommit=True) as admin:  # the DB "restarts"
            killed = admin.execute(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
                " WHERE datname = current_database() AND pid <> pg_backend_pid()").fetchone()
            assert killed and killed[0] >= 1
        before = metrics.SINK_RETRIES._value.get()
        result = await sink.write(batch2, [False] * len(batch2))
        assert result.inserted == {"service": 10}
        assert metrics.SINK_RETRIES._value.get() > before
        await sink.close()

    asyncio.run(run())
    assert pipe.query("SELECT count(*) FROM service_events")[0][0] == 20
