"""KPI target rules on the real database: provincial agencies of Hà Nội below their
online target for the month so far fire (the commune tier, above its target, does not);
more online dossiers clear it; only the advisory-lock holder evaluates."""

from __future__ import annotations

import asyncio
import gc
import io
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
import pytest
from iocdev.sandbox import fresh_database
from prometheus_client import REGISTRY as METRICS

from alerts.model import CommuneInfo
from alerts.ruleload import load_rules
from ioccore.agencies import parse_registry, write_registry
from ioccore.settings import Settings
from streams.evaluation import update_active_gauge
from streams.kpi_target_rules import KpiTargetRules
from streams.singleton_rules import SingletonRules

pytestmark = pytest.mark.integration

RULES = """
groups:
  - name: kpi_targets
    rules:
      - id: province_tier_online_below_target
        kind: kpi_target
        kpi: online_share
        scope: province
        tier: province
        period: month
        hysteresis: 1
        min_denominator: 3
        severity: warning
        annotations:
          summary:
            vi: "{province}: nộp trực tuyến cấp tỉnh {value:.1f}% (mục tiêu {threshold}%)"
            en: "{province_en}: provincial online share {value:.1f}% (target {threshold}%)"
      - id: commune_tier_online_below_target
        kind: kpi_target
        kpi: online_share
        scope: province
        tier: commune
        severity: info
        annotations:
          summary: { vi: "{province} {value}", en: "{province_en} {value}" }
"""
REGISTRY = """code,name,tier,seat_commune,province_code
ubnd-00004,Bộ phận Một cửa Phường Ba Đình,commune,00004,01
stp-01,Sở Tư pháp Thành phố Hà Nội,province,00004,01
"""
NAMES = {"00004": CommuneInfo("Phường Ba Đình", "01", "Thành phố Hà Nội", "Ba Dinh Ward",
                               "Ha Noi")}


@pytest.fixture
def db(stack: Settings) -> Iterator[str]:
    with fresh_database(stack, "ioc_kpialert") as (_, conninfo):
        with psycopg.connect(conninfo) as conn:
            write_registry(conn, parse_registry(io.StringIO(REGISTRY)), source="test",
                           valid_from=date(2025, 7, 1))
            conn.execute("INSERT INTO kpi_target_values (kpi, province_code, tier, target, "
                         "valid_from) VALUES ('online_share', '01', 'province', 0.6, "
                         "'2025-07-01'), ('online_share', '*', 'commune', 0.99, '2025-07-01')")
            conn.commit()
        yield conninfo


def _received(conninfo: str, agency: str, channels: list[str], at: datetime) -> None:
    with psycopg.connect(conninfo) as conn:
        for i, channel in enumerate(channels):
            conn.execute(
                "INSERT INTO service_events (time, event_id, source_id, department, "
                "commune_code, province_code, dossier_id, procedure_code, agency, channel, "
                "status, due_at, digitised, geo, received_at) VALUES (%s, %s, 'desk', 'pscc',"
                " '00004', '01', %s, '1.001', %s, %s, 'received', %s, true, 'code', now())",
                (at, f"{agency}-{at.timestamp()}-{i}", f"{agency}-{at.timestamp()}-{i}",
                 agency, channel, at + timedelta(days=3)))
        conn.commit()


