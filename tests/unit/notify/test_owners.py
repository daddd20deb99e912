"""Every alert carries its owner and a console link, and every shipped owner has a route.

Pure: rule files, payload builders, the shipped Alertmanager configuration as YAML and
the receiver token files. Routing itself is proven by amtool (test_routing.py) and by
mail in the inbox (tests/integration/notify)."""

from __future__ import annotations

import stat
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml
from iocdev.settings import get_dev_settings
from iocdev.stack.prometheus import render_alertmanager

from alerts.alertmanager import active_alert, alerts_for, console_url
from alerts.model import State, Transition
from alerts.receiver_tokens import ensure_tokens, read_token, token_matches, webhook_receivers
from alerts.ruleload import check_files, load_rules, load_rules_dir
from ioccore.settings import ROOT

AM_CONFIG = ROOT / "config" / "alertmanager" / "alertmanager.yml"
AM_COMPOSE = ROOT / "config" / "alertmanager" / "alertmanager.compose.yml"
T = datetime(2026, 3, 1, 8, 0, tzinfo=UTC)

RULE = """groups:
  - name: g
    rules:
      - id: pm25_owned
        feed: sensor
        metric: pm25
        aggregate: avg
        window: 1m
        op: ">"
        threshold: 100
        clear: 50
        severity: warning
        owner: {owner}
        labels: {{ domain: environment }}
        annotations:
          summary: {{ vi: "PM2.5 {{value}}", en: "PM2.5 {{value}}" }}
"""


def _route_matchers(config: dict[str, Any]) -> dict[str, str]:
    """department code -> receiver of the shipped owner routes."""
    out: dict[str, str] = {}
    for route in config["route"]["routes"]:
        for m in route.get("matchers", []):
            if m.startswith('department="'):
                out[m.split('"')[1]] = route["receiver"]
    return out


def test_owner_becomes_the_department_label(tmp_path: Path) -> None:
    path = tmp_path / "r.yaml"
    path.write_text(RULE.format(owner="snnmt"))
    (rule,) = load_rules([path]).rules
    assert rule.labels == {"domain": "environment", "department": "snnmt"}


@pytest.mark.parametrize("owner", ['"Sở TNMT"', "-x", '"a/b"', "x" * 64])
def test_an_owner_that_is_no_department_code_is_refused_with_its_line(
        tmp_path: Path, owner: str) -> None:
    path = tmp_path / "r.yaml"
    path.write_text(RULE.format(owner=owner))
    errors = check_files([path])
    assert [(e.line, "owner" in e.message) for e in errors] == [(13, True)], errors


def test_every_shipped_rule_has_an_owner_with_a_route_of_its_own() -> None:
    rules = load_rules_dir(ROOT / "config" / "rules").rules
    routes = _route_matchers(yaml.safe_load(AM_CONFIG.read_text()))
    assert rules
    for rule in rules:
        owner = rule.labels.get("department")
        assert owner, f"{rule.id} has no owner"
        assert routes.get(owner) == f"dept-{owner}", (rule.id, owner)


def test_the_compose_config_routes_exactly_like_the_local_one() -> None:
    local, compose = (yaml.safe_load(p.read_text()) for p in (AM_CONFIG, AM_COMPOSE))
    assert local["route"] == compose["route"]
    assert local["templates"] == compose["templates"]

    def shape(config: dict[str, Any]) -> list[Any]:
        return [(r["name"], [e["to"] for e in r.get("email_configs", [])],
                 [w["url"].rsplit("/", 1)[1] for w in r.get("webhook_configs", [])])
                for r in config["receivers"]]
    assert shape(local) == shape(compose)
    # the department's webhook is authenticated: every one names its receiver's token
    for config in (local, compose):
        for hook in webhook_receivers(config):
            assert hook.credentials_file is not None
            assert hook.credentials_file.endswith(f"/{hook.receiver}.token")
            assert hook.url.endswith(f"/v1/alertmanager/webhook/{hook.receiver}")


