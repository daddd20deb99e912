"""A PM2.5 episode from readings to the owner's inbox, on real processes.

One run: a private Mailpit and a private Alertmanager running the shipped routing tree
(:mod:`iocdev.mailbox`), a real ``ioc api`` (the webhook receivers' target) and a real
``ioc worker`` of an isolated pipeline (:mod:`iocdev.sandbox`) with one PM2.5 rule owned
by ``snnmt``. Readings make the rule fire in ``communes`` communes of one province, then
clear; optionally the SMTP server is down across the firing and again across the
resolution: stopped before the readings are sent and kept down ``smtp_down_s`` after the
worker committed the transitions, so every first attempt of Alertmanager fails. The
caller (a test, ``benchmarks/notify_latency.py``, the ``mail-outage`` chaos run) judges
the :class:`Episode` it returns.
"""

from __future__ import annotations

import contextlib
import os
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from ioccore.settings import Settings
from iocdev import supervise
from iocdev.mailbox import Message, private_alertmanager, private_mailpit
from iocdev.sandbox import batches, envelope, pipeline, service_env
from iocdev.settings import DevSettings
from iocdev.simulate.communes import load_communes
from iocdev.stack.ready import http_ok
from iocdev.supervise import Process, free_port

OWNER = "snnmt"
OWNER_ADDRESS = "snnmt@ioc.local"
OWNER_RECEIVER = "dept-snnmt"
PROVINCE = "01"

Echo = Callable[[str], None]


def _quiet(_: str) -> None:
    pass


def rule_text(rule_id: str, tag: str) -> str:
    """A commune-scoped PM2.5 rule (1-minute average > 100, clears under 50) owned by
    the department ``snnmt``, labelled ``test_run=<tag>``."""
    return f"""groups:
  - name: {rule_id}
    rules:
      - id: {rule_id}
        feed: sensor
        metric: pm25
        scope: commune
        aggregate: avg
        window: 1m
        op: ">"
        threshold: 100
        clear: 50
        for: 0m
        severity: warning
        owner: {OWNER}
        labels: {{ domain: environment, test_run: "{tag}" }}
        annotations:
          summary:
            vi: "PM2.5 tại {{commune}} là {{value:.0f}} µg/m³"
            en: "PM2.5 in {{commune_en}} is {{value:.0f}} µg/m³"
"""


@dataclass
class Episode:
    """What one run saw."""

    rule_id: str
    communes: int
    messages: list[Message] = field(default_factory=list)
    """Every message Mailpit received, oldest first."""
    receipts: list[tuple[str, str, int]] = field(default_factory=list)
    """(receiver, status, alerts) of every webhook notification the API recorded."""
    texts: list[str] = field(default_factory=list)
    """The text bodies of the owner's messages, in order."""
    firing_at: datetime | None = None
    """When the worker committed the first firing transition (outbox row)."""
    firing_mail_at: datetime | None = None
    """When Mailpit received the owner's firing message."""
    email_failures: list[float] = field(default_factory=list)
    """Alertmanager's failed e-mail attempts while firing, then while resolving."""
    group_wait_s: float = 10.0
    smtp_down_s: float = 0.0

    @property
    def owner_messages(self) -> list[Message]:
        return [m for m in self.messages if OWNER_ADDRESS in m.to]

    @property
    def other_messages(self) -> list[Message]:
        return [m for m in self.messages if OWNER_ADDRESS not in m.to]

    @property
    def firing_latency_s(self) -> float | None:
        if self.firing_at is None or self.firing_mail_at is None:
            return None
        return (self.firing_mail_at - self.firing_at).total_seconds()


def _created(m: Message) -> datetime:
    return datetime.fromisoformat(m.created.replace("Z", "+00:00"))


@contextlib.contextmanager
def api_process(settings: Settings, dbname: str, tmp: Path,
                extra_env: dict[str, str] | None = None) -> Iterator[str]:
    """A real ``ioc api`` on the services of ``settings`` and database ``dbname``, on a
    free port; its base URL."""
    port = free_port()
    env = {**os.environ, **service_env(settings), "IOC__DATABASE__DBNAME": dbname,
           "IOC__API__PORT": str(port), **(extra_env or {})}
    proc: Process = supervise.spawn(
        "api", supervise.ioc_argv("api", "--port", str(port), "--log-level", "warning"),
        log=tmp / "api.log", cwd=tmp, env=env)
    base = f"http://127.0.0.1:{port}"
    try:
        supervise.wait_started(proc, lambda: http_ok(f"{base}/healthz"), "ioc api",
                               timeout=60, interval=0.3)
        yield base
    finally:
        proc.stop(timeout=20)


