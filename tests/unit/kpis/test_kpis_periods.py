"""Vietnam-time periods and registry parsing (pure logic)."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ioccore import kpis
from ioccore.agencies import RegistryFileError, parse_registry


@given(st.dates(min_value=date(2001, 1, 1), max_value=date(2099, 12, 1)),
       st.sampled_from(kpis.GRAINS))
def test_periods_tile_the_calendar(day: date, grain: kpis.Grain) -> None:
    start = kpis.period_start(day, grain)
    end = kpis.next_period(start, grain)
    assert start <= day < end
    assert kpis.period_start(end, grain) == end
    assert kpis.next_period(kpis.previous_period(start, grain), grain) == start
    if grain == "week":
        assert start.weekday() == 0 and (end - start).days == 7
    if grain == "month":
        assert start.day == 1 and end.day == 1


def test_vietnam_today_changes_at_17_utc() -> None:
    assert kpis.vn_today(datetime(2026, 10, 31, 16, 59, tzinfo=UTC)) == date(2026, 10, 31)
    assert kpis.vn_today(datetime(2026, 10, 31, 17, 0, tzinfo=UTC)) == date(2026, 11, 1)


def test_values_gaps_and_previous() -> None:
    oct_, nov = date(2026, 10, 1), date(2026, 11, 1)
    zero = dict.fromkeys(kpis.COUNTS, 0)
    rows = [kpis.CountRow(oct_, None, "all", {**zero, "received": 4, "received_online": 1}),
            kpis.CountRow(nov, None, "all", {**zero, "received": 2, "received_online": 2}),
            kpis.CountRow(nov, None, "province", {**zero, "received": 2,
                                                  "received_online": 1}),
            kpis.CountRow(nov, None, "commune", {**zero, "received": 1,
                                                 "received_online": 1})]
    values = kpis.with_previous(rows, "month")
    nov_all = values[(nov, None, "all")]["online_share"]
    assert (nov_all.value, nov_all.previous) == (1.0, 0.25)
    assert values[(nov, None, "all")]["on_time_share"].value is None  # no base
    tiers = {t: values[(nov, None, t)]["online_share"] for t in ("province", "commune")}
    assert kpis.tier_gap(tiers) == pytest.approx(0.5)
    assert kpis.tier_gap({"commune": tiers["commune"]}) is None


@pytest.mark.parametrize(("row", "message"), [
    ("x,Name,district,00004,01", "tier"),
    ("x,Name,commune,,01", "seat_commune"),
    ("x,Name,province,0004,01", "seat_commune"),
    ("x,Name,province,,1", "province_code"),
    (",Name,province,,01", "code"),
])
def test_registry_rows_are_checked(row: str, message: str) -> None:
    with pytest.raises(RegistryFileError, match=message) as err:
        parse_registry(["code,name,tier,seat_commune,province_code", row])
    assert err.value.line == 2


def test_registry_refuses_duplicates_and_missing_columns() -> None:
    with pytest.raises(RegistryFileError, match="also on line 2"):
        parse_registry(["code,name,tier,seat_commune,province_code",
                        "a,A,province,,01", "a,B,province,,01"])
    with pytest.raises(RegistryFileError, match="missing columns"):
        parse_registry(["code,name", "a,A"])
