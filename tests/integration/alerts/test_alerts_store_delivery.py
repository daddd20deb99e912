"""Alerts on the real database and Alertmanager: persistence, outbox delivery, restart."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest
from aiohttp import web
from iocdev.sandbox import fresh_database
from iocdev.supervise import free_port

from alerts import store
from alerts.alertmanager import AlertmanagerClient
from alerts.evaluator import Evaluator
from alerts.model import CommuneInfo, WindowPoint
from alerts.outbox import OutboxDelivery
from alerts.ruleload import load_rules
from alerts.rules import RuleSet
from alerts.silences import Matcher
from alerts.webhook import SIGNATURE_HEADER, TIMESTAMP_HEADER, WebhookClient, verify
from ioccore.settings import Settings
from tests.support.rulefiles import pm25_entry, rule_file

pytestmark = pytest.mark.integration

COMMUNES = {"00004": CommuneInfo("Phường Ba Đình", "01", "Thành phố Hà Nội", "Ba Dinh Ward",
                                 "Ha Noi")}
SECRET = b"test-secret"


@pytest.fixture(scope="module")
def db(stack: Settings) -> Iterator[str]:
    with fresh_database(stack, "ioc_alerts") as (_, conninfo):
        yield conninfo


@pytest.fixture
async def conn(db: str) -> AsyncIterator[psycopg.AsyncConnection[Any]]:
    async with await psycopg.AsyncConnection.connect(db, autocommit=True) as c:
        yield c


def ruleset(tmp_path: Path) -> RuleSet:
    rule_id = f"it_pm25_{uuid.uuid4().hex[:8]}"
    path = tmp_path / "rules.yaml"
    path.write_text(rule_file("it", pm25_entry(
        rule_id, scope=None, aggregate=None, window=None, threshold=55.5, clear=45.5,
        for_="2m", labels={"domain": "environment"},
        summary="PM2.5 tại {commune} là {value:.1f}",
        summary_en="PM2.5 in {commune_en} is {value:.1f}")), encoding="utf-8")
    return load_rules([path])


T0 = datetime.now(UTC).replace(second=0, microsecond=0) - timedelta(hours=1)


def feed(ev: Evaluator, values: list[float], start: int = 0) -> list[Any]:
    out: list[Any] = []
    for i, v in enumerate(values, start):
        at = T0 + timedelta(minutes=i)
        # minute i is complete: evaluate it, as `ioc rules test` does, and commit
        plan = ev.evaluate([WindowPoint("00004", "01", "pm25", at, 1, v, v, v, v)],
                           wall_now=at, complete_until=at + timedelta(minutes=1))
        ev.commit(plan)
        out.extend(plan.transitions)
    return out


async def outbox_rows(conn: psycopg.AsyncConnection[Any], fp: str) -> list[tuple[Any, ...]]:
    cur = await conn.execute("SELECT seq, receiver, attempts, delivered_at IS NOT NULL"
                             " FROM alert_outbox WHERE fingerprint = %s ORDER BY id", (fp,))
    return await cur.fetchall()


async def test_transitions_persisted_once_when_stored_twice(
        tmp_path: Path, conn: psycopg.AsyncConnection[Any]) -> None:
    ev = Evaluator(ruleset(tmp_path), COMMUNES)
    transitions = feed(ev, [80.0] * 4)
    assert [t.to_state for t in transitions] == ["pending", "firing"]
    first = await store.persist(conn, transitions, receivers=["alertmanager", "webhook"])
    second = await store.persist(conn, transitions, receivers=["alertmanager", "webhook"])
    assert len(first.stored) == 2 and first.notifications == 2
    assert second.stored == [] and second.duplicates == 2 and second.notifications == 0
    fp = transitions[0].fingerprint
    alert, history = await store.get_alert(conn, fp)
    assert alert.state == "firing" and alert.seq == 2
    assert [(t.seq, t.to_state, t.actor) for t in history] == [(1, "pending", "system"),
                                                               (2, "firing", "system")]
    assert len(await outbox_rows(conn, fp)) == 2


async def test_operator_ack_resolve_silence_and_audit(
        tmp_path: Path, conn: psycopg.AsyncConnection[Any]) -> None:
    ev = Evaluator(ruleset(tmp_path), COMMUNES, renotify_every=timedelta(minutes=3))
    transitions = feed(ev, [80.0] * 4)
    await store.persist(conn, transitions, receivers=["webhook"])
    fp = transitions[0].fingerprint
    rule_id = transitions[0].rule_id
    ack = await store.acknowledge(conn, fp, "nguyen.van.a", "đang kiểm tra",
                                  receivers=["webhook"])
    assert (ack.from_state, ack.to_state, ack.seq) == ("firing", "acknowledged", 3)
    listed = await store.list_alerts(conn, states=["acknowledged"], rule_ids=[rule_id])
    assert [a.fingerprint for a in listed] == [fp]
    # the evaluator still thinks "firing": its re-notification is dropped, state reloaded
    stale = feed(ev, [80.0] * 3, start=4)
    assert [t.kind for t in stale] == ["renotify"]
    result = await store.persist(conn, stale, receivers=["webhook"])
    assert result.stored == [] and result.conflicts == {fp}
    ev.restore(await store.load_states(conn, fingerprints=result.conflicts))
    assert ev.alerts[fp].state == "acknowledged"
    # silence the rule, then the condition clears: resolved stored, webhook not notified
    silence = await store.create_silence(
        conn, [Matcher("alertname", "=", rule_id)], starts_at=T0,
        ends_at=datetime.now(UTC) + timedelta(hours=1), created_by="tran.thi.b",
        comment="bảo trì")
    cleared = feed(ev, [10.0], start=7)
    result = await store.persist(conn, cleared, receivers=["webhook"])
    assert [(t.from_state, t.to_state) for t in result.stored] == [("acknowledged", "resolved")]
    assert result.notifications == 0
    await store.expire_silence(conn, silence.id, "tran.thi.b")
    alert, history = await store.get_alert(conn, fp)
    assert alert.state == "resolved" and alert.acknowledged_by == "nguyen.van.a"
    assert history[2].note == "đang kiểm tra"
    actions = [row["action"] for row in await store.list_audit(conn, limit=10)]
    assert {"acknowledge", "silence.create", "silence.expire"} <= set(actions)


async def test_outbox_delivers_to_alertmanager_and_resolves(
        tmp_path: Path, conn: psycopg.AsyncConnection[Any], db: str, stack: Settings) -> None:
    ev = Evaluator(ruleset(tmp_path), COMMUNES)
    transitions = feed(ev, [80.0] * 4)
    rule_id = transitions[0].rule_id
    await store.persist(conn, transitions, receivers=["alertmanager"],
                        generator_url="http://127.0.0.1:18080/v1/alerts")
    am = AlertmanagerClient(stack.alertmanager.url)
    delivery = OutboxDelivery(db, alertmanager=am, webhook=None)
    try:
        fp = transitions[0].fingerprint
        result = await delivery.deliver_once()
        assert result.delivered >= 1
        assert [(r[0], r[3]) for r in await outbox_rows(conn, fp)] == [(2, True)]
        listed = await am.list(filters=[f'alertname="{rule_id}"'])
        assert len(listed) == 1
        labels = listed[0]["labels"]
        assert labels["commune_code"] == "00004" and labels["province_code"] == "01"
        assert labels["severity"] == "warning" and labels["domain"] == "environment"
        assert listed[0]["annotations"]["summary_en"] == "PM2.5 in Ba Dinh Ward is 80.0"
        assert listed[0]["generatorURL"].endswith(transitions[0].fingerprint)
        assert await delivery.resend_active() >= 1
        resolved = feed(ev, [10.0], start=4)
        await store.persist(conn, resolved, receivers=["alertmanager"])
        await delivery.deliver_once()
        rows = await outbox_rows(conn, fp)
        assert [(r[0], r[2], r[3]) for r in rows] == [(2, 1, True), (3, 1, True)]
        assert await am.list(filters=[f'alertname="{rule_id}"']) == []
        await delivery.deliver_once()
        assert await outbox_rows(conn, fp) == rows  # nothing sent twice
    finally:
        await delivery.close()
        await am.aclose()


class Receiver:
    """A tiny signed-webhook receiver on a loopback port."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.received: list[dict[str, Any]] = []
        self.runner: web.AppRunner | None = None

    async def handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        ok = verify(SECRET, body, request.headers[TIMESTAMP_HEADER],
                    request.headers[SIGNATURE_HEADER])
        if not ok:
            return web.Response(status=401)
        self.received.append(await request.json())
        return web.Response(status=204)

    async def start(self) -> None:
        app = web.Application()
        app.router.add_post("/hook", self.handle)
        self.runner = web.AppRunner(app)
        await self.runner.setup()
        await web.TCPSite(self.runner, "127.0.0.1", self.port).start()

    async def stop(self) -> None:
        if self.runner is not None:
            await self.runner.cleanup()


