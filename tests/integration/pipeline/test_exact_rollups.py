"""Rollups and KPIs count every stored event exactly, whenever it arrives (issue 12.1),
and an event's identity is (source_id, event_id) whatever its time (issue 15).

On the real database through the real sink and stage 2: live, late, replayed and
re-sent-with-another-time input, in orders hypothesis generates; afterwards, for any range,
``rollup_1m``, ``rollup_1h`` (after maintenance) and ``service_kpi_daily`` equal a GROUP BY
over the raw rows.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any

import psycopg
import pytest
from hypothesis import HealthCheck, given
from hypothesis import settings as hsettings
from hypothesis import strategies as st
from iocdev.sandbox import fresh_database

from ioccore.db.maintenance import run_maintenance
from ioccore.events.models import Status
from ioccore.events.record import Record, encode_records
from ioccore.settings import Settings
from streams.stage2 import Enriched, Stage2, make_pool
from tests.support.clock import T0

pytestmark = pytest.mark.integration

COMMUNES = ("00004", "00008", "00025")

RAW_1M = """
WITH points AS (
    SELECT time, commune_code, province_code, metric, value FROM sensor_readings
    UNION ALL
    SELECT time, commune_code, province_code, 'service.' || status, 1.0 FROM service_events
    UNION ALL
    SELECT time, commune_code, province_code, 'service.received.online',
           CASE WHEN channel = 'online' THEN 1.0 ELSE 0.0 END
    FROM service_events WHERE status = 'received'
    UNION ALL
    SELECT time, commune_code, province_code, 'service.resolved.on_time',
           CASE WHEN resolved_at <= due_at THEN 1.0 ELSE 0.0 END
    FROM service_events WHERE status = 'resolved' AND due_at IS NOT NULL
                          AND resolved_at IS NOT NULL
    UNION ALL
    SELECT time, commune_code, province_code, 'service.received.digitised',
           CASE WHEN digitised THEN 1.0 ELSE 0.0 END
    FROM service_events WHERE status = 'received' AND digitised IS NOT NULL
    UNION ALL
    SELECT time, commune_code, province_code, 'service.resolved.online',
           CASE WHEN channel = 'online' THEN 1.0 ELSE 0.0 END
    FROM service_events WHERE status = 'resolved'
)
SELECT time_bucket(%(width)s::interval, time) AS b, commune_code, metric, count(*),
       round(sum(value)::numeric, 6), min(value), max(value), last(value, time)
FROM points WHERE time >= %(lo)s AND time < %(hi)s
GROUP BY 1, 2, 3 ORDER BY 1, 2, 3
"""
ROLLUP = """
SELECT bucket, commune_code, metric, count, round(sum::numeric, 6), min, max, last
FROM {table} WHERE bucket >= %(lo)s AND bucket < %(hi)s ORDER BY 1, 2, 3
"""
KPI = """
SELECT day, commune_code, dossiers_received, dossiers_resolved, online_share, on_time_share
FROM service_kpi_daily ORDER BY 1, 2
"""
RAW_KPI = """
SELECT (time AT TIME ZONE 'Asia/Ho_Chi_Minh')::date, commune_code,
       count(*) FILTER (WHERE status = 'received'),
       count(*) FILTER (WHERE status = 'resolved'),
       avg(CASE WHEN channel = 'online' THEN 1.0 ELSE 0.0 END)
           FILTER (WHERE status = 'received'),
       avg(CASE WHEN resolved_at <= due_at THEN 1.0 ELSE 0.0 END)
           FILTER (WHERE status = 'resolved' AND due_at IS NOT NULL)
