"""The test-side expander of Grafana's SQL macros and variables."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from tests.integration.observability.grafana_expand import Expander, ExpandError, seconds

START = datetime(2025, 7, 1, 3, 0, tzinfo=UTC)
END = datetime(2025, 7, 1, 4, 0, tzinfo=UTC)


def _exp() -> Expander:
    return Expander(START, END, interval="5m",
                    variables={"province": "01", "commune": ["00004", "O'Brien"]},
                    multi=frozenset({"commune"}))


def test_time_filter_from_to() -> None:
    assert _exp().expand("WHERE $__timeFilter(r.bucket)") == (
        "WHERE r.bucket BETWEEN '2025-07-01T03:00:00Z' AND '2025-07-01T04:00:00Z'")
    assert _exp().expand("$__timeFrom()::timestamptz, $__timeTo()") == (
        "'2025-07-01T03:00:00Z'::timestamptz, '2025-07-01T04:00:00Z'")


def test_time_group_uses_time_bucket_with_the_interval() -> None:
    assert _exp().expand("SELECT $__timeGroupAlias(bucket, $__interval), x") == (
        "SELECT time_bucket('300s',bucket) AS \"time\", x")
    assert _exp().expand("$__timeGroup(a.started_at, '15m')") == (
        "time_bucket('900s',a.started_at)")
    assert _exp().expand("$__unixEpochFilter(ts)") == "ts >= 1751338800 AND ts <= 1751342400"


def test_variables_single_raw_multi_quoted() -> None:
    q = _exp().expand("p = '$province' AND c IN ($commune) AND d IN (${commune})")
    assert q == "p = '01' AND c IN ('00004','O''Brien') AND d IN ('00004','O''Brien')"


def test_rate_interval_and_durations() -> None:
    assert _exp().expand("rate(x[$__rate_interval])") == "rate(x[315s])"
    assert seconds("1h") == 3600 and seconds("'15m'") == 900


@pytest.mark.parametrize("query", ["$nope", "$__timeShift(x)", "$__timeGroup(x)"])
def test_unknown_macros_and_variables_fail(query: str) -> None:
    with pytest.raises(ExpandError):
        _exp().expand(query)
