"""The same-session A/B's figures: CPU per 1,000 from the CPU seconds, medians per side
and the new/old ratios that BENCHMARKS.md quotes."""

from __future__ import annotations

from typing import Any

from benchmarks.ab_drain import figures, summary, table


def _run(side: str, rate: int, worker: float, backends: float) -> dict[str, Any]:
    return {"side": side, "events": 300_000, "events_per_s": rate, "exact": True,
            "cpu_s": {"worker": worker, "postgres_backends": backends, "postgres": 6.0,
                      "kafka": 1.5},
            "load_average": [3.0, 3.1, 3.2, 3.3, 3.4, 3.5]}


RUNS = [_run("old", 12_000, 13.2, 5.0), _run("new", 24_000, 7.2, 4.2),
        _run("old", 14_000, 12.6, 4.8), _run("new", 26_000, 7.5, 4.5),
        _run("old", 10_000, 13.5, 5.1), _run("new", 22_000, 6.9, 4.3)]


def test_cpu_per_1000_from_cpu_seconds_at_four_decimals() -> None:
    assert figures(RUNS[1]) == {"events_per_s": 24_000.0, "worker": 0.024,
                                "postgres_backends": 0.014, "postgres": 0.02,
                                "kafka": 0.005}
    assert figures(_run("old", 1, 12.8, 4.9))["worker"] == 0.0427


def test_medians_per_side_and_ratio_new_over_old() -> None:
    s = summary(RUNS)
    assert s["median"]["old"]["worker"] == 0.044
    assert s["median"]["new"]["worker"] == 0.024
    assert s["new_over_old"]["worker"] == round(0.024 / 0.044, 3)
    assert s["new_over_old"]["events_per_s"] == 2.0
    assert s["new_over_old"]["postgres"] == 1.0


def test_table_has_a_row_per_run_in_order() -> None:
    rows = table(RUNS).splitlines()
    assert len(rows) == 2 + len(RUNS)
    assert rows[2].startswith("| 1 | old | 12,000 | 0.0440 |")
    assert "3.00; 3.30" in rows[3]
