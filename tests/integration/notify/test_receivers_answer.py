"""Every receiver of the shipped Alertmanager configuration answers on the real stack.

Webhooks: a real ``ioc api`` (uvicorn, its own migrated database) gets a version-4
payload at each webhook URL of the shipped configuration, with that receiver's token,
and answers 2xx, recording one receipt each; wrong tokens, another receiver's token, a
mismatched or malformed payload are refused, and wrong tokens are throttled per address
while the right one never is. E-mail: the stack's SMTP server (Mailpit,
``mail.smarthost``) accepts a message for every address of the shipped configuration,
and its HTTP API shows it.
"""

from __future__ import annotations

import smtplib
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from iocdev.mail_episode import api_process
from iocdev.mailbox import MailpitApi
from iocdev.settings import DevSettings
from iocdev.stack.prometheus import render_alertmanager

from alerts.receiver_tokens import ensure_tokens, read_token, webhook_receivers
from ioccore.settings import ROOT

pytestmark = [pytest.mark.integration]

SHIPPED = ROOT / "config" / "alertmanager" / "alertmanager.yml"


@pytest.fixture
def hooked(stack: DevSettings, migrated_db: tuple[str, str], tmp_path: Path
           ) -> Iterator[tuple[str, Path, dict[str, Any]]]:
    """(API base URL, tokens folder, the shipped config rendered onto that API)."""
    tokens = tmp_path / "tokens"
    with api_process(stack, migrated_db[0], tmp_path,
                     {"IOC__ALERTS__RECEIVER_TOKENS_DIR": str(tokens),
                      "IOC__API__UNAUTHENTICATED_PER_MINUTE": "4"}) as api:
        config = render_alertmanager(SHIPPED, stack, api_url=api, tokens_dir=tokens)
        ensure_tokens(tokens, sorted({w.receiver for w in webhook_receivers(config)}))
        yield api, tokens, config


def payload(receiver: str, status: str = "firing") -> dict[str, Any]:
    now = datetime.now(UTC).isoformat()
    labels = {"alertname": "pm25_1h_unhealthy", "province_code": "01",
              "department": "snnmt", "severity": "warning"}
    return {
        "version": "4", "receiver": receiver, "status": status,
        "groupKey": '{}/{department="snnmt"}:{alertname="pm25_1h_unhealthy"}',
        "truncatedAlerts": 0, "groupLabels": labels, "commonLabels": labels,
        "commonAnnotations": {}, "externalURL": "http://127.0.0.1:19093",
        "alerts": [{"status": status, "labels": {**labels, "commune_code": "00004"},
                    "annotations": {"fingerprint": "abc123", "summary_vi": "PM2.5"},
                    "startsAt": now, "endsAt": "0001-01-01T00:00:00Z",
                    "generatorURL": "http://x/v1/alerts/abc123", "fingerprint": "f0"}],
    }


def bearer(tokens: Path, receiver: str) -> dict[str, str]:
    token = read_token(tokens, receiver)
    assert token is not None
    return {"Authorization": f"Bearer {token.decode()}"}


def test_every_webhook_of_the_shipped_config_answers_2xx(
        hooked: tuple[str, Path, dict[str, Any]], migrated_db: tuple[str, str]) -> None:
    import psycopg

    _, tokens, config = hooked
    hooks = webhook_receivers(config)
    assert len(hooks) == 7  # the duty desk and six departments
    for hook in hooks:
        r = httpx.post(hook.url, json=payload(hook.receiver),
                       headers=bearer(tokens, hook.receiver), timeout=10)
        assert 200 <= r.status_code < 300, (hook.url, r.status_code, r.text)
        assert r.json()["alerts"] == 1
    with psycopg.connect(migrated_db[1]) as conn:
        rows = conn.execute("SELECT receiver, department, status, alertname, province_code,"
                            " alerts->0->>'fingerprint' FROM alertmanager_receipts"
                            " ORDER BY id").fetchall()
    assert [r[0] for r in rows] == [h.receiver for h in hooks]
    assert {r[1:] for r in rows} == {("snnmt", "firing", "pm25_1h_unhealthy", "01", "abc123")}


def test_the_webhook_refuses_what_it_must(hooked: tuple[str, Path, dict[str, Any]],
                                          migrated_db: tuple[str, str]) -> None:
    import psycopg

    api, tokens, _ = hooked
    url = f"{api}/v1/alertmanager/webhook/dept-snnmt"
    body = payload("dept-snnmt")
    assert httpx.post(url, json=body, timeout=10).status_code == 401
    assert httpx.post(url, json=body, headers={"Authorization": "Bearer nope"},
                      timeout=10).status_code == 401
    # a department's token is its own: it cannot record notifications as another
    assert httpx.post(url, json=body, headers=bearer(tokens, "dept-sxd"),
                      timeout=10).status_code == 401
    assert httpx.post(f"{api}/v1/alertmanager/webhook/no-such", json=payload("no-such"),
                      headers=bearer(tokens, "dept-sxd"), timeout=10).status_code == 401
    # four wrong tokens spent the address's keyless budget (4 a minute here) ...
    r = httpx.post(url, json=body, headers={"Authorization": "Bearer nope"}, timeout=10)
    assert (r.status_code, r.json()["error"]) == (429, "too_many_unauthenticated")
    own = bearer(tokens, "dept-snnmt")
    r = httpx.post(url, json=payload("dept-sxd"), headers=own, timeout=10)
    assert (r.status_code, r.json()["error"]) == (400, "receiver_mismatch")
    r = httpx.post(url, content=b"{not json", headers=own, timeout=10)
    assert (r.status_code, r.json()["error"]) == (400, "invalid_notification")
    r = httpx.post(url, json={**body, "version": "3"}, headers=own, timeout=10)
    assert r.status_code == 400
    big = {**body, "alerts": body["alerts"] * 2000}
    assert httpx.post(url, json=big, headers=own, timeout=10).status_code == 413
    with psycopg.connect(migrated_db[1]) as conn:
        n = conn.execute("SELECT count(*) FROM alertmanager_receipts").fetchone()
    assert n == (0,)
    # ... but a right token is never throttled: Alertmanager cannot be locked out
    assert httpx.post(url, json=body, headers=own, timeout=10).status_code == 200


def test_every_mail_address_of_the_shipped_config_is_accepted_by_the_smtp_server(
        stack: DevSettings) -> None:
    config = yaml.safe_load(SHIPPED.read_text())
    addresses = [e["to"] for r in config["receivers"] for e in r.get("email_configs", [])]
    assert len(addresses) == 7  # the duty desk and six departments
    tag = uuid.uuid4().hex[:8]
    host, port = stack.smarthost().rsplit(":", 1)
    with smtplib.SMTP(host, int(port), timeout=10) as smtp:
        for address in addresses:
            msg = EmailMessage()
            msg["From"], msg["To"] = stack.mail.from_address, address
            msg["Subject"] = f"ioc receiver check {tag}"
            msg.set_content("Kiểm tra / check")
            refused = smtp.send_message(msg)
            assert refused == {}
    inbox = MailpitApi(f"http://{stack.stack.host}:{stack.mail.web_port}")
    got = {to for m in inbox.messages() if m.subject == f"ioc receiver check {tag}"
           for to in m.to}
    assert got == set(addresses)
