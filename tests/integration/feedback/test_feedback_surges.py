"""Surges of citizen reports raise alerts, on the real database: reports stored by the
API's write path, the shipped rule (config/rules/feedback.yaml), the singleton-rules
runner (lock holder, durable horizon), the alert tables and outbox, the incident intake."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import psycopg
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from iocdev.sandbox import Pipeline, fresh_database
from psycopg import AsyncConnection

from alerts.incidents.intake import intake_once
from alerts.model import CommuneInfo
from alerts.ruleload import load_rules, load_rules_dir
from alerts.surges import firing_intervals
from ioccore.feedback import catalogue, store
from ioccore.feedback.contract import FeedbackReportV1
from ioccore.settings import ROOT, Settings
from streams.feedback_surges import PROGRESS, FeedbackSurges
from streams.singleton_rules import SingletonRules
from tests.integration.feedback.conftest import FeedbackDb
from tests.integration.incidents.helpers import config, rows

pytestmark = pytest.mark.integration

RULE = "flooding_reports_surge"
COMMUNES = {
    "00004": CommuneInfo("Phường Ba Đình", "01", "Thành phố Hà Nội", "Ba Dinh Ward", "Ha Noi"),
    "00070": CommuneInfo("Phường Hoàn Kiếm", "01", "Thành phố Hà Nội", "Hoan Kiem Ward",
                         "Ha Noi"),
}


async def _store(conninfo: str, reports: list[tuple[str, str, datetime]]) -> list[bool]:
    flooding = catalogue.default().service("flooding")
    assert flooding is not None
    out = []
    async with await AsyncConnection.connect(conninfo, autocommit=True) as conn:
        for event_id, commune, at in reports:
            report = FeedbackReportV1(event_id=event_id, source_id="citizen-app",
                                      occurred_at=at, service_code="flooding",
                                      description="Nước ngập ngang đầu gối", commune_code=commune)
            _, created = await store.store_report(conn, report, flooding, store.Contact(),
                                                  nearest_max_m=2000)
            out.append(created)
    return out


def test_five_flooding_reports_fire_open_an_incident_and_resolve(feedback_db: FeedbackDb
                                                                 ) -> None:
    db = feedback_db.conninfo
    settings = feedback_db.settings
    rules = load_rules_dir(ROOT / "config" / "rules")
    now = datetime.now(UTC).replace(second=0, microsecond=0)
    minute = timedelta(minutes=1)
    # Ba Đình: five reports in five minutes (one replayed: stores nothing)
    ba_dinh = [(f"bd-{i}", "00004", now - (8 - i) * minute + timedelta(seconds=5))
               for i in range(5)]
    assert asyncio.run(_store(db, [*ba_dinh, ba_dinh[2]])) == [True] * 5 + [False]
    # Hoàn Kiếm: four reports, then a fifth stored late (an older time) after a tick
    hoan_kiem = [(f"hk-{i}", "00070", now - (20 - i) * minute) for i in range(4)]
    asyncio.run(_store(db, hoan_kiem))

    def runner() -> SingletonRules:
        return SingletonRules(db, [FeedbackSurges(settings, rules, COMMUNES)])

    async def first_ticks() -> tuple[int, int, int]:
        holder, other = runner(), runner()
        fired = await holder.tick(now, force=True)
        assert await other.tick(now, force=True) == 0  # not the lock holder
        await _store(db, [("hk-late", "00070", now - 25 * minute)])
        late = await holder.tick(now + timedelta(seconds=30), force=True)
        await holder.close()
        again = await other.tick(now + timedelta(seconds=30), force=True)  # takes over
        await other.close()
        return fired, late, again

    fired, late, again = asyncio.run(first_ticks())
    # the late alert fires 16 minutes ago, and is reminded of at once (15 minutes)
    assert (fired, late, again) == (1, 2, 0)  # a new holder resumes: nothing twice
    alerts = rows(db, "SELECT commune_code, state, severity, labels, firing_at, annotations"
                      " FROM alerts WHERE rule_id = %s ORDER BY commune_code", RULE)
    assert [(c, s, sev) for c, s, sev, *_ in alerts] == [
        ("00004", "firing", "warning"), ("00070", "firing", "warning")]
    labels = alerts[0][3]
    assert (labels["department"], labels["province_code"], labels["domain"]) == \
        ("construction", "01", "flood")
    assert alerts[0][4] == now - 3 * minute  # the boundary after the fifth report's minute
    assert alerts[1][4] == now - 16 * minute  # five in [-25, -16): the late report counts
    assert alerts[0][5]["summary_en"] == \
        "Ba Dinh Ward: 5 citizen flooding reports within 30 minutes"
    sent = rows(db, "SELECT o.receiver, o.payload FROM alert_outbox o JOIN alerts a"
                    " USING (fingerprint) WHERE a.commune_code = '00004'")
    assert {r for r, _ in sent} >= {"alertmanager"}
    payload = next(p for r, p in sent if r == "alertmanager")
    assert "construction" in str(payload) and "/console/" in str(payload)
    assert rows(db, "SELECT rule_id FROM alert_cursors WHERE fingerprint = %s",
                PROGRESS) == [(PROGRESS,)]

    async def intake() -> list[int]:
        cfg = config()
        cfg = type(cfg)(sla=cfg.sla, sops=cfg.sops, rota=cfg.rota,
                        auto_rules=frozenset({RULE}), reopen_window=cfg.reopen_window,
                        console_url=cfg.console_url)
        async with await AsyncConnection.connect(db, autocommit=True) as conn:
            return await intake_once(conn, cfg, now)

    opened = asyncio.run(intake())
    assert len(opened) == 1  # one incident per rule and province: both communes join it
    assert rows(db, "SELECT rule_id, department, province_code FROM incidents") == [
        (RULE, "construction", "01")]

    async def later() -> int:
        holder = runner()
        resolved = await holder.tick(now + 40 * minute, force=True)
        await holder.close()
        return resolved

    assert asyncio.run(later()) == 3  # a reminder and two resolutions
    done = rows(db, "SELECT commune_code, state, resolved_at FROM alerts WHERE rule_id = %s"
                    " ORDER BY commune_code", RULE)
    # clear 2: fewer than two reports left in the 30-minute window
    assert done == [("00004", "resolved", now + 26 * minute),
                    ("00070", "resolved", now + 13 * minute)]
    with psycopg.connect(db) as conn:
        ledger = conn.execute("SELECT count(*) FROM alert_transitions t JOIN alerts a"
                              " USING (fingerprint) WHERE a.rule_id = %s AND t.kind = 'state'",
                              (RULE,)).fetchone()
    assert ledger == (4,)


def test_rule_files_with_feedback_rules_pass_ioc_rules_check(tmp_path: Path) -> None:
    import subprocess
    import sys

    ioc = str(Path(sys.executable).with_name("ioc"))
    ok = subprocess.run([ioc, "rules", "check", str(ROOT / "config/rules/feedback.yaml")],
                        capture_output=True, text=True, check=False)
    assert ok.returncode == 0, ok.stdout + ok.stderr
    bad = tmp_path / "bad.yaml"
    bad.write_text((ROOT / "config/rules/feedback.yaml").read_text(encoding="utf-8")
                   .replace("window: 30m", "window: 30m\n        scope: province"),
                   encoding="utf-8")
    out = subprocess.run([ioc, "rules", "check", str(bad)], capture_output=True, text=True,
                         check=False)
    assert out.returncode != 0
    line = bad.read_text(encoding="utf-8").splitlines().index("        scope: province") + 1
    assert f"{bad}:{line}: rule flooding_reports_surge.scope: feedback rules are per commune" \
        in out.stdout + out.stderr
    typo = tmp_path / "typo.yaml"
    typo.write_text((ROOT / "config/rules/feedback.yaml").read_text(encoding="utf-8")
                    .replace("received.flooding", "received.floding"), encoding="utf-8")
    out = subprocess.run([ioc, "rules", "check", str(typo)], capture_output=True, text=True,
                         check=False)
    assert out.returncode != 0
    assert "rule flooding_reports_surge.metric: no service 'floding' in config/feedback.yaml" \
        in out.stderr


def test_the_worker_evaluates_surges_with_its_singleton_rules(pipe: Pipeline) -> None:
    """``ioc worker`` (the process that runs the other singleton rules) fires the shipped
    rule for reports stored by the API's write path, with the owner department."""
    from geo.reference import read_reference
    from geo.store import write_units
    from ioc.api.auth import ensure_department

    with psycopg.connect(pipe.conninfo, autocommit=True) as conn:
        write_units(conn, read_reference(pipe.settings.resolve(pipe.settings.geo.reference))
                    .units, source="bundled", valid_from=date(2025, 7, 1))
        ensure_department(conn, "citizen-app", ["feedback"], "Ứng dụng công dân")
    now = datetime.now(UTC).replace(second=0, microsecond=0)
    asyncio.run(_store(pipe.conninfo, [
        (f"w-{i}", "00004", now - (8 - i) * timedelta(minutes=1)) for i in range(5)]))
    pipe.start_worker(extra_env={"IOC__ALERTS__SINGLETON_EVERY_S": "1",
                                 "IOC__ALERTS__FEEDBACK_SETTLE_S": "5"})
    state = pipe.wait_for(f"SELECT coalesce(max(state), 'none') || '/' ||"
                          f" coalesce(max(labels->>'department'), '') FROM alerts"
                          f" WHERE rule_id = '{RULE}' AND commune_code = '00004'",
                          "firing/construction", timeout=120)
    assert state == "firing/construction"
    assert pipe.query("SELECT count(*) FROM alert_outbox WHERE receiver = 'alertmanager'"
                      )[0][0] >= 1


