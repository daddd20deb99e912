"""Rule files: bad files give file:line errors; shipped rules check and pass their tests."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest
from typer.testing import CliRunner

from alerts.errors import RuleFilesError
from alerts.ruleload import check_files, load_rules
from ioc.cli import app
from ioccore.settings import ROOT

RULES = ROOT / "config" / "rules"

BAD = """\
groups:
  - name: aq
    rules:
      - id: pm25_high
        feed: sensor
        metric: pm25
        op: "=="
        threshold: high
        severity: urgent
        for: 10 minutes
        annotations:
          summary:
            vi: "PM2.5 tại {commune} là {valeur}"
      - id: pm25_high
        feed: traffic
        metric: pm25
        op: ">"
        threshold: 55.5
        clear: 60
        severity: warning
        colour: red
        annotations:
          summary: {vi: "a", en: "b"}
      - id: silent
        kind: absence
        by: everything
        severity: info
        annotations:
          summary: {vi: "a", en: "b"}
"""


def test_every_error_is_reported_with_its_line(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(BAD, encoding="utf-8")
    errors = check_files([path])
    found = {(e.line, e.message.split(":")[0] if ":" in e.message else e.message)
             for e in errors}
    lines = sorted({e.line for e in errors if e.line})
    assert all(e.file == str(path) for e in errors)
    text = "\n".join(f"{e.line}: {e.message}" for e in errors)
    assert "7: rule pm25_high.op: '==' is not one of" in text
    assert "8: rule pm25_high.threshold: expected a number" in text
    assert "9: rule pm25_high.severity: 'urgent' is not one of" in text
    assert "10: rule pm25_high.for: not a duration" in text
    assert "13: rule pm25_high.annotations.summary.vi: unknown template field {valeur}" in text
    assert "13: rule pm25_high.annotations.summary: missing the English text (en)" in text
    assert "16: rule pm25_high.metric: traffic metrics are named traffic.<name>" in text
    assert "19: rule pm25_high.clear: 60.0 is on the wrong side" in text
    assert "21: rule pm25_high: unknown key 'colour'" in text
    assert "26: rule silent.by: 'everything' is not one of" in text
    assert "24: rule silent: missing key 'silent_for'" in text
    assert found and lines[0] >= 7


def test_yaml_syntax_error_has_a_line(tmp_path: Path) -> None:
    path = tmp_path / "broken.yaml"
    path.write_text("groups:\n  - name: x\n    rules: [\n", encoding="utf-8")
    (error,) = check_files([path])
    assert error.file == str(path) and error.line == 4 and "YAML" in error.message


def test_duplicate_ids_across_files(tmp_path: Path) -> None:
    body = textwrap.dedent("""\
        groups:
          - name: g
            rules:
              - id: same
                kind: absence
                by: source
                silent_for: 15m
                severity: info
                annotations: {summary: {vi: a, en: b}}
        """)
    (tmp_path / "a.yaml").write_text(body, encoding="utf-8")
    (tmp_path / "b.yaml").write_text(body, encoding="utf-8")
    with pytest.raises(RuleFilesError) as caught:
        load_rules([tmp_path / "a.yaml", tmp_path / "b.yaml"])
    (error,) = caught.value.errors
    assert error.file.endswith("b.yaml") and error.line == 4
    assert "already defined at" in error.message


def test_shipped_rules_are_valid() -> None:
    files = sorted(RULES.glob("*.yaml"))
    assert len(files) >= 5
    assert check_files(files) == []
    rules = load_rules(files)
    assert {"pm25_1h_unhealthy", "water_level_alarm_3", "traffic_congestion",
            "service_on_time_share_low", "source_silent"} <= {r.id for r in rules}


def test_cli_check_exits_non_zero_with_file_and_line(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(BAD, encoding="utf-8")
    result = CliRunner().invoke(app, ["rules", "check", str(path)])
    assert result.exit_code == 1
    assert f"{path}:7: rule pm25_high.op" in result.output


def test_cli_rules_test_on_shipped_tests_passes() -> None:
    files = [str(p) for p in sorted((RULES / "tests").glob("*_test.yaml"))]
    result = CliRunner().invoke(app, ["rules", "test", *files])
    assert result.exit_code == 0, result.output
    assert result.output.count("SUCCESS") == len(files)


def test_cli_rules_test_reports_a_failure(tmp_path: Path) -> None:
    (tmp_path / "rules.yaml").write_text((RULES / "traffic.yaml").read_text("utf-8"), "utf-8")
    (tmp_path / "t.yaml").write_text(textwrap.dedent("""\
        rule_files: [rules.yaml]
        tests:
          - name: wrong expectation
            input_series:
              - { commune: "20242", metric: traffic.incident, counts: true, values: "1" }
            alert_rule_test:
              - eval_time: 0m
                alertname: traffic_incident
                exp_alerts: []
        """), "utf-8")
    result = CliRunner().invoke(app, ["rules", "test", str(tmp_path / "t.yaml")])
    assert result.exit_code == 1
    assert "FAILED" in result.output and "wrong expectation" in result.output


SOURCE_SCOPE = """\
groups:
  - name: g
    rules:
      - id: per_source_pm25
        feed: sensor
        metric: pm25
        scope: source
        aggregate: avg
        window: 5m
        op: ">"
        threshold: 100
        severity: warning
        annotations:
          summary: { vi: "x", en: "x" }
"""


def test_source_scope_threshold_rules_are_refused_with_a_reason(tmp_path: Path) -> None:
    path = tmp_path / "source.yaml"
    path.write_text(SOURCE_SCOPE, encoding="utf-8")
    problems = [str(p) for p in check_files([path])]
    assert len(problems) == 1
    assert problems[0].startswith(f"{path}:7: rule per_source_pm25.scope:")
    assert "'source' is not supported" in problems[0] and "by: source" in problems[0]
    result = CliRunner().invoke(app, ["rules", "check", str(path)])
    assert result.exit_code == 1