def test_rendered_config_has_absolute_paths_and_the_settings_smarthost(tmp_path: Path) -> None:
    settings = get_dev_settings()
    config = render_alertmanager(AM_CONFIG, settings, api_url="http://127.0.0.1:1/",
                                 smarthost="relay.example.vn:587", tokens_dir=tmp_path)
    assert config["global"]["smtp_smarthost"] == "relay.example.vn:587"
    assert config["global"]["smtp_from"] == settings.mail.from_address
    assert all(Path(t).is_absolute() and Path(t).parent.is_dir() for t in config["templates"])
    for hook in webhook_receivers(config):
        assert hook.url == f"http://127.0.0.1:1/v1/alertmanager/webhook/{hook.receiver}"
        assert hook.credentials_file == str(tmp_path / f"{hook.receiver}.token")
    assert config["route"] == yaml.safe_load(AM_CONFIG.read_text())["route"]


def _transition(to: State) -> Transition:
    return Transition(fingerprint="fp1", seq=1, rule_id="r", kind="state",
                      from_state="pending" if to == "firing" else "firing", to_state=to,
                      at=T, severity="warning",
                      labels={"alertname": "r", "severity": "warning", "department": "snnmt",
                              "province_code": "01", "commune_code": "00004"},
                      annotations={"summary_vi": "x", "summary_en": "x"}, since=T)


def test_every_alertmanager_alert_links_to_the_console() -> None:
    base = "https://ioc.example.vn/v1/alerts"
    assert console_url(base, "fp1") == "https://ioc.example.vn/console/?alert=fp1"
    link = "https://ioc.example.vn/console/?rule=r&commune=00004&alert=fp1"
    states: tuple[State, ...] = ("firing", "resolved")
    for to in states:
        (alert,) = alerts_for(_transition(to), base)
        assert alert["annotations"]["console_url"] == link  # the board's own filters
        assert alert["labels"]["department"] == "snnmt"
    again = active_alert("fp1", {"alertname": "r", "province_code": "01"}, {}, T, base)
    assert again["annotations"]["console_url"].endswith("/console/?rule=r&province=01&alert=fp1")


def test_an_open_alert_starts_when_posted_and_says_since_when_in_vietnam_time() -> None:
    """Alertmanager skips group_wait for alerts whose startsAt is older than it, so an
    open alert is posted with the posting time; the episode's start is an annotation."""
    posted = T + timedelta(minutes=30)
    (firing,) = alerts_for(_transition("firing"), "", now=posted)
    assert datetime.fromisoformat(firing["startsAt"]) == posted
    assert firing["annotations"]["since"] == T.isoformat()
    assert firing["annotations"]["since_vn"] == "15:00 01/03/2026"  # 08:00 UTC
    assert "endsAt" not in firing
    (resolved,) = alerts_for(_transition("resolved"), "", now=posted)
    assert (resolved["startsAt"], resolved["endsAt"]) == (T.isoformat(), T.isoformat())
    assert resolved["annotations"]["ended_vn"] == "15:00 01/03/2026"
    again = active_alert("fp1", {"alertname": "r"}, {}, T, "", now=posted)
    assert datetime.fromisoformat(again["startsAt"]) == posted
    # a start in the future (a skewed source clock) is never moved earlier
    (ahead,) = alerts_for(_transition("firing"), "", now=T - timedelta(minutes=1))
    assert datetime.fromisoformat(ahead["startsAt"]) == T


def test_receiver_tokens_are_private_kept_and_compared(tmp_path: Path) -> None:
    made = ensure_tokens(tmp_path / "t", ["dept-a", "dept-b"])
    assert made == ["dept-a", "dept-b"]
    token = read_token(tmp_path / "t", "dept-a")
    assert token is not None and len(token) >= 40
    assert stat.S_IMODE((tmp_path / "t" / "dept-a.token").stat().st_mode) == 0o600
    assert ensure_tokens(tmp_path / "t", ["dept-a"]) == []  # kept, not rotated
    assert read_token(tmp_path / "t", "dept-a") == token
    assert token_matches(tmp_path / "t", "dept-a", token.decode())
    assert not token_matches(tmp_path / "t", "dept-b", token.decode())  # another's token
    assert not token_matches(tmp_path / "t", "dept-c", token.decode())  # no such receiver
    assert not token_matches(tmp_path / "t", "../t/dept-a", token.decode())
    with pytest.raises(ValueError):
        ensure_tokens(tmp_path / "t", ["../escape"])