PROPERTY_RULES = """
groups:
  - name: surges
    rules:
      - id: flooding_surge_10m
        feed: feedback
        metric: feedback.received.flooding
        window: 10m
        op: ">="
        threshold: 3
        clear: 2
        keep_firing_for: 2m
        severity: warning
        owner: construction
        annotations:
          summary: { vi: "{commune}: {value:.0f}", en: "{commune_en}: {value:.0f}" }
"""
_TABLES = ("feedback_reports, rollup_1m, rollup_1h_pending, alerts, alert_transitions,"
           " alert_cursors, alert_outbox")


@pytest.fixture(scope="module")
def surge_db(stack: Settings) -> Iterator[tuple[FeedbackDb, str]]:
    """A database of its own (the property truncates it): the app's and the owner's."""
    from geo.reference import read_reference
    from geo.store import write_units
    from ioc.api.auth import ensure_department

    with fresh_database(stack, "ioc_surge") as (name, conninfo):
        with psycopg.connect(conninfo, autocommit=True) as conn:
            write_units(conn, read_reference(stack.resolve(stack.geo.reference)).units,
                        source="bundled", valid_from=date(2025, 7, 1))
            ensure_department(conn, "citizen-app", ["feedback"], "Ứng dụng công dân")
        settings = stack.model_copy(update={
            "database": stack.database.model_copy(update={"dbname": name})})
        yield FeedbackDb(name, conninfo, settings), stack.database.owner_conninfo(dbname=name)


