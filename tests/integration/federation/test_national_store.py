"""The nation's store on the real database: whatever the delivery does (duplicates,
replays, any order, any batching), the rows are the newest record of each key."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from typing import Any

import psycopg
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from iocdev.sandbox import fresh_database

from ioccore.federation import (
    SCHEMA,
    AlertSummary,
    AlertSummaryRecord,
    KpiDayKey,
    KpiDayRecord,
    KpiDayValues,
    Record,
)
from ioccore.kpis import COUNTS
from ioccore.settings import Settings
from streams.federation import store

pytestmark = pytest.mark.integration
T0 = datetime(2026, 12, 1, tzinfo=UTC)


@pytest.fixture(scope="module")
def conninfo(stack: Settings) -> Iterator[str]:
    with fresh_database(stack, "ioc_fedstore") as (_, info):
        yield info


@st.composite
def histories(draw: st.DrawFn) -> list[Record]:
    """Per key, a few versions published at increasing times (what a province sends)."""
    out: list[Record] = []
    for province in draw(st.sets(st.sampled_from(["01", "31", "79"]), min_size=1)):
        for agency in draw(st.sets(st.sampled_from(["a", "b", "c"]), min_size=1)):
            for version in range(draw(st.integers(1, 4))):
                n = draw(st.integers(0, 50))
                out.append(KpiDayRecord(
                    schema=SCHEMA, province_code=province,
                    as_of=T0 + timedelta(seconds=version),
                    key=KpiDayKey(day=date(2026, 12, 1), agency=agency,
                                  applicant_province=province, applicant_commune="unassigned"),
                    values=KpiDayValues(province, "unassigned", "unassigned",
                                        *([n] * len(COUNTS)))))
            out.append(AlertSummaryRecord(
                schema=SCHEMA, province_code=province,
                as_of=T0 + timedelta(seconds=draw(st.integers(0, 9))),
                values=AlertSummary(alerts=[], incidents_open=draw(st.integers(0, 5)))))
    return out


def _state(conninfo: str) -> tuple[set[tuple[Any, ...]], set[tuple[Any, ...]]]:
    with psycopg.connect(conninfo) as conn:
        kpi = set(conn.execute("SELECT origin, agency, received, as_of FROM fed_kpi_counts"))
        snaps = set(conn.execute("SELECT origin, kind, body::text, as_of FROM fed_snapshots"))
    return kpi, snaps


async def _apply(conninfo: str, batches: list[list[Record]]) -> None:
    async with await psycopg.AsyncConnection.connect(conninfo, autocommit=True) as conn:
        for batch in batches:
            async with conn.transaction():
                await store.apply(conn, batch)


def _reset(conninfo: str) -> None:
    with psycopg.connect(conninfo) as conn:
        for table in ("fed_kpi_counts", "fed_snapshots", "fed_origins"):
            conn.execute(f"DELETE FROM {table}")


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                  HealthCheck.function_scoped_fixture])
@given(history=histories(), data=st.data())
def test_any_delivery_leaves_the_newest_record_of_each_key(
        conninfo: str, history: list[Record], data: st.DataObject) -> None:
    # the reference: in order, once, one record at a time
    _reset(conninfo)
    asyncio.run(_apply(conninfo, [[r] for r in sorted(history, key=lambda r: r.as_of)]))
    expected = _state(conninfo)
    # the same records duplicated, shuffled and batched arbitrarily
    delivered = data.draw(st.permutations(
        history + data.draw(st.lists(st.sampled_from(history), max_size=len(history)))))
    cuts = sorted(data.draw(st.sets(st.integers(1, max(1, len(delivered) - 1)), max_size=5)))
    batches = [delivered[a:b] for a, b in zip([0, *cuts], [*cuts, len(delivered)], strict=True)]
    _reset(conninfo)
    asyncio.run(_apply(conninfo, [b for b in batches if b]))
    assert _state(conninfo) == expected
