"""Response KPIs of citizen reports on the real database: the same status events give
the same KPIs whatever their arrival order, however late, and however often replayed
(hypothesis), and a worked example gives the figures docs/kpis.md defines."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from psycopg import AsyncConnection

from ioccore.feedback import kpis, store
from ioccore.feedback.contract import STATUSES, FeedbackStatusV1
from tests.integration.feedback.conftest import FeedbackDb

pytestmark = pytest.mark.integration

T0 = datetime(2026, 10, 31, 15, 0, tzinfo=UTC)  # 22:00 in Vietnam: a month boundary near
NOW = T0 + timedelta(days=4)  # fb-3 (due T0+73 h) is overdue
REPORTS = 4
Event = tuple[int, str, int, int]
"""(report index, status, minutes after T0, event number)."""


def _status_events() -> st.SearchStrategy[list[Event]]:
    one = st.tuples(st.integers(0, REPORTS - 1), st.sampled_from(STATUSES),
                    st.integers(0, 3 * 24 * 60))
    return st.lists(one, max_size=14).map(
        lambda evs: [(r, s, m, i) for i, (r, s, m) in enumerate(evs)])


def _change(ev: Event) -> FeedbackStatusV1:
    report, status, minutes, n = ev
    return FeedbackStatusV1(
        event_id=f"e{n}", source_id="desk", department="construction",
        report_id=f"fb-{report}", occurred_at=T0 + timedelta(minutes=minutes),
        status=status,  # type: ignore[arg-type]
        reason="duplicate" if status == "rejected" else None)


async def _reset(conn: AsyncConnection[Any]) -> None:
    await conn.execute("DELETE FROM feedback_reports")  # cascades to events, ratings
    for i in range(REPORTS):
        received = T0 + timedelta(hours=3 * i)  # across the Vietnam day/month boundary
        await conn.execute(
            "INSERT INTO feedback_reports (report_id, source_id, event_id, service_code,"
            " description, commune_code, province_code, department, received_at, due_at)"
            " VALUES (%s, 'app', %s, 'flooding', 'x', %s, '01', 'construction', %s, %s)",
            (f"fb-{i}", f"r{i}", f"0000{i % 2 + 4}", received,
             received + timedelta(hours=4 + 20 * i)))


async def _kpis(conn: AsyncConnection[Any]) -> list[list[dict[str, Any]]]:
    return [await kpis.fetch(conn, group_by=g, grain=grain, start=date(2026, 10, 1),
                             end=date(2026, 12, 1), now=NOW)
            for g in ("commune", "department", "province") for grain in ("day", "month")]


async def _fold(conninfo: str, batches: list[list[Event]]) -> list[list[dict[str, Any]]]:
    async with await AsyncConnection.connect(conninfo, autocommit=True) as conn:
        await _reset(conn)
        for batch in batches:
            for ev in batch:
                try:
                    await store.store_status(conn, _change(ev))
                except store.FeedbackRefusedError as exc:  # dated before its report
                    assert exc.reason == "before_report"
        await conn.execute("INSERT INTO feedback_ratings VALUES ('fb-0', 3, %s)", (T0,))
        return await _kpis(conn)


@settings(max_examples=25, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(events=_status_events(), data=st.data())
def test_kpis_do_not_depend_on_order_lateness_or_replay(feedback_db: FeedbackDb,
                                                        events: list[Event],
                                                        data: st.DataObject) -> None:
    in_order = sorted(events, key=lambda e: e[2])
    shuffled = data.draw(st.permutations(events))
    cut = data.draw(st.integers(0, len(shuffled)))
    replayed = data.draw(st.lists(st.sampled_from(events), max_size=5)) if events else []
    # late: a second batch after the first one was stored; replay: events again
    late = [shuffled[:cut], shuffled[cut:] + replayed, shuffled]
    expected = asyncio.run(_fold(feedback_db.conninfo, [in_order]))
    assert asyncio.run(_fold(feedback_db.conninfo, late)) == expected


def test_a_worked_example(feedback_db: FeedbackDb) -> None:
    events: list[Event] = [
        (0, "assigned", 10, 0), (0, "resolved", 120, 1),       # 2 h, within its 4 h SLA
        (1, "in_progress", 3 * 60, 2), (1, "resolved", 3 * 60 + 60 * 25, 3),  # 25 h > 24 h
        (2, "rejected", 30 + 6 * 60, 4),                        # rejected: no SLA figure
        (3, "assigned", 60, 5),                       # before fb-3 was received: refused
    ]                                                           # fb-3: open, due T0+73 h
    rows = asyncio.run(_fold(feedback_db.conninfo, [events]))
    province_month = rows[5]
    assert [r["period"] for r in province_month] == ["2026-10-01", "2026-11-01"]
    october, november = province_month
    # fb-0 at 22:00 VN on 31 Oct; fb-1..3 on 1 Nov in Vietnam time
    assert (october["received"], october["resolved"], october["resolved_in_sla"]) == (1, 1, 1)
    assert october["median_hours_to_resolve"] == 2.0 and october["satisfaction"] == 3.0
    assert (november["received"], november["resolved"], november["rejected"]) == (3, 1, 1)
    assert november["resolved_in_sla"] == 0 and november["share_resolved_in_sla"] == 0.0
    assert november["median_hours_to_resolve"] == 25.0  # fb-1: received T0+3 h, resolved T0+28 h
    assert november["overdue_now"] == 1


def test_contacts_are_purged_after_the_retention(feedback_db: FeedbackDb) -> None:
    with psycopg.connect(feedback_db.conninfo, autocommit=True) as conn:
        asyncio.run(_fold(feedback_db.conninfo, [[]]))
        conn.execute("INSERT INTO feedback_contacts (report_id, email, stored_at) VALUES"
                     " ('fb-0', 'old@example.vn', now() - interval '400 days'),"
                     " ('fb-1', 'new@example.vn', now())")
        ioc = str(Path(sys.executable).with_name("ioc"))
        env = dict(os.environ, IOC__DATABASE__DBNAME=feedback_db.name)
        out = subprocess.run([ioc, "feedback", "purge-contacts"], env=env, check=True,
                             capture_output=True, text=True, timeout=120).stdout
        assert "1 contacts" in out
        left = [r[0] for r in conn.execute("SELECT email FROM feedback_contacts")]
    assert left == ["new@example.vn"]
