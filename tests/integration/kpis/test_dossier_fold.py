"""The dossier fold (trigger on service_events, migration 0026) on the real database:
the same events give the same dossiers and daily KPI counts however they are ordered,
batched, duplicated or replayed (hypothesis), and the counts moved event by event equal
the counts recomputed from the dossiers: what makes the KPIs exact."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from iocdev.sandbox import fresh_database

from ioccore.events.record import Record
from ioccore.settings import Settings
from streams.sinks.timescale import TimescaleSink

pytestmark = pytest.mark.integration

T0 = datetime(2026, 10, 31, 16, 0, tzinfo=UTC)  # 23:00 in Vietnam: a month boundary is near
STATUSES = ("received", "in_progress", "resolved", "returned", "paid")
# As the sink writes (migration 0011): claim the identity, insert only what it claimed.
INSERT = """
WITH v (time, event_id, source_id, commune_code, dossier_id, agency, channel, status, due_at,
        resolved_at, fee_bearing, paid_online, digitised) AS (
    VALUES (%s::timestamptz, %s, %s, %s, %s, %s, %s, %s, %s::timestamptz, %s::timestamptz,
            %s::boolean, %s::boolean, %s::boolean)
), k AS (
    INSERT INTO service_events_keys (source_id, event_id, time)
    SELECT source_id, event_id, time FROM v ON CONFLICT DO NOTHING
    RETURNING source_id, event_id
)
INSERT INTO service_events (time, event_id, source_id, department, commune_code,
    province_code, dossier_id, procedure_code, agency, channel, status, due_at, resolved_at,
    fee_bearing, paid_online, digitised, geo, received_at)
SELECT v.time, v.event_id, v.source_id, 'pscc', v.commune_code, '01', v.dossier_id, '1.0001',
       v.agency, v.channel, v.status, v.due_at, v.resolved_at, v.fee_bearing, v.paid_online,
       v.digitised, 'code', now()
