"""Apache-edition maintenance on the real TimescaleDB: hourly rollups recomputed from the
one-minute windows (same answers as aggregating them directly, idempotent), and
retention dropping chunks older than the configured age."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import psycopg
import pytest

from ioccore.db.edition import timescale_edition
from ioccore.db.maintenance import run_maintenance

pytestmark = pytest.mark.integration

T0 = datetime(2026, 11, 20, 0, 0, tzinfo=UTC)
DIRECT = """
SELECT time_bucket('1 hour', bucket) AS h, commune_code, metric, sum(count)::bigint,
       sum(sum), min(min), max(max), last(last, last_at)
FROM rollup_1m GROUP BY 1, 2, 3 ORDER BY 1, 2, 3
"""
HOURLY = ("SELECT bucket, commune_code, metric, count, sum, min, max, last FROM rollup_1h"
          " ORDER BY 1, 2, 3")


@pytest.fixture
def conninfo(migrated_db: tuple[str, str]) -> str:
    return migrated_db[1]


def test_hourly_rollups_match_the_minutes_and_retention_drops_old_chunks(
        conninfo: str) -> None:
    if timescale_edition(conninfo) != "apache":
        pytest.fail("this machine's build is the Apache edition; the test expects it")
    with psycopg.connect(conninfo) as conn:
        for m in range(0, 150):
            at = T0 + timedelta(minutes=m)
            for code in ("00004", "00008"):
                v = float((m * 7) % 50) + (1 if code == "00004" else 0)
                conn.execute(
                    "INSERT INTO rollup_1m (bucket, commune_code, metric, province_code, count,"
                    " sum, min, max, last, last_at) VALUES (%s, %s, 'pm25', '01', 3, %s, %s,"
                    " %s, %s, %s)", (at, code, 3 * v, v - 1, v + 1, v, at + timedelta(seconds=50)))
        old = T0 - timedelta(days=200)  # sensor rows older than the 90-day retention
        conn.execute("INSERT INTO sensor_readings (time, event_id, source_id, department,"
                     " commune_code, province_code, metric, value, unit, geo, received_at)"
                     " VALUES (%s, 'old', 's', 'd', '00004', '01', 'pm25', 1, 'ug/m3', 'code',"
                     " %s), (%s, 'new', 's', 'd', '00004', '01', 'pm25', 1, 'ug/m3', 'code', %s)",
                     (old, old, T0, T0))
    lines = run_maintenance(conninfo, now=T0 + timedelta(hours=3),
                            refresh_window=timedelta(hours=4))
    assert any("rollup_1h" in line for line in lines)
    with psycopg.connect(conninfo) as conn:
        direct = conn.execute(DIRECT).fetchall()
        hourly = conn.execute(HOURLY).fetchall()
        assert hourly == direct and len(hourly) == 6  # 3 hours x 2 communes
        run_maintenance(conninfo, now=T0 + timedelta(hours=3), refresh_window=timedelta(hours=4))
        assert conn.execute(HOURLY).fetchall() == direct  # idempotent: totals, not increments
        ids = [r[0] for r in conn.execute("SELECT event_id FROM sensor_readings")]
        assert ids == ["new"]
