"""The pipeline's Prometheus alerting rules: valid, unit-tested with Debian's promtool,
loaded by both Prometheus configurations, and complete (severity, summary, description,
a promtool test per alert)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from ioccore.settings import ROOT

PROMETHEUS = ROOT / "config" / "prometheus"
RULES = sorted((PROMETHEUS / "rules").glob("*.yml"))
TESTS = sorted((PROMETHEUS / "tests").glob("*_test.yml"))
SEVERITIES = {"critical", "warning", "info"}


def _promtool() -> str:
    # The stack installs Debian's prometheus package (promtool included); CI has it, so
    # a missing promtool is a failure, never a skip.
    path = shutil.which("promtool") or "/usr/bin/promtool"
    assert Path(path).exists(), "promtool not installed: run `ioc stack up` (Debian prometheus)"
    return path


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([_promtool(), *args], capture_output=True, text=True, check=False,
                          cwd=ROOT, timeout=120)


def _alerts() -> list[dict[str, object]]:
    found: list[dict[str, object]] = []
    for path in RULES:
        for group in yaml.safe_load(path.read_text(encoding="utf-8"))["groups"]:
            found.extend(r for r in group["rules"] if "alert" in r)
    return found


def test_rule_files_exist() -> None:
    assert any(p.name == "pipeline.yml" for p in RULES)
    assert TESTS


@pytest.mark.parametrize("path", RULES, ids=lambda p: p.name)
def test_promtool_check_rules(path: Path) -> None:
    result = _run("check", "rules", str(path))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


@pytest.mark.parametrize("path", TESTS, ids=lambda p: p.name)
def test_promtool_test_rules(path: Path) -> None:
    result = _run("test", "rules", str(path))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout
    assert "FAILED" not in result.stdout


@pytest.mark.parametrize("config", ["prometheus.yml", "prometheus.compose.yml"])
def test_prometheus_configs_load_the_rules(config: str, tmp_path: Path) -> None:
    """Both scrape configurations load rules/*.yml (promtool check config reads them).

    Compose's reads the metrics token from a Docker secret; promtool insists that the
    file exists, so the check runs on a copy (beside the rules) naming a token file
    made here."""
    text = (PROMETHEUS / config).read_text(encoding="utf-8")
    token = tmp_path / "metrics_token"
    token.write_text("test-token\n")
    copy = tmp_path / config
    copy.write_text(text.replace("/run/secrets/metrics_token", str(token)), encoding="utf-8")
    shutil.copytree(PROMETHEUS / "rules", tmp_path / "rules")
    result = _run("check", "config", str(copy))
    assert result.returncode == 0, result.stdout + result.stderr
    data = yaml.safe_load(text)
    assert "rules/*.yml" in data["rule_files"]
    for rule_file in RULES:
        assert f"rules/{rule_file.name}" in result.stdout + result.stderr


def test_every_alert_has_severity_annotations_and_a_unit_test() -> None:
    tested: set[str] = set()
    for path in TESTS:
        for case in yaml.safe_load(path.read_text(encoding="utf-8"))["tests"]:
            for check in case.get("alert_rule_test", []):
                if check.get("exp_alerts"):
                    tested.add(check["alertname"])
    alerts = _alerts()
    assert len(alerts) >= 6
    names = [a["alert"] for a in alerts]
    assert len(names) == len(set(names)), "duplicate alert names"
    for rule in alerts:
        labels = rule.get("labels") or {}
        annotations = rule.get("annotations") or {}
        assert isinstance(labels, dict) and isinstance(annotations, dict)
        assert labels.get("severity") in SEVERITIES, rule["alert"]
        assert annotations.get("summary") and annotations.get("description"), rule["alert"]
        assert rule["alert"] in tested, f"{rule['alert']} has no firing promtool test"