FROM v JOIN k USING (source_id, event_id)
"""
COMPARED = ("SELECT agency, dossier_id, commune_code, province_code, procedure_code, first_at,"
            " first_key, digitised, received_at, received_key, received_channel, resolved_at,"
            " resolved_key, resolved_channel, resolved_on_time, returned_at, paid_at, paid_key,"
            " paid_fee_bearing, paid_online, due_at, due_event_at, due_key, events"
            " FROM dossiers ORDER BY agency, dossier_id")
COUNTS = ("received", "received_online", "received_digitised", "resolved", "resolved_online",
          "resolved_with_due", "resolved_on_time", "paid_fee_bearing", "paid_online")
DAILY = (f"SELECT day, agency, province_code, commune_code, {', '.join(COUNTS)}"
         " FROM kpi_counts_daily WHERE received + resolved + paid_fee_bearing > 0"
         " ORDER BY 1, 2, 3, 4")
# Ground truth: the daily counts recomputed from scratch from the dossier rows.
RECOMPUTED = (f"SELECT f.day, f.agency, f.province_code, f.commune_code, "
              f"{', '.join(f'sum(f.{c})' for c in COUNTS)}"
              " FROM dossiers d, dossier_facts(d) f GROUP BY 1, 2, 3, 4 ORDER BY 1, 2, 3, 4")

Event = tuple[Any, ...]


@st.composite
def event_sets(draw: st.DrawFn) -> list[Event]:
    """Up to 14 distinct events of 3 dossiers; some share a time (ties broken by key)."""
    n = draw(st.integers(1, 14))
    out = []
    for i in range(n):
        dossier = draw(st.sampled_from(("X", "Y", "Z")))
        status = draw(st.sampled_from(STATUSES))
        at = T0 + timedelta(minutes=draw(st.integers(0, 180)))
        due = T0 + timedelta(minutes=draw(st.integers(0, 240)))
        fee = draw(st.booleans())
        paid_online = draw(st.booleans()) and fee if status == "paid" else None
        out.append((at, f"e{i}", draw(st.sampled_from(("s1", "s2"))),
                    draw(st.sampled_from(("00004", "00008"))), dossier,
                    draw(st.sampled_from(("ubnd-00004", "stp-01"))) if dossier != "X"
                    else "ubnd-00004",
                    draw(st.sampled_from(("online", "offline"))), status, due,
                    at if status == "resolved" else None, fee, paid_online, draw(st.booleans())))
    return out


@pytest.fixture(scope="module")
def conninfo(stack: Settings) -> Iterator[str]:
    with fresh_database(stack, "ioc_fold") as (name, _):
        yield stack.database.owner_conninfo(name)  # the examples TRUNCATE: the owner's right


def _load(conn: psycopg.Connection[Any], batches: list[list[Event]]
          ) -> tuple[list[Any], list[Any]]:
    conn.execute("TRUNCATE service_events, service_events_keys, dossiers, kpi_counts_daily")
    for batch in batches:
        with conn.transaction(), conn.cursor() as cur:
            cur.executemany(INSERT, [(e[0], e[1], *e[2:]) for e in batch])
    daily = conn.execute(DAILY).fetchall()
    assert daily == conn.execute(RECOMPUTED).fetchall()  # the moves add up to the truth
    return conn.execute(COMPARED).fetchall(), daily


@settings(max_examples=40, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(events=event_sets(), data=st.data())
def test_same_events_same_dossiers_in_any_order_batching_and_replay(
        conninfo: str, events: list[Event], data: st.DataObject) -> None:
    with psycopg.connect(conninfo, autocommit=True) as conn:
        reference = _load(conn, [sorted(events)])
        shuffled = data.draw(st.permutations(events))
        replayed = data.draw(st.lists(st.sampled_from(events), max_size=6))
        stream = [*shuffled, *replayed]
        cuts = sorted(data.draw(st.sets(st.integers(1, max(1, len(stream) - 1)), max_size=4)))
        batches = [stream[a:b] for a, b in zip([0, *cuts], [*cuts, len(stream)], strict=True)]
        assert _load(conn, [b for b in batches if b]) == reference


def test_two_writers_on_the_same_dossiers_give_the_sequential_answer(conninfo: str) -> None:
    """Two connections fold events of the same dossiers at once (as two workers after a
    rebalance could): row locks order them, a deadlock is retried like the sink does,
    and the result equals loading everything from one connection."""
    import random
    import threading

    r = random.Random(5)
    events: list[Event] = []
    for i in range(400):
        status = STATUSES[i % 5]
        at = T0 + timedelta(minutes=r.randint(0, 600))
        events.append((at, f"c{i}", f"s{i % 3}", "00004", f"D{i % 40}", "ubnd-00004",
                       r.choice(("online", "offline")), status, at + timedelta(hours=5),
                       at if status == "resolved" else None, True,
                       r.random() < 0.5 if status == "paid" else None, r.random() < 0.5))
    with psycopg.connect(conninfo, autocommit=True) as conn:
        reference = _load(conn, [sorted(events)])
        conn.execute("TRUNCATE service_events, service_events_keys, dossiers, kpi_counts_daily")
    halves = [events[0::2], events[1::2]]
    errors: list[BaseException] = []

    def writer(mine: list[Event], seed: int) -> None:
        rr = random.Random(seed)
        mine = mine[:]
        rr.shuffle(mine)
        try:
            with psycopg.connect(conninfo, autocommit=True) as conn:
                for start in range(0, len(mine), 25):
                    batch = mine[start:start + 25]
                    for _attempt in range(20):
                        try:
                            with conn.transaction(), conn.cursor() as cur:
                                cur.executemany(INSERT, [(e[0], e[1], *e[2:]) for e in batch])
                            break
                        except psycopg.errors.DeadlockDetected:
                            continue
        except BaseException as exc:  # reported by the main thread
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(h, n)) for n, h in enumerate(halves)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert not errors, errors
    with psycopg.connect(conninfo, autocommit=True) as conn:
        daily = conn.execute(DAILY).fetchall()
        assert daily == conn.execute(RECOMPUTED).fetchall()
        assert (conn.execute(COMPARED).fetchall(), daily) == reference


def test_a_new_dossier_is_written_once_and_an_existing_one_merged(conninfo: str) -> None:
    """Migration 0041: a dossier new to the table is inserted as its fold (one row write,
    no placeholder updated); one that exists is merged under its lock, with the same
    answer as loading everything at once."""
    def ev(i: int, dossier: str, status: str, minutes: int) -> Event:
        at = T0 + timedelta(minutes=minutes)
        return (at, f"n{i}", "s1", "00004", dossier, "ubnd-00004", "online", status,
                at + timedelta(days=1), at if status == "resolved" else None, False, None,
                True)

    first = [ev(0, "A", "received", 0), ev(1, "A", "in_progress", 5), ev(2, "B", "received", 1)]
    second = [ev(3, "A", "resolved", 30), ev(4, "C", "received", 2)]
    written = "SELECT pg_stat_get_xact_tuples_inserted('dossiers'::regclass), " \
              "pg_stat_get_xact_tuples_updated('dossiers'::regclass)"
    with psycopg.connect(conninfo, autocommit=True) as conn:
        reference = _load(conn, [first + second])
        conn.execute("TRUNCATE service_events, service_events_keys, dossiers, kpi_counts_daily")
        moves = []
        for batch in (first, second):  # the counters hold unflushed earlier ones: deltas
            with conn.transaction(), conn.cursor() as cur:
                before = conn.execute(written).fetchone()
                cur.executemany(INSERT, batch)
                after = conn.execute(written).fetchone()
                assert before is not None and after is not None
                moves.append((after[0] - before[0], after[1] - before[1]))
        daily = conn.execute(DAILY).fetchall()
        assert daily == conn.execute(RECOMPUTED).fetchall()
        assert (conn.execute(COMPARED).fetchall(), daily) == reference
    # executemany: one statement (and fold) per event
    assert moves == [(2, 1), (1, 1)], moves  # A and B inserted, A merged; C new, A merged


def _record(e: Event) -> Record:
    """An event of :func:`event_sets` as stage 2 writes it (the INSERT's constants)."""
    at, event_id, source_id, commune, dossier, agency, channel, status, due, resolved, fee, \
        paid_online, digitised = e
    return Record(event_id=event_id, source_id=source_id, department="pscc", feed="service",
                  occurred_at=at, received_at=T0.timestamp(), commune_code=commune,
                  province_code="01", geo="code", dossier_id=dossier, procedure_code="1.0001",
                  agency=agency, channel=channel, status=status, due_at=due,
                  resolved_at=resolved, fee_bearing=fee, paid_online=paid_online,
                  digitised=digitised)


def _sink_load(conninfo: str, batches: list[list[Event]]) -> tuple[list[Any], list[Any]]:
    """Like :func:`_load`, through the sink's statement (migration 0125: it queues the
    dossier fold's rows itself; the row trigger stands aside)."""
    async def write() -> None:
        async with await psycopg.AsyncConnection.connect(conninfo) as conn:
            await TimescaleSink.prepare(conn)
            sink = TimescaleSink()
            for batch in batches:
                async with conn.transaction():
                    await sink.write(conn, [_record(e) for e in batch], [False] * len(batch))

    with psycopg.connect(conninfo, autocommit=True) as conn:
        conn.execute("TRUNCATE service_events, service_events_keys, dossiers, "
                      "kpi_counts_daily, dossier_events_pending")
    asyncio.run(write())
    with psycopg.connect(conninfo, autocommit=True) as conn:
        daily = conn.execute(DAILY).fetchall()
        assert daily == conn.execute(RECOMPUTED).fetchall()
        assert conn.execute("SELECT count(*) FROM dossier_events_pending").fetchone() == (0,)
        return conn.execute(COMPARED).fetchall(), daily


@settings(max_examples=25, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(events=event_sets(), data=st.data())
def test_the_sinks_statement_queue_gives_the_row_triggers_answer(
        conninfo: str, events: list[Event], data: st.DataObject) -> None:
    """Migration 0125: the sink queues its rows for the fold in its own statement (no
    per-row trigger); any batching, order and replay gives what the trigger path gives,
    and every event is folded exactly once (a double queue would double the counts)."""
    with psycopg.connect(conninfo, autocommit=True) as conn:
        reference = _load(conn, [sorted(events)])
    shuffled = data.draw(st.permutations(events))
    replayed = data.draw(st.lists(st.sampled_from(events), max_size=6))
    stream = [*shuffled, *replayed]
    cuts = sorted(data.draw(st.sets(st.integers(1, max(1, len(stream) - 1)), max_size=4)))
    batches = [stream[a:b] for a, b in zip([0, *cuts], [*cuts, len(stream)], strict=True)]
    assert _sink_load(conninfo, [b for b in batches if b]) == reference
    with psycopg.connect(conninfo, autocommit=True) as conn:  # other writers: the trigger
        assert _load(conn, [sorted(events)]) == reference