def _wait(check: Callable[[], Any], timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        got = check()
        if got:
            return got
        time.sleep(0.25)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")


def run(settings: DevSettings, tmp: Path, *, communes: int = 30, smtp_down_s: float = 0.0,
        group_interval: str = "15s", echo: Echo = _quiet) -> Episode:
    """One episode (see the module docstring); every process is stopped afterwards."""
    tag = uuid.uuid4().hex[:8]
    rule_id = f"mail_pm25_{tag}"
    places = [c.code for c in load_communes(PROVINCE)][:communes]
    rules = tmp / "rules"
    rules.mkdir(parents=True, exist_ok=True)
    (rules / "pm25.yaml").write_text(rule_text(rule_id, tag))
    episode = Episode(rule_id, len(places), smtp_down_s=smtp_down_s)
    tokens = tmp / "tokens"
    t0 = datetime.now(UTC).replace(second=0, microsecond=0) - timedelta(minutes=4)

    def readings(minute: int, values: list[float], close: float) -> list[dict[str, Any]]:
        out = []
        for code in places:
            source = f"aq-{tag}-{code}"
            start = t0 + timedelta(minutes=minute)
            out += [envelope("sensor", f"{source}-{minute}-{i}", source,
                             start + timedelta(seconds=i), {"metric": "pm25", "value": v,
                                                            "unit": "ug/m3"},
                             commune_code=code) for i, v in enumerate(values)]
            out.append(envelope("sensor", f"{source}-close-{minute + 1}", source,
                                start + timedelta(minutes=1, seconds=30),
                                {"metric": "pm25", "value": close, "unit": "ug/m3"},
                                commune_code=code))
        return out

    with private_mailpit(settings, tmp / "mailpit") as box, \
            pipeline(settings, tmp / "pipe", partitions=1) as pipe, \
            api_process(settings, pipe.dbname, tmp,
                        {"IOC__ALERTS__RECEIVER_TOKENS_DIR": str(tokens)}) as api, \
            private_alertmanager(settings, tmp / "am", smarthost=box.smarthost, api_url=api,
                                 tokens_dir=tokens,
                                 timing={"group_interval": group_interval}) as am:
        episode.group_wait_s = _seconds(str(am.config["route"]["group_wait"]))
        env = {"IOC__ALERTS__RULES_DIR": str(rules),
               "IOC__ALERTMANAGER__PORT": am.base.rsplit(":", 1)[1]}
        pipe.start_worker(extra_env=env)
        transitions = (f"SELECT count(*) FROM alert_transitions WHERE rule_id = '{rule_id}'"
                       " AND kind = 'state' AND to_state = '{state}'")

        # -- firing in every commune: one e-mail to the owner
        if smtp_down_s:
            box.stop()
            echo("   SMTP server down across the firing")
        pipe.produce("sensor", batches(readings(0, [150.0, 170.0, 160.0], 150.0), 10))
        pipe.wait_for(transitions.format(state="firing"), len(places), timeout=120)
        pipe.wait_for("SELECT count(*) FROM alert_outbox WHERE receiver = 'alertmanager'"
                      " AND delivered_at IS NULL", 0, timeout=60)
        first, last, delivered = pipe.query(
            "SELECT min(created_at), max(created_at), max(delivered_at) FROM alert_outbox"
            " WHERE receiver = 'alertmanager'")[0]
        episode.firing_at = first
        echo(f"   firing transitions committed over {(last - first).total_seconds():.1f} s,"
             f" posted to Alertmanager by +{(delivered - first).total_seconds():.1f} s")
        echo(f"   {len(places)} alerts firing (first committed {first:%H:%M:%S.%f})")
        if smtp_down_s:
            time.sleep(smtp_down_s)  # Alertmanager's flush at group_wait fails, retries
            box.start()
            echo("   SMTP server back")
        api_box = box.api
        mail = _wait(lambda: api_box.to(OWNER_ADDRESS), 90 + smtp_down_s,
                     "the owner's firing message")[0]
        episode.firing_mail_at = _created(mail)
        episode.email_failures.append(am.failed_requests("email"))
        echo(f"   firing message in {OWNER_ADDRESS} after "
             f"{episode.firing_latency_s:.1f} s: {mail.subject}")

        # -- every commune clears: one resolved e-mail
        if smtp_down_s:
            box.stop()
            echo("   SMTP server down across the resolution")
        pipe.produce("sensor", batches(readings(3, [20.0, 25.0], 22.0), 10))
        pipe.wait_for(transitions.format(state="resolved"), len(places), timeout=120)
        echo(f"   {len(places)} alerts resolved")
        if smtp_down_s:
            time.sleep(smtp_down_s)
            box.start()
            echo("   SMTP server back")
        _wait(lambda: len(api_box.to(OWNER_ADDRESS)) >= 2,
              120 + smtp_down_s + _seconds(group_interval), "the owner's resolved message")
        # anything else routed would arrive within a group interval: wait one out
        time.sleep(_seconds(group_interval) + 2)
        episode.messages = sorted(api_box.messages(), key=lambda m: m.created)
        episode.texts = [api_box.text(m.id) for m in episode.owner_messages]
        episode.email_failures.append(am.failed_requests("email") - episode.email_failures[0])
        episode.receipts = [(str(r), str(s), int(n)) for r, s, n in pipe.query(
            "SELECT receiver, status, jsonb_array_length(alerts) FROM alertmanager_receipts"
            " ORDER BY id")]
    return episode


def _seconds(duration: str) -> float:
    units = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}
    for suffix in ("ms", "s", "m", "h"):
        if duration.endswith(suffix):
            return float(duration[: -len(suffix)]) * units[suffix]
    return float(duration)
