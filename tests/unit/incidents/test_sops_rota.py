"""SOP files and the duty rota: the shipped ones are valid and cover the issue's cases;
every mistake is reported with its file and line, like ``ioc rules check``."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from typer.testing import CliRunner

from alerts.incidents import rota, sops
from alerts.ruleload import load_rules_dir
from ioc.cli import app
from ioccore.settings import ROOT

SOPS = ROOT / "config" / "sops"
ROTA = ROOT / "config" / "duty_rota.yaml"


def _rule_ids() -> set[str]:
    rules = load_rules_dir(ROOT / "config" / "rules")
    return {r.id for r in (*rules, *rules.kpi_targets)}


def test_shipped_sops_are_valid_and_cover_the_required_cases() -> None:
    roster = rota.load(ROTA)
    found, errors = sops.check(sorted(SOPS.glob("*.yaml")), rule_ids=_rule_ids(),
                               departments=set(roster.departments))
    assert errors == []
    by_rule = sops.by_rule(found)
    for rule in ("water_level_alarm_1", "water_level_alarm_2", "water_level_alarm_3",
                 "pm25_1h_unhealthy", "traffic_incident", "feed_silent",
                 "province_tier_online_below_target"):
        assert rule in by_rule, rule
    for sop in found:
        assert sop.title.vi != sop.title.en
        assert all(s.title.vi and s.title.en and s.due >= timedelta(0) for s in sop.steps)


def test_auto_rules_have_an_sop() -> None:
    rules = load_rules_dir(ROOT / "config" / "rules")
    auto = {r.id for r in (*rules, *rules.kpi_targets) if r.incident == "auto"}
    assert "water_level_alarm_3" in auto
    assert auto <= set(sops.by_rule(sops.check(sorted(SOPS.glob("*.yaml")))[0]))


BAD = """\
id: broken
title: {vi: "Hỏng", en: "Broken"}
rules: [water_level_alarm_1, no_such_rule]
steps:
  - id: one
    title: {vi: "Một"}
    department: snnmt
    due: 10 minutes
  - id: one
    title: {vi: "Hai", en: "Two"}
    department: nobody
    due: 5m
    requires: photo
    extra: 1
"""


def test_errors_carry_file_and_line(tmp_path: Path) -> None:
    path = tmp_path / "broken.yaml"
    path.write_text(BAD, encoding="utf-8")
    _, errors = sops.check([path], rule_ids=_rule_ids(), departments={"snnmt"})
    got = {(e.line, e.message.split(":")[0]) for e in errors}
    text = "\n".join(str(e) for e in errors)
    assert (3, "no rule file defines 'no_such_rule'") in got, text
    assert any(e.line == 6 and "English" in e.message for e in errors), text
    assert any(e.line == 8 and "due" in e.message for e in errors), text
    assert any(e.line == 13 and "requires" in e.message for e in errors), text
    assert any(e.line == 9 and "duplicate step id" in e.message for e in errors), text
    assert any(e.line == 11 and "nobody" in e.message for e in errors), text
    assert any(e.line == 14 and "unknown key 'extra'" in e.message for e in errors), text
    assert all(e.file == str(path) for e in errors)


def test_cli_check_prints_file_line_and_fails(tmp_path: Path) -> None:
    path = tmp_path / "broken.yaml"
    path.write_text(BAD, encoding="utf-8")
    result = CliRunner().invoke(app, ["sops", "check", str(path)])
    assert result.exit_code == 1
    assert f"{path}:3: no rule file defines 'no_such_rule'" in result.output
    ok = CliRunner().invoke(app, ["sops", "check"])
    assert ok.exit_code == 0, ok.output
    assert "SUCCESS: SOP flood_alarm_3" in ok.output


def test_a_rule_in_two_sops_is_an_error(tmp_path: Path) -> None:
    for name in ("a", "b"):
        (tmp_path / f"{name}.yaml").write_text(
            f"id: sop_{name}\ntitle: {{vi: x, en: y}}\nrules: [traffic_incident]\n"
            "steps:\n  - {id: s, title: {vi: x, en: y}, department: d, due: 5m}\n",
            encoding="utf-8")
    _, errors = sops.check(sorted(tmp_path.glob("*.yaml")))
    assert [(Path(e.file).name, e.line) for e in errors] == [("b.yaml", 3)]
    assert "already follows SOP sop_a" in errors[0].message


def test_rota_rotates_by_vietnam_week_and_explicit_weeks_win() -> None:
    roster = rota.load(ROTA)
    monday_vn = datetime(2026, 12, 6, 17, 0, tzinfo=UTC)  # Mon 7 Dec 00:00 +07 (W50)
    sunday_vn = monday_vn - timedelta(minutes=1)  # still W49 in Vietnam
    assert rota.week_of(monday_vn) == "2026-W50"
    assert rota.week_of(sunday_vn) == "2026-W49"
    pctt = "pctt"
    assert roster.who(pctt, "duty_officer", monday_vn) == "Trực ban PCTT 3 / Flood duty officer 3"
    officers = roster.departments[pctt].officers
    assert roster.who(pctt, "duty_officer", sunday_vn) == officers[49 % len(officers)]
    assert roster.who(pctt, "head", sunday_vn).startswith("Chánh Văn phòng")
    assert roster.who(pctt, "ioc_leader", sunday_vn) == roster.ioc_leader
    assert roster.who("unknown-dept", "duty_officer", sunday_vn) == roster.ioc_leader
