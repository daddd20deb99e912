"""KPI target rules: loading (with file:line errors), kept out of the window evaluators'
subsets, and the pure evaluation (margin, hysteresis, minimum base, ``for``, a scope
without a reading resolving)."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from pathlib import Path

import pytest

from alerts.errors import RuleFilesError
from alerts.kpi_target_evaluator import KpiTargetEvaluator, TargetReading
from alerts.model import CommuneInfo, Transition
from alerts.ruleload import KPI_IDS, load_rules
from ioccore import kpis
from tests.support.clock import T0

RULE = """
groups:
  - name: kpi
    rules:
      - id: online_below_target
        kind: kpi_target
        kpi: online_share
        tier: province
        margin: 5
        hysteresis: 2
        min_denominator: 10
        for: 1h
        severity: warning
        annotations:
          summary: { vi: "{province} {kpi} {tier} {period} {value:.1f} < {threshold}",
                     en: "{province_en} {value:.1f} < {threshold}" }
"""
P = date(2026, 11, 1)


def test_the_rule_kind_loads_apart_from_the_window_rules(tmp_path: Path) -> None:
    rules = load_rules([_write(tmp_path, RULE)])
    (rule,) = rules.kpi_targets
    assert (rule.kpi, rule.scope, rule.tier, rule.period) == (
        "online_share", "province", "province", "month")
    assert (rule.margin, rule.hysteresis, rule.min_denominator) == (5.0, 2.0, 10)
    assert len(rules) == 0 and rules.metrics() == set()
    assert not rules.partition_rules().kpi_targets and not rules.global_rules().kpi_targets
    assert KPI_IDS == kpis.KPI_IDS


def test_bad_kpi_target_rules_are_reported(tmp_path: Path) -> None:
    bad = RULE.replace("kpi: online_share", "kpi: happiness").replace(
        "tier: province", "tier: district").replace("margin: 5", "margin: 500")
    with pytest.raises(RuleFilesError) as err:
        load_rules([_write(tmp_path, bad)])
    text = str(err.value)
    assert "happiness" in text and "district" in text and "margin" in text


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "kpi.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def _reading(value: float | None, target: float | None = 60.0, n: int = 50) -> TargetReading:
    return TargetReading({"province_code": "01"}, value, target, n, P)


def test_margin_hysteresis_base_and_for(tmp_path: Path) -> None:
    rules = load_rules([_write(tmp_path, RULE)])
    ev = KpiTargetEvaluator(rules.kpi_targets, communes={
        "00004": CommuneInfo("Phường Ba Đình", "01", "Thành phố Hà Nội",
                             province_name_en="Ha Noi")})
    rid = "online_below_target"

    def evaluated(readings: list[TargetReading], at: datetime) -> list[Transition]:
        plan = ev.evaluate({rid: readings}, at)
        ev.commit(plan)  # "stored"
        return plan.transitions

    def states(value: float | None, at: datetime, **kw: object) -> list[str]:
        return [t.to_state for t in evaluated([_reading(value, **kw)], at)]  # type: ignore[arg-type]

    assert states(56.0, T0) == []  # above target - margin (55)
    assert states(40.0, T0, n=9) == []  # too few dossiers
    assert states(40.0, T0, target=None) == []  # no target set
    assert states(54.0, T0) == ["pending"]
    assert states(54.0, T0 + timedelta(minutes=30)) == []
    assert states(56.5, T0 + timedelta(minutes=61)) == ["firing"]  # below 55 + 2: still on
    (alert,) = ev.alerts.values()
    assert alert.labels["province_code"] == "01" and alert.labels["tier"] == "province"
    assert alert.annotations["summary_vi"] == \
        "Thành phố Hà Nội online_share province 2026-11-01 56.5 < 55"
    assert alert.annotations["summary_en"] == "Ha Noi 56.5 < 55"  # English, not Vietnamese
    assert states(57.0, T0 + timedelta(minutes=62)) == ["resolved"]  # back at 55 + 2
    assert states(50.0, T0 + timedelta(minutes=63)) == ["pending"]
    assert [t.to_state for t in evaluated([], T0 + timedelta(minutes=64))] == [
        "inactive"]  # a new period without dossiers: no reading
