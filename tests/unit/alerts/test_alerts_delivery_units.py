"""Silences, notification planning, payloads and webhook signatures (no I/O)."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

import orjson
import pytest

from alerts import alertmanager, webhook
from alerts.model import Transition
from alerts.notify import Receiver, plan
from alerts.outbox import backoff_s
from alerts.series import expand
from alerts.silences import Matcher, Silence, silenced_by
from tests.unit.alerts.alerts_helpers import minute

LABELS = {"alertname": "pm25_high", "severity": "warning", "commune_code": "00004",
          "province_code": "01"}


def transition(to: str = "firing", frm: str = "pending", kind: str = "state") -> Transition:
    return Transition(fingerprint="fp1", seq=2, rule_id="pm25_high", kind=kind,  # type: ignore[arg-type]
                      from_state=frm, to_state=to, at=minute(10), severity="warning",  # type: ignore[arg-type]
                      labels=LABELS, annotations={"summary_en": "x"}, value=80.0,
                      since=minute(10))


def silence(*matchers: str, start: int = 0, end: int = 60) -> Silence:
    return Silence(1, tuple(Matcher.parse(m) for m in matchers), minute(start), minute(end),
                   "op", "maintenance")


def test_matchers() -> None:
    assert Matcher.parse('commune_code="00004"').matches(LABELS)
    assert not Matcher.parse("severity!=warning").matches(LABELS)
    assert Matcher.parse('alertname=~"pm25_.*"').matches(LABELS)
    assert not Matcher.parse('alertname=~"pm25"').matches(LABELS)  # anchored
    assert Matcher.parse("province_code!~0[2-9]").matches(LABELS)
    with pytest.raises(ValueError):
        Matcher.parse("alertname=~(")


def test_silence_window() -> None:
    s = silence('commune_code="00004"', start=5, end=15)
    assert silenced_by(LABELS, [s], minute(10)) is s
    assert silenced_by(LABELS, [s], minute(15)) is None
    assert silenced_by({**LABELS, "commune_code": "00070"}, [s], minute(10)) is None


def test_plan_receivers_and_silences() -> None:
    both: tuple[Receiver, Receiver] = ("alertmanager", "webhook")
    assert [n.receiver for n in plan(transition(), both, [], generator_url="")] == list(both)
    assert plan(transition("pending", "inactive"), both, [], generator_url="") == []
    s = [silence("alertname=pm25_high")]
    assert plan(transition(), both, s, generator_url="") == []  # silenced: nothing sent
    assert plan(transition("firing", "firing", "renotify"), both, s, generator_url="") == []
    resolved = plan(transition("resolved", "firing"), both, s, generator_url="")
    assert [n.receiver for n in resolved] == ["alertmanager"]  # AM must learn endsAt
    acked = plan(transition("acknowledged", "firing"), both, [], generator_url="")
    assert [n.receiver for n in acked] == ["webhook"]


def test_alertmanager_payloads() -> None:
    (firing,) = alertmanager.alerts_for(transition(), "http://ioc/v1/alerts")
    assert firing["labels"]["alertname"] == "pm25_high" and "endsAt" not in firing
    assert firing["generatorURL"] == "http://ioc/v1/alerts/fp1"
    (resolved,) = alertmanager.alerts_for(transition("resolved", "firing"), "")
    assert resolved["endsAt"] == minute(10).isoformat()
    esc = replace(transition("firing", "firing", "escalate"),
                  labels={**LABELS, "severity": "critical", "escalated": "true"},
                  replaces=LABELS)
    old, new = alertmanager.alerts_for(esc, "")
    assert old["labels"]["severity"] == "warning" and old["endsAt"]
    assert new["labels"]["severity"] == "critical" and "endsAt" not in new


def test_webhook_signature_and_replay_window() -> None:
    body = orjson.dumps(webhook.event_for(transition(), ""))
    sig = webhook.sign(b"s3cret", body, 1_750_000_000)
    assert sig.startswith("sha256=") and len(sig) == 71
    assert webhook.verify(b"s3cret", body, "1750000000", sig, now=1_750_000_100)
    assert not webhook.verify(b"other", body, "1750000000", sig, now=1_750_000_100)
    assert not webhook.verify(b"s3cret", body + b" ", "1750000000", sig, now=1_750_000_100)
    assert not webhook.verify(b"s3cret", body, "1750000000", sig, now=1_750_000_000 + 301)
    assert not webhook.verify(b"s3cret", body, "1750000001", sig, now=1_750_000_100)


def test_backoff_is_exponential_and_capped() -> None:
    delays = [backoff_s(n, 300) for n in range(1, 12)]
    assert 0.9 <= delays[0] <= 1.1 and 1.8 <= delays[1] <= 2.2
    assert max(delays) <= 330 and delays[-1] >= 270


def test_series_notation() -> None:
    assert expand("10 12 80x2 _ 1+2x2 _x2") == [10, 12, 80, 80, 80, None, 1, 3, 5, None, None]
    with pytest.raises(ValueError):
        expand("ten")
    assert timedelta(0) == timedelta(0)


def test_webhook_signatures_carry_key_ids_and_overlap_during_rotation() -> None:
    body = b'{"x": 1}'
    header = webhook.signature_header([("k2", b"new"), ("k1", b"old")], body, 1_750_000_000)
    assert header.startswith("keyid=k2,sha256=") and ";keyid=k1,sha256=" in header
    for held in ({"k1": b"old"}, {"k2": b"new"}, {"k1": b"old", "k2": b"new"}):
        assert webhook.verify(held, body, "1750000000", header, now=1_750_000_010)
    assert not webhook.verify({"k1": b"new"}, body, "1750000000", header, now=1_750_000_010)
    assert not webhook.verify({"k3": b"other"}, body, "1750000000", header, now=1_750_000_010)


def test_webhook_without_secret_is_refused() -> None:
    import pytest

    with pytest.raises(ValueError, match="secret"):
        webhook.WebhookClient("http://127.0.0.1:9/hook", b"")
