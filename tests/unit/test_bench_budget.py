"""Issue 28's CPU budget: the split adds up to what was measured, and the cores follow."""

from __future__ import annotations

from typing import Any

import pytest

from benchmarks.budget import budget, render


def _run() -> dict[str, Any]:
    drain = {"events": 300_000, "events_per_s": 20_000,
             "cpu_s": {"worker": 9.0, "postgres": 6.0, "postgres_backends": 4.5, "kafka": 1.5},
             "components_ms_per_1000": {"validation": 12.0, "alerts": 18.0}}
    flink = {"events": 300_000, "events_per_s": 18_000,
             "cpu_s": {"flink": 24.0, "postgres": 3.0, "postgres_backends": 3.0, "kafka": 0.3}}
    return {"cpu_budget_one_event": drain, "flink_p2": flink}


def test_totals_and_cores_at_the_flink_multiples() -> None:
    b = budget(_run(), cores=2, rates=[10_000])
    assert b is not None
    assert b["ioc"]["worker: validation"] == 0.012
    assert b["ioc"]["worker (measured)"] == 0.03
    # own: worker 0.03 + this database's backends 0.015 + broker 0.005
    assert b["ioc_total"] == {"own": 0.05, "all": 0.055}
    assert b["flink_p2_total"]["own"] == pytest.approx(0.091)
    need = b["cores_needed"]
    assert need["1.5x Flink p=2 (27,000 events/s)"] == {"ioc_own": 1.35, "ioc_all": 1.49}
    assert need["2.0x Flink p=2 (36,000 events/s)"]["ioc_own"] == 1.8
    assert need["10,000 events/s"]["ioc_own"] == 0.5


def test_without_a_profiled_drain_nothing_is_claimed() -> None:
    assert budget({"flink_p2": _run()["flink_p2"]}, cores=2) is None
    assert "not run" in render(None)[-1]


def test_older_runs_without_backend_figures_fall_back_to_the_server() -> None:
    run = _run()
    del run["flink_p2"]["cpu_s"]["postgres_backends"]
    b = budget(run, cores=2)
    assert b is not None
    assert b["flink_p2"]["PostgreSQL: whole server (shared)"] == 0.01
    table = "\n".join(render(b))
    assert "| **total: worker/Flink + own backends + broker** | **0.05** |" in table
