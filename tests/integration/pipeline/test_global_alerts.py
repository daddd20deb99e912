"""Province-scope and feed-absence rules: evaluated by exactly one worker (the advisory
lock holder) from the database, on the real TimescaleDB."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg
import pytest
from iocdev.sandbox import Pipeline

from alerts.model import CommuneInfo
from alerts.ruleload import load_rules
from streams.global_rules import GlobalRules
from streams.singleton_rules import SingletonRules
from tests.support.rulefiles import pm25_entry, rule_file

pytestmark = pytest.mark.integration

RULES = rule_file("global", pm25_entry(
    "province_pm25_high", scope="province", window="10m", clear=80,
    summary="PM2.5 {province}: {value:.0f}", summary_en="PM2.5 {province_en}: {value:.0f}"),
    """      - id: traffic_feed_silent
        kind: absence
        by: feed
        feed: traffic
        silent_for: 15m
        severity: critical
        annotations:
          summary: { vi: "{feed} im lặng", en: "{feed} silent" }
""")
COMMUNES = {"00004": CommuneInfo("Ba Đình", "01", "Hà Nội"),
            "00008": CommuneInfo("Ngọc Hà", "01", "Hà Nội")}


def test_province_and_feed_absence_rules_fire_in_exactly_one_worker(
        pipe: Pipeline, tmp_path: Path) -> None:
    (tmp_path / "global.yaml").write_text(RULES)
    rules = load_rules([tmp_path / "global.yaml"])
    now = datetime.now(UTC).replace(second=0, microsecond=0)
    with psycopg.connect(pipe.conninfo) as conn:
        for minute in range(5):  # two communes whose average is 130 µg/m³
            for code, value in (("00004", 150.0), ("00008", 110.0)):
                b = now - timedelta(minutes=minute)
                conn.execute("INSERT INTO rollup_1m (bucket, commune_code, metric, province_code,"
                             " count, sum, min, max, last, last_at) VALUES"
                             " (%s, %s, 'pm25', '01', 2, %s, %s, %s, %s, %s)",
                             (b, code, 2 * value, value, value, value, b))
        conn.execute("INSERT INTO sources (source_id, department, feed, commune_code,"
                     " last_received_at) VALUES ('cam-1', 'sgtvt', 'traffic', '00004', %s),"
                     " ('aq-1', 'stnmt', 'sensor', '00004', %s),"
                     " ('aq-2', 'stnmt', 'sensor', '00008', %s)",
                     (now - timedelta(minutes=20), now, now))

    async def run() -> tuple[int, int]:
        first, second = (SingletonRules(pipe.conninfo, [
            GlobalRules(pipe.settings, rules, COMMUNES)]) for _ in range(2))
        try:
            stored_first = await first.tick(now)
            stored_second = await second.tick(now)  # lock held by `first`: does nothing
            again = await first.tick(now, force=True)  # same facts: no new transition
            assert again == 0
            return stored_first, stored_second
        finally:
            await first.close()
            await second.close()

    stored_first, stored_second = asyncio.run(run())
    assert (stored_first, stored_second) == (2, 0)
    rows = pipe.query("SELECT rule_id, state, labels->>'province_code', labels->>'feed'"
                      " FROM alerts ORDER BY rule_id")
    assert rows == [("province_pm25_high", "firing", "01", None),
                    ("traffic_feed_silent", "firing", None, "traffic")]