FROM service_events GROUP BY 1, 2 ORDER BY 1, 2
"""


@pytest.fixture
def conninfo(stack: Settings) -> Iterator[str]:
    with fresh_database(stack, "ioc_exact") as (name, _):
        yield stack.database.owner_conninfo(name)  # the examples TRUNCATE: the owner's right


def sensor(i: int, at: datetime, value: float, source: str) -> Record:
    return Record(event_id=f"s{i}", source_id=source, department="env", feed="sensor",
                  occurred_at=at, received_at=at.timestamp(),
                  commune_code=COMMUNES[i % len(COMMUNES)], province_code="01", geo="code",
                  metric="pm25", value=value, unit="ug/m3")


def dossier(i: int, at: datetime, rng: random.Random) -> Record:
    statuses: list[Status] = ["received", "resolved", "in_progress"]
    status = rng.choice(statuses)
    return Record(event_id=f"d{i}", source_id="desk-1", department="hcc", feed="service",
                  occurred_at=at, received_at=at.timestamp(),
                  commune_code=COMMUNES[i % len(COMMUNES)], province_code="01", geo="code",
                  dossier_id=f"D{i}", procedure_code="1.0001", agency="UBND",
                  channel=rng.choice(["online", "offline"]), status=status,
                  due_at=at + timedelta(hours=rng.choice([-1, 5])),
                  resolved_at=at if status == "resolved" else None,
                  fee_bearing=False, digitised=True)


def scenario(seed: int) -> tuple[list[list[Record]], list[Record]]:
    """Messages in arrival order (live, then hours-late and days-late syncs, replays and
    re-sends with another time), and the records that must be the stored ones."""
    rng = random.Random(seed)
    live: list[Record] = []
    for i in range(600):
        at = T0 + timedelta(seconds=i * 17 + rng.random() * 17)
        live.append(sensor(i, at, round(rng.uniform(1, 200), 2), f"aq-{i % 7}")
                    if i % 3 else dossier(i, at, rng))
    late = [sensor(1000 + i, T0 + timedelta(minutes=rng.random() * 170),
                   round(rng.uniform(1, 200), 2), "gw-1") for i in range(120)]
    very_late = [dossier(2000 + i, T0 - timedelta(days=2, minutes=rng.random() * 600), rng)
                 for i in range(60)]
    expected = live + late + very_late
    resent = [sensor(int(r.event_id[1:]), r.occurred_at + timedelta(minutes=7), 999.0,
                     r.source_id) for r in rng.sample([r for r in live if r.feed == "sensor"],
                                                      30)]
    messages: list[list[Record]] = [live[i:i + 25] for i in range(0, len(live), 25)]
    messages.insert(rng.randrange(len(messages)), late)          # a gateway's backlog
    messages.insert(rng.randrange(len(messages)), very_late)     # a sync days late
    messages.insert(rng.randrange(len(messages) // 2, len(messages)),
                    rng.sample(live, 80))                       # a replay
    messages.append(resent)                                      # same id, another time
    messages.append(late[:10] + resent[:5] + live[:10])          # a mixed replay
    return messages, expected


def run_stage2(conninfo: str, messages: list[list[Record]]) -> None:
    async def go() -> None:
        stage2 = Stage2(make_pool(conninfo), allowed_lateness_s=300)
        for n, m in enumerate(messages):
            await stage2.process([Enriched("enriched", 0, n, encode_records(m))])
        await stage2.close()

    asyncio.run(go())


TABLES = ("sensor_readings, sensor_readings_keys, service_events, service_events_keys,"
          " rollup_1m, rollup_1h, rollup_1h_pending, sources")


@hsettings(max_examples=6, deadline=None,
           suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(seed=st.integers(0, 2**31))
def test_rollups_and_kpis_equal_a_group_by_over_the_raw_rows(conninfo: str, seed: int) -> None:
    with psycopg.connect(conninfo) as conn:  # one database for every example
        conn.execute(f"TRUNCATE {TABLES}")
    messages, expected = scenario(seed)
    run_stage2(conninfo, messages)
    run_maintenance(conninfo)
    with psycopg.connect(conninfo) as conn:
        stored = conn.execute("SELECT source_id, event_id, time FROM sensor_readings UNION ALL"
                              " SELECT source_id, event_id, time FROM service_events").fetchall()
        # identity: one row per (source_id, event_id), the first stored (not the re-send)
        assert sorted(stored) == sorted((r.source_id, r.event_id, r.occurred_at)
                                        for r in expected)
        assert conn.execute("SELECT count(*) FROM sensor_readings WHERE value = 999"
                            ).fetchone() == (0,)
        # late events are marked, and counted all the same
        late = conn.execute("SELECT count(*) FROM sensor_readings WHERE late").fetchone()
        assert late is not None and late[0] > 0
        ranges = [(T0 - timedelta(days=3), T0 + timedelta(days=1)),
                  (T0 + timedelta(minutes=13), T0 + timedelta(minutes=97)),
                  (T0 - timedelta(days=2, hours=3), T0 - timedelta(days=1))]
        for lo, hi in ranges:
            p: dict[str, Any] = {"lo": lo, "hi": hi, "width": "1 minute"}
            raw = conn.execute(RAW_1M, p).fetchall()
            assert conn.execute(ROLLUP.format(table="rollup_1m"), p).fetchall() == raw
            p["width"] = "1 hour"
            lo_h = lo.replace(minute=0)
            p_h = {"lo": lo_h, "hi": hi.replace(minute=0), "width": "1 hour"}
            raw_h = conn.execute(RAW_1M, p_h).fetchall()
            assert conn.execute(ROLLUP.format(table="rollup_1h"), p_h).fetchall() == raw_h
        kpi = conn.execute(KPI).fetchall()
        raw_kpi = conn.execute(RAW_KPI).fetchall()
        assert [(d, c, int(r or 0), int(s or 0)) for d, c, r, s, _, _ in kpi] == [
            (d, c, int(r), int(s)) for d, c, r, s, _, _ in raw_kpi]
        for got, want in zip(kpi, raw_kpi, strict=True):
            for g, w in zip(got[4:], want[4:], strict=True):
                assert (g is None and w is None) or abs(float(g) - float(w)) < 1e-9


def test_a_late_event_marks_its_hour_for_the_hourly_refresh(conninfo: str) -> None:
    """rollup_1h follows a correction to an hour outside maintenance's recent window."""
    run_stage2(conninfo, [[sensor(1, T0 + timedelta(hours=10), 5.0, "a")]])
    run_maintenance(conninfo)
    run_stage2(conninfo, [[sensor(2, T0 + timedelta(minutes=5), 7.0, "a")]])  # 10 h late
    with psycopg.connect(conninfo) as conn:
        assert conn.execute("SELECT hour FROM rollup_1h_pending").fetchall() == [(T0,)]
    run_maintenance(conninfo)
    with psycopg.connect(conninfo) as conn:
        assert conn.execute("SELECT bucket, count, sum FROM rollup_1h WHERE bucket = %s",
                            (T0,)).fetchall() == [(T0, 1, 7.0)]
        assert conn.execute("SELECT count(*) FROM rollup_1h_pending").fetchone() == (0,)
