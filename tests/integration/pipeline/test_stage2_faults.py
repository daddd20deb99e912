"""A stage-2 batch is one unit on the real TimescaleDB: when the alert step cannot
persist, nothing of the batch commits, the batch is retried whole, and the retry makes
exactly the transitions the failed attempt would have made.

The fault is injected inside PostgreSQL: a trigger on ``alert_transitions`` raises for
the first attempts (a sequence counts them, because a sequence is not rolled back). With
``admin_shutdown`` it is the error a PostgreSQL restart gives (13.1: this lost alerts);
with a data error it is a bug outside the rows (retried, counted as ``unexpected``).
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg
import pytest
from iocdev.sandbox import fresh_database
from psycopg.conninfo import make_conninfo

from alerts.model import CommuneInfo
from alerts.ruleload import load_rules
from ioccore import metrics
from ioccore.events.record import Record, encode_records
from ioccore.settings import Settings
from streams.alerting import PartitionAlerts
from streams.health import Health
from streams.retry import run_batch
from streams.stage2 import Enriched, Stage2, make_pool
from tests.support.rulefiles import pm25_entry, rule_file

pytestmark = pytest.mark.integration

RULES = rule_file("faults", pm25_entry("faults_pm25_high", window="5m",
                                       summary="PM2.5 {commune}: {value:.0f}",
                                       summary_en="PM2.5 {commune_en}: {value:.0f}"))
COMMUNES = {"00004": CommuneInfo("Ba Đình", "01", "Hà Nội")}


def reading(i: int, t0: datetime, value: float) -> Record:
    return Record(event_id=f"r{i}", source_id=f"aq-{i % 3}", department="stnmt",
                  feed="sensor", occurred_at=t0 + timedelta(seconds=i),
                  received_at=t0.timestamp(), commune_code="00004", province_code="01",
                  geo="code", metric="pm25", value=value, unit="ug/m3")


@pytest.fixture
def db(stack: Settings, pg_conninfo: str) -> Iterator[tuple[str, str]]:
    """(application conninfo, superuser conninfo) of a fresh database."""
    with fresh_database(stack) as (name, conninfo):
        yield conninfo, make_conninfo(pg_conninfo, dbname=name)


def inject(admin: str, errcode: str, failures: int) -> None:
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute("CREATE SEQUENCE fault_attempts")
        conn.execute("GRANT ALL ON fault_attempts TO PUBLIC")  # the app role is no superuser
        conn.execute(f"""
            CREATE FUNCTION fault() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN
              IF nextval('fault_attempts') <= {failures} THEN
                RAISE EXCEPTION 'injected fault' USING ERRCODE = '{errcode}';
              END IF;
              RETURN NEW;
            END $$""")
        conn.execute("CREATE TRIGGER fault BEFORE INSERT ON alert_transitions"
                     " FOR EACH ROW EXECUTE FUNCTION fault()")


def run_two_batches(conninfo: str, settings: Settings, tmp: Path) -> list[int]:
    (tmp / "rules.yaml").write_text(RULES)
    rules = load_rules([tmp / "rules.yaml"])
    t0 = datetime.now(UTC).replace(second=0, microsecond=0) - timedelta(minutes=3)
    first = [reading(i, t0, 150.0) for i in range(30)]           # fires
    second = [reading(i, t0, 10.0) for i in range(60, 120)]      # avg 56.7 > clear: firing

    async def run() -> list[int]:
        alerts = PartitionAlerts(settings, rules, COMMUNES)
        stage2 = Stage2(make_pool(conninfo), allowed_lateness_s=3600, alerts=alerts)
        health = Health()
        out = []
        for n, records in enumerate((first, second)):
            out.append(await run_batch(stage2, [Enriched("e", 0, n, encode_records(records))],
                                       messages=1, health=health, retry_max_s=0.2))
        await stage2.close()
        return out

    return asyncio.run(run())


def ledger(conninfo: str) -> dict[str, object]:
    with psycopg.connect(conninfo) as conn:
        def one(sql: str) -> object:
            row = conn.execute(sql).fetchone()
            return row[0] if row else None
        return {
            "rows": one("SELECT count(*) FROM sensor_readings"),
            "rolled_up": one("SELECT sum(count) FROM rollup_1m WHERE metric = 'pm25'"),
            "transitions": [tuple(r) for r in conn.execute(
                "SELECT seq, from_state, to_state FROM alert_transitions ORDER BY seq")],
            "state": one("SELECT state FROM alerts"),
            "outbox": one("SELECT count(*) FROM alert_outbox"),
        }


@pytest.mark.parametrize(("errcode", "cause"), [("57P01", "database"),  # admin_shutdown
                                               ("22023", "unexpected")])  # invalid param
def test_a_batch_whose_alerts_cannot_persist_commits_nothing_and_is_retried_whole(
        db: tuple[str, str], settings: Settings, tmp_path: Path, errcode: str,
        cause: str) -> None:
    conninfo, admin = db
    inject(admin, errcode, failures=2)
    before = metrics.BATCH_RETRIES.labels("stage2", cause)._value.get()
    failures = run_two_batches(conninfo, settings, tmp_path)
    # event time: the first minute is evaluated (and the alert fires) once the second
    # batch has moved the sources past its end, so the second batch is the faulty one
    assert failures == [0, 2]
    assert metrics.BATCH_RETRIES.labels("stage2", cause)._value.get() - before == 2
    got = ledger(conninfo)
    # every event once, rolled up once, the alert fired once and stayed firing
    assert got == {"rows": 90, "rolled_up": 90,
                   "transitions": [(1, "inactive", "firing")], "state": "firing",
                   "outbox": 1}


def test_the_same_batches_without_faults_give_the_same_ledger(
        db: tuple[str, str], settings: Settings, tmp_path: Path) -> None:
    conninfo, _ = db
    assert run_two_batches(conninfo, settings, tmp_path) == [0, 0]
    assert ledger(conninfo) == {"rows": 90, "rolled_up": 90,
                                "transitions": [(1, "inactive", "firing")],
                                "state": "firing", "outbox": 1}


SILENT = """
groups:
  - name: silent
    rules:
      - id: faults_source_silent
        kind: absence
        by: source
        feed: sensor
        silent_for: 10m
        severity: warning
        annotations:
          summary: { vi: "{source_id} im lặng", en: "{source_id} silent" }
"""


def test_the_idle_tick_notices_a_source_gone_silent_without_new_batches(
        db: tuple[str, str], settings: Settings, tmp_path: Path) -> None:
    conninfo, _ = db
    (tmp_path / "silent.yaml").write_text(SILENT)
    rules = load_rules([tmp_path / "silent.yaml"])
    t0 = datetime.now(UTC)

    async def run() -> tuple[int, int, int]:
        stage2 = Stage2(make_pool(conninfo), allowed_lateness_s=3600,
                        alerts=PartitionAlerts(settings, rules, COMMUNES))
        await stage2.process([Enriched("e", 0, 0, encode_records([reading(1, t0, 5.0)]))])
        quiet = await stage2.tick(t0 + timedelta(minutes=5))
        silent = await stage2.tick(t0 + timedelta(minutes=11))
        again = await stage2.tick(t0 + timedelta(minutes=12))
        await stage2.close()
        return quiet, silent, again

    assert asyncio.run(run()) == (0, 1, 0)
    assert ledger(conninfo)["state"] == "firing"