@settings(max_examples=25, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_any_store_order_and_batching_give_the_same_timeline_on_the_database(
        surge_db: tuple[FeedbackDb, str], tmp_path: Path, data: st.DataObject) -> None:
    """The kind on the real database (its SQL reads, persist, the stored horizon):
    reports stored in any order and batches, replayed, late, with ticks and a change of
    holder between them, give the ledger of storing them all and ticking once."""
    feedback_db, owner = surge_db
    db = feedback_db.conninfo
    path = tmp_path / "surges.yaml"
    path.write_text(PROPERTY_RULES, encoding="utf-8")
    rules = load_rules([path])
    base = datetime.now(UTC).replace(second=0, microsecond=0) - timedelta(hours=2)
    raw = data.draw(st.lists(st.tuples(st.sampled_from(["00004", "00070"]),
                                       st.integers(0, 25), st.integers(0, 59)),
                             min_size=3, max_size=14), label="reports")
    reports = [(f"p-{i}", c, base + timedelta(minutes=mi, seconds=s))
               for i, (c, mi, s) in enumerate(raw)]
    order = data.draw(st.permutations(reports), label="order")
    cuts = data.draw(st.lists(st.integers(0, len(order)), min_size=1, max_size=4),
                     label="ticks")
    final = base + timedelta(minutes=90)

    def ledger() -> dict[str, list[tuple[datetime, datetime | None]]]:
        with psycopg.connect(db) as conn:
            rows_ = conn.execute("SELECT fingerprint, kind, to_state, at FROM"
                                 " alert_transitions ORDER BY fingerprint, seq").fetchall()
        by_fp: dict[str, list[tuple[str, str, datetime]]] = {}
        for fp, kind, to_state, at in rows_:
            by_fp.setdefault(fp, []).append((kind, to_state, at))
        return {fp: iv for fp, es in by_fp.items() if (iv := firing_intervals(es))}

    async def tick(wall: datetime, holder: list[FeedbackSurges]) -> None:
        async with await AsyncConnection.connect(db, autocommit=True) as conn:
            if not holder:  # a new lock holder: from the stored state
                holder.append(FeedbackSurges(feedback_db.settings, rules, COMMUNES))
                await holder[0].restore(conn)
            async with conn.transaction():
                planned = await holder[0].plan(conn, wall)
            holder[0].commit(planned)

    async def run(stores: list[list[tuple[str, str, datetime]]], walls: list[datetime],
                  restarts: set[int]) -> None:
        with psycopg.connect(owner, autocommit=True) as conn:
            conn.execute(f"TRUNCATE {_TABLES} CASCADE".encode())
        holder: list[FeedbackSurges] = []
        for i, (batch, wall) in enumerate(zip(stores, walls, strict=True)):
            await _store(db, batch)
            if i in restarts:
                holder.clear()
            await tick(wall, holder)

    batches: list[list[tuple[str, str, datetime]]] = []
    walls: list[datetime] = []
    start = 0
    for n, cut in enumerate(sorted({*cuts, len(order)})):
        batch = list(order[start:cut])
        replay: bool = data.draw(st.booleans(), label=f"replay {n}")
        if batch and replay:
            batch.append(batch[0])  # a replay stores nothing
        batches.append(batch)
        walls.append(base + timedelta(minutes=data.draw(st.integers(5, 40),
                                                        label=f"wall {n}")))
        start = cut
    walls = [*sorted(walls[:-1]), final]
    restarts = {i for i in range(len(batches)) if data.draw(st.booleans(), label=f"r{i}")}
    asyncio.run(run(batches, walls, restarts))
    interleaved = ledger()
    asyncio.run(run([reports], [final], set()))
    assert interleaved == ledger()
