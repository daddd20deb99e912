"""Scorecard ranks and statuses (pure logic; docs/kpis.md "Scorecards"): competition
ranks on exact fractions, whatever the order units come in; no denominator, no rank."""

from __future__ import annotations

import io
from fractions import Fraction

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ioccore.kpi_targets import TargetFileError
from ioccore.kpis import KpiValue
from ioccore.scorecards import competition_ranks, default_source, status
from ioccore.unit_targets import parse_unit_targets

shares = st.dictionaries(st.text("abcdef", min_size=1, max_size=3),
                         st.tuples(st.integers(0, 20), st.integers(0, 20)).map(
                             lambda nd: (min(nd), max(nd))), max_size=12)


def test_ties_share_a_rank_and_the_next_skips() -> None:
    ranks = competition_ranks({"a": (1, 2), "b": (2, 4), "c": (3, 4), "d": (0, 0),
                               "e": (1, 4)})
    assert ranks == {"c": 1, "a": 2, "b": 2, "e": 4, "d": None}


@given(shares, st.randoms())
def test_rank_is_one_plus_the_units_strictly_better(
        units: dict[str, tuple[int, int]], rnd: object) -> None:
    ranks = competition_ranks(units)
    items = list(units.items())
    rnd.shuffle(items)  # type: ignore[attr-defined]
    assert competition_ranks(dict(items)) == ranks  # order of arrival does not matter
    for code, (n, d) in units.items():
        if d == 0:
            assert ranks[code] is None
            continue
        better = sum(1 for n2, d2 in units.values() if d2 and Fraction(n2, d2) > Fraction(n, d))
        assert ranks[code] == 1 + better


def test_status_is_exact_at_the_target() -> None:
    assert status(KpiValue(4, 5, 0.8)) == "met"        # 0.8 * 5 is 4.000000000000001
    assert status(KpiValue(79, 100, 0.8)) == "below"
    assert status(KpiValue(1, 2, None)) == "no_target"
    assert status(KpiValue(0, 0, 0.8)) == "no_data"


def test_default_source_follows_the_federation_role() -> None:
    class Fed:
        role = "national"

    class S:
        federation = Fed()

    assert default_source(S()) == "fed_kpi_daily"
    assert default_source(object()) == "kpi_daily"


def test_unit_targets_file_is_checked() -> None:
    ok = parse_unit_targets(io.StringIO(
        "kpi,level,unit_code,target,valid_from,valid_to\n"
        "online_share,commune,00004,0.95,2026-01-01,\n"
        "on_time_share,agency,sxd-01,0.9,2026-01-01,2027-01-01\n"))
    assert [(t.level, t.unit_code) for t in ok] == [("commune", "00004"), ("agency", "sxd-01")]
    for bad in ("online_share,commune,4,0.9,2026-01-01,",
                "online_share,district,00004,0.9,2026-01-01,",
                "online_share,province,01,1.5,2026-01-01,",
                "online_share,province,01,0.5,2026-01-01,2025-01-01"):
        with pytest.raises(TargetFileError):
            parse_unit_targets(io.StringIO(
                "kpi,level,unit_code,target,valid_from,valid_to\n" + bad + "\n"))