async def test_receiver_down_then_up_gets_each_transition_once_and_restart_sends_nothing(
        tmp_path: Path, conn: psycopg.AsyncConnection[Any], db: str) -> None:
    rules = ruleset(tmp_path)
    port = free_port()
    ev = Evaluator(rules, COMMUNES, renotify_every=None, escalate_after=None)
    transitions = feed(ev, [80.0] * 4)
    fp = transitions[0].fingerprint
    await store.persist(conn, transitions, receivers=["webhook"])
    hook = WebhookClient(f"http://127.0.0.1:{port}/hook", SECRET, timeout_s=2)
    delivery = OutboxDelivery(db, alertmanager=None, webhook=hook, retry_max_s=5)
    receiver = Receiver(port)
    try:
        await delivery.deliver_once()
        assert [(r[2], r[3]) for r in await outbox_rows(conn, fp)] == [(1, False)]
        # more transitions while the receiver is down (resolved, then a new episode)
        later = feed(ev, [10.0] + [90.0] * 3, start=4)
        await store.persist(conn, later, receivers=["webhook"])
        await delivery.deliver_once()  # backing off: nothing is due
        rows = await outbox_rows(conn, fp)
        assert [r[0] for r in rows] == [2, 3, 5] and rows[0][2] == 1
        await receiver.start()
        future = datetime.now(UTC) + timedelta(minutes=10)
        for _ in range(5):
            await delivery.deliver_once(now=future)
        mine = [e for e in receiver.received if e["fingerprint"] == fp]
        assert [(e["seq"], e["to_state"]) for e in mine] == [
            (2, "firing"), (3, "resolved"), (5, "firing")]
        # a restarted worker: new evaluator, state from the database, same windows again
        await delivery.close()
        restarted = Evaluator(rules, COMMUNES, renotify_every=None, escalate_after=None)
        restarted.restore(await store.load_states(conn, communes=["00004"]))
        # the windows are replayed (rollup or changelog), evaluation resumes at the watermark
        for i, v in enumerate([80.0] * 4 + [10.0] + [90.0] * 4):
            at = T0 + timedelta(minutes=i)
            restarted.observe([WindowPoint("00004", "01", "pm25", at, 1, v, v, v, v)])
        plan = restarted.evaluate(wall_now=T0 + timedelta(minutes=9),
                                  complete_until=T0 + timedelta(minutes=9))
        restarted.commit(plan)
        again = plan.transitions
        assert again == []  # already firing: no second "firing"
        result = await store.persist(conn, again, receivers=["webhook"])
        assert result.notifications == 0
        delivery2 = OutboxDelivery(db, alertmanager=None, webhook=hook, retry_max_s=5)
        await delivery2.deliver_once(now=future)
        await delivery2.close()
        assert len([e for e in receiver.received if e["fingerprint"] == fp]) == 3
    finally:
        await delivery.close()
        await hook.aclose()
        await receiver.stop()


async def test_alertmanager_reachable(stack: Settings) -> None:
    async with httpx.AsyncClient() as client:
        response = await client.get(stack.alertmanager.url + "/api/v2/status")
    assert response.status_code == 200
    await asyncio.sleep(0)