def test_province_tier_below_target_for_the_month_fires_and_clears(
        db: str, stack: Settings, tmp_path: Path) -> None:
    path = tmp_path / "kpi.yaml"
    path.write_text(RULES, encoding="utf-8")
    rules = load_rules([path])
    assert len(rules.kpi_targets) == 2 and not rules.global_rules().kpi_targets
    now = datetime.now(UTC).replace(microsecond=0)
    _received(db, "stp-01", ["online", "offline", "offline"], now - timedelta(seconds=2))
    _received(db, "ubnd-00004", ["online", "online"], now - timedelta(seconds=2))

    def runner() -> SingletonRules:
        return SingletonRules(db, [KpiTargetRules(stack, rules, NAMES)])

    def active(state: str) -> float:
        return METRICS.get_sample_value("ioc_alerts_active",
                                        {"state": state, "severity": "warning"}) or 0.0

    async def run() -> tuple[int, int, int]:
        holder, other = runner(), runner()
        # the gauge counts every live evaluation step (a WeakSet): earlier tests' steps
        # go first, or a collection in the middle of this test moves the baseline
        gc.collect()
        update_active_gauge()
        before = active("firing")
        fired = await holder.tick(now)
        assert active("firing") == before + 1  # the one evaluation step sets the gauge
        assert await other.tick(now) == 0  # not the lock holder
        _received(db, "stp-01", ["online"] * 3, now - timedelta(seconds=1))  # 4/6 = 66.7 %
        resolved = await holder.tick(now + timedelta(minutes=1), force=True)
        assert active("firing") == before
        again = await holder.tick(now + timedelta(minutes=2), force=True)
        await holder.close()
        await other.close()
        return fired, resolved, again

    fired, resolved, again = asyncio.run(run())
    assert (fired, resolved, again) == (1, 1, 0)
    with psycopg.connect(db) as conn:
        rows = conn.execute("SELECT rule_id, state, province_code, labels, annotations "
                            "FROM alerts").fetchall()
    assert len(rows) == 1
    rule_id, state, province, labels, annotations = rows[0]
    assert (rule_id, state, province) == ("province_tier_online_below_target", "resolved", "01")
    assert labels["tier"] == "province" and labels["kpi"] == "online_share"
    assert annotations["summary_en"] == \
        "Ha Noi: provincial online share 66.7% (target 60%)"  # when it cleared; English
    with psycopg.connect(db) as conn:
        fired_with: Any = conn.execute(
            "SELECT annotations FROM alert_transitions WHERE to_state = 'firing'").fetchone()
    assert fired_with[0]["summary_vi"] == \
        "Thành phố Hà Nội: nộp trực tuyến cấp tỉnh 33.3% (mục tiêu 60%)"


KEEP_FIRING = RULES.replace("        hysteresis: 1\n",
                            "        hysteresis: 1\n        keep_firing_for: 5m\n", 1)


def test_a_new_lock_holder_resolves_when_keep_firing_for_ends(
        db: str, stack: Settings, tmp_path: Path) -> None:
    """The share recovers under one holder (``keep_firing_for`` starts, no transition);
    that holder goes, the next one resolves when the 5 minutes end, not 5 minutes after
    it took over: ``clear_since`` is stored with the tick."""
    path = tmp_path / "kpi.yaml"
    path.write_text(KEEP_FIRING, encoding="utf-8")
    rules = load_rules([path])
    now = datetime.now(UTC).replace(microsecond=0)
    _received(db, "stp-01", ["online", "offline", "offline"], now - timedelta(seconds=2))

    async def run() -> tuple[int, int, int, Any]:
        first = SingletonRules(db, [KpiTargetRules(stack, rules, NAMES)])
        fired = await first.tick(now)
        _received(db, "stp-01", ["online"] * 3, now - timedelta(seconds=1))  # 66.7 %
        clearing = await first.tick(now + timedelta(minutes=1), force=True)
        await first.close()
        with psycopg.connect(db) as conn:
            stored = conn.execute("SELECT clear_since FROM alerts").fetchone()
        second = SingletonRules(db, [KpiTargetRules(stack, rules, NAMES)])
        resolved = await second.tick(now + timedelta(minutes=6), force=True)
        await second.close()
        return fired, clearing, resolved, stored

    fired, clearing, resolved, stored = asyncio.run(run())
    assert (fired, clearing, resolved) == (1, 0, 1)
    assert stored == (now + timedelta(minutes=1),)
    with psycopg.connect(db) as conn:
        rows = conn.execute("SELECT to_state, at FROM alert_transitions"
                            " ORDER BY seq").fetchall()
    assert rows == [("firing", now), ("resolved", now + timedelta(minutes=6))]
