"""Property (hypothesis) on the real TimescaleDB: whatever attempts fail, and wherever
(the rollup statement, the alert-transition insert), the ledger of a sequence of stage-2
batches is the fault-free ledger for the same batches; and rows and rollups are the same
however the events are split into batches.

Faults: a statement trigger on ``rollup_1m`` and a row trigger on ``alert_transitions``
draw numbers from one sequence (not rolled back) and raise ``admin_shutdown`` when the
number is in ``fault_plan``. The tables are emptied between runs of one database.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from itertools import pairwise
from pathlib import Path

import psycopg
import pytest
from hypothesis import HealthCheck, given
from hypothesis import settings as hsettings
from hypothesis import strategies as st
from iocdev.sandbox import fresh_database
from psycopg.conninfo import make_conninfo

from alerts.model import CommuneInfo
from alerts.ruleload import load_rules
from alerts.rules import RuleSet
from ioccore.events.record import Record, encode_records
from ioccore.settings import Settings
from streams.alerting import PartitionAlerts
from streams.health import Health
from streams.retry import run_batch
from streams.stage2 import Enriched, Stage2, make_pool
from tests.integration.pipeline.test_stage2_faults import COMMUNES, RULES

pytestmark = pytest.mark.integration

T0 = datetime.now(UTC).replace(second=0, microsecond=0) - timedelta(minutes=30)
# minute m: 6 readings; high (fires) for minutes 0-1, low (resolves) for 2-3, high at 4
VALUES = [150.0, 150.0, 10.0, 10.0, 150.0]
EVENTS = [Record(event_id=f"p{m}-{i}", source_id=f"aq-{i % 2}", department="stnmt",
                 feed="sensor", occurred_at=T0 + timedelta(minutes=m, seconds=10 * i),
                 received_at=T0.timestamp(), commune_code="00004", province_code="01",
                 geo="code", metric="pm25", value=v, unit="ug/m3")
          for m, v in enumerate(VALUES) for i in range(6)]
TABLES = ("sensor_readings, sensor_readings_keys, rollup_1m, rollup_1h_pending, sources, alerts,"
          " alert_transitions, alert_outbox")

# Two communes, each on its own enriched partition (as stage 1 sends them), so each batch
# spans both of stage 2's lanes: two transactions at once, committing in either order.
LANE_COMMUNES = {**COMMUNES, "00070": CommuneInfo("Hoàn Kiếm", "01", "Hà Nội")}
TWO_COMMUNES = [
    Record(event_id=f"{code}-{m}-{i}", source_id=f"aq-{code}-{i % 2}", department="stnmt",
           feed="sensor", occurred_at=T0 + timedelta(minutes=m, seconds=10 * i),
           received_at=T0.timestamp(), commune_code=code, province_code="01", geo="code",
           metric="pm25", value=v, unit="ug/m3")
    for m, v in enumerate(VALUES) for i in range(6) for code in ("00004", "00070")]


@pytest.fixture(scope="module")
def db(stack: Settings, pg_conninfo: str, tmp_path_factory: pytest.TempPathFactory
       ) -> Iterator[tuple[str, str, RuleSet]]:
    path = Path(tmp_path_factory.mktemp("rules")) / "rules.yaml"
    path.write_text(RULES)
    with fresh_database(stack) as (name, conninfo):
        admin = make_conninfo(pg_conninfo, dbname=name)
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute("CREATE SEQUENCE fault_attempts")
            conn.execute("CREATE TABLE fault_plan (attempt bigint PRIMARY KEY)")
            conn.execute("GRANT ALL ON fault_plan, fault_attempts TO PUBLIC")
            conn.execute("""
                CREATE FUNCTION fault() RETURNS trigger LANGUAGE plpgsql AS $$
                DECLARE
                  draw bigint := nextval('fault_attempts');  -- once per firing, not per row
                BEGIN
                  IF EXISTS (SELECT 1 FROM fault_plan WHERE attempt = draw) THEN
                    RAISE EXCEPTION 'injected fault' USING ERRCODE = 'admin_shutdown';
                  END IF;
                  RETURN NULL;
                END $$""")
            conn.execute("CREATE TRIGGER fault_rollup AFTER INSERT ON rollup_1m"
                         " FOR EACH STATEMENT EXECUTE FUNCTION fault()")
            conn.execute("CREATE TRIGGER fault_transition AFTER INSERT ON alert_transitions"
                         " FOR EACH ROW EXECUTE FUNCTION fault()")
        yield conninfo, admin, load_rules([path])


def reset(admin: str, faults: set[int], events: list[Record], cuts: list[int]
          ) -> list[list[Record]]:
    """Empty the tables, plan the faults; ``events`` cut into batches at ``cuts``."""
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f"TRUNCATE {TABLES}, fault_plan")
        conn.execute("ALTER SEQUENCE fault_attempts RESTART")
        for n in faults:
            conn.execute("INSERT INTO fault_plan VALUES (%s)", (n,))
    bounds = [0, *sorted(set(cuts)), len(events)]
    return [events[a:b] for a, b in pairwise(bounds) if b > a]


def run(db: tuple[str, str, RuleSet], settings_: Settings, cuts: list[int],
        faults: set[int], *, events: list[Record] = EVENTS, lanes: int = 1
        ) -> dict[str, object]:
    """``events`` in batches cut at ``cuts``, each batch one message per commune on its
    own partition (the first commune seen on 0, the next on 1: as stage 1 sends them),
    through a stage 2 of ``lanes`` lanes; the ledger it leaves."""
    conninfo, admin, rules = db
    batches = reset(admin, faults, events, cuts)
    partition = {c: n for n, c in enumerate(dict.fromkeys(r.commune_code for r in events))}

    async def go() -> int:
        stage2 = Stage2(make_pool(conninfo, max_size=3), allowed_lateness_s=7200,
                        alerts=PartitionAlerts(settings_, rules, LANE_COMMUNES), lanes=lanes)
        failures = 0
        for n, batch in enumerate(batches):
            parts: dict[int, list[Record]] = {}
            for r in batch:
                parts.setdefault(partition[r.commune_code], []).append(r)
            messages = [Enriched("e", p, n, encode_records(part)) for p, part in parts.items()]
            failures += await run_batch(stage2, messages, messages=len(messages),
                                        health=Health(), retry_max_s=0.01)
        await stage2.close()
        return failures

    failures = asyncio.run(go())
    with psycopg.connect(conninfo) as conn:
        return {
            "failures": failures,
            "rows": conn.execute("SELECT count(*) FROM sensor_readings").fetchone(),
            "rollups": conn.execute("SELECT commune_code, bucket, count, sum FROM rollup_1m"
                                    " ORDER BY 1, 2").fetchall(),
            "transitions": conn.execute(
                "SELECT fingerprint, seq, from_state, to_state, at FROM alert_transitions"
                " ORDER BY 1, 2").fetchall(),
            "outbox": conn.execute("SELECT count(*) FROM alert_outbox").fetchone(),
        }


def expected_rollups() -> list[tuple[str, datetime, int, float]]:
    count: Counter[datetime] = Counter()
    total: dict[datetime, float] = {}
    for r in EVENTS:
        minute = r.occurred_at.replace(second=0)
        count[minute] += 1
        total[minute] = total.get(minute, 0.0) + (r.value or 0.0)
    return [("00004", m, count[m], total[m]) for m in sorted(count)]


@hsettings(max_examples=12, deadline=None, suppress_health_check=[
    HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(cuts=st.lists(st.integers(1, len(EVENTS) - 1), max_size=6),
       faults=st.sets(st.integers(1, 25), max_size=6))
def test_faults_never_change_the_ledger(db: tuple[str, str, RuleSet], settings: Settings,
                                        cuts: list[int], faults: set[int]) -> None:
    clean = run(db, settings, cuts, set())
    faulty = run(db, settings, cuts, faults)
    assert clean["failures"] == 0
    if 1 in faults:  # the first draw is the first batch's rollup statement
        assert isinstance(faulty["failures"], int) and faulty["failures"] >= 1
    assert {k: v for k, v in faulty.items() if k != "failures"} == \
        {k: v for k, v in clean.items() if k != "failures"}
    assert clean["rows"] == (len(EVENTS),)
    rollups = clean["rollups"]
    assert isinstance(rollups, list)
    assert [tuple(r) for r in rollups] == expected_rollups()


@hsettings(max_examples=10, deadline=None, suppress_health_check=[
    HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(cuts=st.lists(st.integers(1, len(TWO_COMMUNES) - 1), max_size=5),
       faults=st.sets(st.integers(1, 30), max_size=6))
def test_two_lanes_under_faults_give_the_one_lane_ledger(
        db: tuple[str, str, RuleSet], settings: Settings, cuts: list[int],
        faults: set[int]) -> None:
    """A batch written as two concurrent transactions (one per lane), whichever of them
    fails and however often, leaves the ledger one serial transaction per batch leaves."""
    serial = run(db, settings, cuts, set(), events=TWO_COMMUNES, lanes=1)
    laned = run(db, settings, cuts, faults, events=TWO_COMMUNES, lanes=2)
    assert serial["failures"] == 0
    assert {k: v for k, v in laned.items() if k != "failures"} == \
        {k: v for k, v in serial.items() if k != "failures"}
    assert serial["rows"] == (len(TWO_COMMUNES),)
    transitions = serial["transitions"]
    assert isinstance(transitions, list)
    assert {t[0] for t in transitions} and len({t[0] for t in transitions}) == 2  # both fire
