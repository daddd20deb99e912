"""The shipped routing tree, checked by Alertmanager's own tool: ``amtool check-config``
on every shipped and rendered file and ``amtool config routes test`` per case (amtool
comes with Debian's prometheus-alertmanager, which ``ioc stack up`` installs)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
import yaml
from iocdev.settings import get_dev_settings
from iocdev.stack.prometheus import render_alertmanager

from alerts.ruleload import load_rules_dir
from ioccore.settings import ROOT

AMTOOL = shutil.which("amtool") or "/usr/bin/amtool"
CONFIGS = [ROOT / "config" / "alertmanager" / name
           for name in ("alertmanager.yml", "alertmanager.compose.yml")]


def amtool(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([AMTOOL, *args], capture_output=True, text=True, check=False,
                          timeout=60)


def routes(config: Path, **labels: str) -> list[str]:
    """The receivers an alert with ``labels`` goes to, in routing-tree order."""
    result = amtool("config", "routes", "test", f"--config.file={config}",
                    *(f"{k}={v}" for k, v in labels.items()))
    assert result.returncode == 0, result.stderr
    return result.stdout.strip().split(",")


@pytest.mark.parametrize("config", CONFIGS, ids=lambda p: p.name)
def test_shipped_configs_pass_amtool_check_config(config: Path) -> None:
    result = amtool("check-config", str(config))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "7 receivers" in result.stdout


def test_the_config_the_stack_runs_passes_amtool_check_config(tmp_path: Path) -> None:
    config = render_alertmanager(CONFIGS[0], get_dev_settings(), tokens_dir=tmp_path)
    path = tmp_path / "alertmanager.yml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    result = amtool("check-config", str(path))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "1 templates" in result.stdout


CASES = [
    # (labels, receivers): owner first, the duty desk too when critical or escalated
    ({"department": "snnmt", "severity": "warning"}, ["dept-snnmt"]),
    ({"department": "snnmt", "severity": "info"}, ["dept-snnmt"]),
    ({"department": "snnmt", "severity": "critical"}, ["ioc-duty-desk", "dept-snnmt"]),
    ({"department": "pctt", "severity": "warning", "escalated": "true"},
     ["ioc-duty-desk", "dept-pctt"]),
    ({"department": "pctt", "severity": "critical", "escalated": "true"},
     ["ioc-duty-desk", "dept-pctt"]),  # once, not once per reason
    ({"department": "sxd", "severity": "warning"}, ["dept-sxd"]),
    ({"department": "ttphvhcc", "severity": "warning"}, ["dept-ttphvhcc"]),
    ({"department": "ioc-ops", "severity": "critical"}, ["ioc-duty-desk", "dept-ioc-ops"]),
    # nobody owns it (or an owner without a route, e.g. a source's publisher): the desk
    ({"severity": "warning"}, ["ioc-duty-desk"]),
    ({"department": "01-nnmt", "severity": "warning"}, ["ioc-duty-desk"]),
    ({"severity": "critical"}, ["ioc-duty-desk"]),
    # a look-alike is not the owner
    ({"department": "snnmt-x", "severity": "warning"}, ["ioc-duty-desk"]),
]


@pytest.mark.parametrize("config", CONFIGS, ids=lambda p: p.name)
@pytest.mark.parametrize(("labels", "receivers"), CASES,
                         ids=[",".join(f"{k}={v}" for k, v in c[0].items()) for c in CASES])
def test_routing_tree(config: Path, labels: dict[str, str], receivers: list[str]) -> None:
    assert routes(config, alertname="any_rule", province_code="01", **labels) == receivers


def test_verify_receivers_fails_on_a_wrong_answer() -> None:
    """The check can fail: amtool's own verification refuses a wrong receiver list."""
    result = amtool("config", "routes", "test", f"--config.file={CONFIGS[0]}",
                    "--verify.receivers=dept-sxd", "department=snnmt", "severity=warning")
    assert result.returncode != 0


def test_every_shipped_rule_reaches_its_owner_and_critical_ones_the_desk() -> None:
    for rule in load_rules_dir(ROOT / "config" / "rules").rules:
        labels = {"alertname": rule.id, "severity": rule.severity, **rule.labels}
        expected = [f"dept-{labels['department']}"]
        if rule.severity == "critical":
            expected.insert(0, "ioc-duty-desk")
        assert routes(CONFIGS[0], **labels) == expected, rule.id
