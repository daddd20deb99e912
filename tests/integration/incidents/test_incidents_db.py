"""Incidents on the real database: the intake gathers alerts into incidents, operators
attach, detach, merge and split, and escalation timers fire exactly once."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import pytest
from iocdev.sandbox import fresh_database

from alerts.incidents import store
from alerts.incidents.errors import IllegalActionError
from alerts.incidents.intake import intake_once
from alerts.incidents.machine import Action
from alerts.incidents.timers import fire_due
from ioccore.settings import Settings
from tests.integration.incidents.helpers import config, put_alert, rows

pytestmark = [pytest.mark.integration, pytest.mark.asyncio(loop_scope="session")]

T0 = datetime(2026, 12, 1, 1, 0, tzinfo=UTC)
CFG = config()


@pytest.fixture
def db(stack: Settings) -> Iterator[str]:
    with fresh_database(stack, "ioc_inc") as (_, conninfo):
        yield conninfo


@pytest.fixture
async def conn(db: str) -> AsyncIterator[psycopg.AsyncConnection[Any]]:
    async with await psycopg.AsyncConnection.connect(db, autocommit=True) as c:
        yield c


def fp() -> str:
    return uuid.uuid4().hex[:16]


async def test_intake_opens_one_incident_per_rule_and_province(
        db: str, conn: psycopg.AsyncConnection[Any]) -> None:
    a, b, c, manual = fp(), fp(), fp(), fp()
    put_alert(db, a, started=T0)
    put_alert(db, b, started=T0 + timedelta(minutes=1), commune="00007")
    put_alert(db, c, started=T0, province="46", commune="19753")
    put_alert(db, manual, rule="water_level_alarm_1", started=T0, severity="info")
    opened = await intake_once(conn, CFG, T0 + timedelta(minutes=2))
    assert len(opened) == 2
    got = rows(db, "SELECT i.province_code, i.department, i.sop_id, i.state,"
                   " array_agg(l.fingerprint ORDER BY l.fingerprint) FROM incidents i"
                   " JOIN incident_alerts l ON l.incident_id = i.id GROUP BY i.id ORDER BY 1")
    assert got == [("01", "pctt", "flood_alarm_3", "open", sorted([a, b])),
                   ("46", "pctt", "flood_alarm_3", "open", [c])]
    steps = rows(db, "SELECT count(*) FROM incident_steps")
    assert steps == [(12,)]
    timers = rows(db, "SELECT kind, level, due_at FROM incident_timers ORDER BY 1, 3")
    at = T0 + timedelta(minutes=2)
    assert timers == [("ack", 1, at + CFG.sla["critical"].ack)] * 2 + [
        ("resolve", 1, at + CFG.sla["critical"].resolve)] * 2
    # idempotent: a second round changes nothing
    assert await intake_once(conn, CFG, T0 + timedelta(minutes=3)) == []
    # a manual rule's alert joins an incident an operator opened for its rule
    iid = await store.open_from_alerts(conn, CFG, [manual], actor="op", at=T0, scope=None)
    later = fp()
    put_alert(db, later, rule="water_level_alarm_1", started=T0 + timedelta(minutes=5),
              severity="info", commune="00010")
    await intake_once(conn, CFG, T0 + timedelta(minutes=6))
    assert rows(db, "SELECT incident_id FROM incident_alerts WHERE fingerprint = %s",
                later) == [(iid,)]


async def test_concurrent_intakes_open_once(db: str) -> None:
    for i in range(20):
        put_alert(db, f"race-{i}", started=T0, commune=f"{i:05d}")
    conns = [await psycopg.AsyncConnection.connect(db, autocommit=True) for _ in range(3)]
    try:
        for _ in range(3):
            await asyncio.gather(*(intake_once(c, CFG, T0) for c in conns))
    finally:
        for c in conns:
            await c.close()
    assert rows(db, "SELECT count(*) FROM incidents") == [(1,)]
    assert rows(db, "SELECT count(*) FROM incident_alerts WHERE detached_at IS NULL") == [(20,)]


async def test_reopens_within_the_window_and_opens_anew_after_it(
        db: str, conn: psycopg.AsyncConnection[Any]) -> None:
    a = fp()
    put_alert(db, a, started=T0)
    [iid] = await intake_once(conn, CFG, T0)
    await store.act(conn, CFG, iid, Action("resolve", "op", T0 + timedelta(minutes=10),
                                           note="nước rút"), None)
    put_alert(db, a, state="resolved", started=T0)
    put_alert(db, a, started=T0 + timedelta(minutes=30))  # fires again
    assert await intake_once(conn, CFG, T0 + timedelta(minutes=31)) == [iid]
    state = rows(db, "SELECT state, cycle FROM incidents WHERE id = %s", iid)
    assert state == [("open", 2)]
    responses = rows(db, "SELECT cycle, resolved_at IS NOT NULL FROM incident_responses"
                         " WHERE incident_id = %s ORDER BY 1", iid)
    assert responses == [(1, True), (2, False)]
    await store.act(conn, CFG, iid, Action("resolve", "op", T0 + timedelta(minutes=40),
                                           note="xong"), None)
    await store.act(conn, CFG, iid, Action("close", "op", T0 + timedelta(minutes=41)), None)
    put_alert(db, a, started=T0 + timedelta(hours=3))  # long after the window
    [new] = await intake_once(conn, CFG, T0 + timedelta(hours=3))
    assert new != iid
    assert rows(db, "SELECT state FROM incidents WHERE id = %s", iid) == [("closed",)]
    actions = [r[0] for r in rows(db, "SELECT action FROM incident_events WHERE"
                                      " incident_id = %s ORDER BY id", iid)]
    assert actions == ["open", "attach", "resolve", "reopen", "attach", "resolve", "close"]


async def test_detach_merge_split(db: str, conn: psycopg.AsyncConnection[Any]) -> None:
    a, b, c = fp(), fp(), fp()
    put_alert(db, a, started=T0)
    put_alert(db, b, started=T0, province="46", commune="19753")
    put_alert(db, c, started=T0, commune="00007")
    await intake_once(conn, CFG, T0)
    [(first,)] = rows(db, "SELECT incident_id FROM incident_alerts WHERE fingerprint = %s", a)
    [(second,)] = rows(db, "SELECT incident_id FROM incident_alerts WHERE fingerprint = %s", b)
    await store.detach(conn, first, [c], actor="op", at=T0, scope=None)
    await intake_once(conn, CFG, T0 + timedelta(minutes=1))  # not re-attached
    assert rows(db, "SELECT count(*) FROM incident_alerts WHERE fingerprint = %s"
                    " AND detached_at IS NULL", c) == [(0,)]
    await store.attach(conn, first, [c], actor="op", at=T0, scope=None)
    with pytest.raises(IllegalActionError):
        await store.attach(conn, second, [c], actor="op", at=T0, scope=None)
    await store.merge(conn, first, [second], actor="op", at=T0, scope=None, note="cùng lũ")
    assert rows(db, "SELECT state, merged_into FROM incidents WHERE id = %s", second) == [
        ("closed", first)]
    assert rows(db, "SELECT count(*) FROM incident_timers WHERE incident_id = %s"
                    " AND fired_at IS NULL AND cancelled_at IS NULL", second) == [(0,)]
    linked = rows(db, "SELECT fingerprint FROM incident_alerts WHERE incident_id = %s"
                      " AND detached_at IS NULL ORDER BY 1", first)
    assert [r[0] for r in linked] == sorted([a, b, c])
    new = await store.split(conn, CFG, first, [b], actor="op", at=T0, scope=None)
    assert rows(db, "SELECT incident_id FROM incident_alerts WHERE fingerprint = %s"
                    " AND detached_at IS NULL", b) == [(new,)]
    assert rows(db, "SELECT state, department FROM incidents WHERE id = %s", new) == [
        ("open", "pctt")]


async def test_steps_require_note_or_evidence(db: str, conn: psycopg.AsyncConnection[Any]
                                              ) -> None:
    put_alert(db, fp(), started=T0)
    [iid] = await intake_once(conn, CFG, T0)
    with pytest.raises(IllegalActionError, match="evidence"):
        await store.step_done(conn, iid, "order_evacuation", actor="op", at=T0, scope=None,
                              note="đã ra lệnh")
    await store.step_done(conn, iid, "order_evacuation", actor="op", at=T0, scope=None,
                          evidence="Lệnh 12/LSC-BCH")
    with pytest.raises(IllegalActionError, match="already"):
        await store.step_done(conn, iid, "order_evacuation", actor="op", at=T0, scope=None,
                              evidence="x")


async def test_timers_escalate_up_the_chain_once_and_stop_on_ack(
        db: str, conn: psycopg.AsyncConnection[Any]) -> None:
    put_alert(db, fp(), started=T0)
    [iid] = await intake_once(conn, CFG, T0)
    ack = CFG.sla["critical"].ack
    every = CFG.sla["critical"].escalate_every
    assert await fire_due(conn, CFG, T0 + ack - timedelta(seconds=1), fired_by="t") == []
    first = await fire_due(conn, CFG, T0 + ack, fired_by="t")
    assert [(f.kind, f.level, f.target_role) for f in first] == [("ack", 1, "duty_officer")]
    assert await fire_due(conn, CFG, T0 + ack, fired_by="t") == []  # once
    second = await fire_due(conn, CFG, T0 + ack + every, fired_by="t")
    assert [(f.level, f.target_role) for f in second] == [(2, "head")]
    await store.act(conn, CFG, iid, Action("ack", "trực ban", T0 + ack + every), None)
    assert await fire_due(conn, CFG, T0 + ack + 3 * every, fired_by="t") == []
    payloads = rows(db, "SELECT fingerprint, payload FROM alert_outbox WHERE seq > 0"
                        " ORDER BY seq")
    assert [p[0] for p in payloads] == [f"incident-{iid}"] * 2
    # the acknowledgement ends the level-2 escalation still live (level 1 had ended)
    ended = rows(db, "SELECT payload FROM alert_outbox WHERE seq < 0")
    assert len(ended) == 1
    [alert] = ended[0][0]["alerts"]
    assert alert["labels"] == payloads[1][1]["alerts"][0]["labels"]
    assert datetime.fromisoformat(alert["endsAt"]) == T0 + ack + every
    labels = payloads[0][1]["alerts"][0]["labels"]
    assert labels["alertname"] == "IncidentEscalation"
    assert labels["department"] == "pctt"
    assert labels["escalated_to"] == "duty_officer"
    assert payloads[1][1]["alerts"][0]["annotations"]["escalated_to_name"].startswith("Chánh")
    cancelled = rows(db, "SELECT kind, level FROM incident_timers WHERE cancelled_at IS NOT"
                         " NULL ORDER BY 1, 2")
    assert cancelled == [("ack", 3)]


async def test_one_round_reopens_and_gathers_the_newcomers(
        db: str, conn: psycopg.AsyncConnection[Any]) -> None:
    a, b, c = fp(), fp(), fp()
    put_alert(db, a, started=T0)
    [iid] = await intake_once(conn, CFG, T0)
    await store.act(conn, CFG, iid, Action("resolve", "op", T0 + timedelta(minutes=5),
                                           note="ok"), None)
    later = T0 + timedelta(minutes=20)
    # fires again, with two newcomers of the same response that fired a moment earlier
    put_alert(db, b, started=later - timedelta(seconds=2), commune="00007")
    put_alert(db, c, started=later - timedelta(seconds=1), commune="00010")
    put_alert(db, a, started=later)
    assert await intake_once(conn, CFG, later + timedelta(seconds=3)) == [iid]
    held = rows(db, "SELECT DISTINCT incident_id FROM incident_alerts WHERE detached_at IS NULL")
    assert held == [(iid,)]
    assert rows(db, "SELECT count(*) FROM incidents") == [(1,)]


async def test_escalations_reach_alertmanager_with_the_department_label(
        db: str, conn: psycopg.AsyncConnection[Any], stack: Settings) -> None:
    from alerts.alertmanager import AlertmanagerClient
    from alerts.outbox import OutboxDelivery

    title = f"Kẹt xe cầu {uuid.uuid4().hex[:8]}"
    now = datetime.now(UTC)
    iid = await store.create(conn, CFG, title=title, rule_id="traffic_incident",
                             province_code="01", department="sxd",
                             severity="critical", actor="test", at=now - timedelta(hours=1))
    fired = await fire_due(conn, CFG, now, fired_by="test")
    assert {(f.kind, f.level) for f in fired} == {("ack", 1)}
    am = AlertmanagerClient(stack.alertmanager.url)
    try:
        delivery = OutboxDelivery(db, alertmanager=am, webhook=None)
        result = await delivery.deliver_once()
        await delivery.close()
        assert result.delivered == 1
        found = await am.list(filters=['alertname="IncidentEscalation"',
                                       f'incident_id="{iid}"', 'department="sxd"'])
    finally:
        await am.aclose()
    mine = [a for a in found if title in a["annotations"]["summary"]]
    assert len(mine) == 1, found
    labels = mine[0]["labels"]
    assert labels["escalated_to"] == "duty_officer" and labels["province_code"] == "01"
    assert labels["severity"] == "critical"
    assert mine[0]["annotations"]["console_url"].endswith(f"?incident={iid}")


async def test_the_loop_wakes_on_an_alert_not_on_its_poll_interval(db: str) -> None:
    from alerts.incidents.runner import IncidentRunner

    runner = IncidentRunner(db, CFG, poll_interval_s=30.0)
    stop = asyncio.Event()
    task = asyncio.create_task(runner.run(stop))
    try:
        await asyncio.sleep(1.0)  # first round done, listening
        started = asyncio.get_running_loop().time()
        put_alert(db, fp(), started=datetime.now(UTC))
        while not rows(db, "SELECT id FROM incidents"):
            assert asyncio.get_running_loop().time() - started < 5.0, "not woken"
            await asyncio.sleep(0.02)
        # both connections go through the connection policy: named, with its timeouts
        names = {r[0] for r in rows(db, "SELECT application_name FROM pg_stat_activity"
                                        " WHERE datname = current_database()")}
        assert {"ioc-incidents", "ioc-incidents-listen"} <= names
    finally:
        stop.set()
        await asyncio.wait_for(task, 10)


async def test_the_loop_reconnects_both_connections_after_they_are_killed(db: str) -> None:
    """The policy's names find the loop's sessions; killing both (a database restart, an
    operator's pg_terminate_backend) costs one failed round and a listener retry, then
    the next alert is placed again, woken, not at the 30 s poll."""
    from alerts.incidents.runner import IncidentRunner

    runner = IncidentRunner(db, CFG, poll_interval_s=30.0)
    stop = asyncio.Event()
    task = asyncio.create_task(runner.run(stop))
    names = ("ioc-incidents", "ioc-incidents-listen")
    try:
        await asyncio.sleep(1.0)
        killed = rows(db, "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE"
                          " datname = current_database() AND application_name = ANY(%s)",
                      list(names))
        assert [k for (k,) in killed] == [True, True]
        await asyncio.sleep(0.2)
        a = fp()
        put_alert(db, a, started=datetime.now(UTC))
        started = asyncio.get_running_loop().time()
        while not rows(db, "SELECT 1 FROM incident_alerts WHERE fingerprint = %s", a):
            assert asyncio.get_running_loop().time() - started < 10.0, "not reconnected"
            await asyncio.sleep(0.05)
        back = {r[0] for r in rows(db, "SELECT application_name FROM pg_stat_activity"
                                       " WHERE datname = current_database()")}
        assert set(names) <= back
    finally:
        stop.set()
        await asyncio.wait_for(task, 10)
