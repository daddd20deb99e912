"""Each demo run's own database, and which earlier ones a run may drop."""

from __future__ import annotations

from datetime import UTC, datetime

from iocdev.demo.run import is_run_database, run_database


def test_a_run_is_named_by_the_second_it_started() -> None:
    at = datetime(2026, 1, 5, 8, 0, 7, tzinfo=UTC)
    assert run_database("ioc", at) == "ioc_demo_20260105080007"
    assert is_run_database("ioc", run_database("ioc", at))


def test_only_runs_of_the_same_database_are_dropped() -> None:
    assert not is_run_database("ioc", "ioc")
    assert not is_run_database("ioc", "ioc_demo_x1_demo_20260105080007")  # another base's run
    assert not is_run_database("ioc", "ioc_demo_2026010508000")  # 13 digits
    assert not is_run_database("ioc", "ioc_demo_20260105080007_old")
    assert not is_run_database("ioc_demo", "ioc_demo_20260105080007")  # a run of `ioc`
    assert is_run_database("ioc_demo_x1", "ioc_demo_x1_demo_20260105080007")
