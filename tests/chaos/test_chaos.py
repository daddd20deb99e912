"""The short chaos scenarios (CI): real faults on a stack of their own, exact ledgers.

The stack is the chaos suite's own (``.stack-chaos``, ports 31xxx), never the one the
other tests use: restarting a shared PostgreSQL would break parallel runs. It is started
here if needed, and stopped afterwards only if this module started it. ``make chaos``
runs every scenario (docs/chaos.md).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from iocdev.chaos import stack as chaos
from iocdev.chaos.scenarios import SCENARIOS, Scenario, run_scenario
from iocdev.settings import DevSettings

pytestmark = [pytest.mark.integration, pytest.mark.slow, pytest.mark.chaos]


@pytest.fixture(scope="module")
def chaos_stack(stack: DevSettings) -> Iterator[DevSettings]:
    """The chaos stack, answering; stopped afterwards if it was started here."""
    settings = chaos.chaos_settings(stack)
    started = chaos.up(settings, seed_from=stack)
    try:
        yield settings
    finally:
        if started:
            chaos.down(settings)


@pytest.mark.parametrize("scenario", [s for s in SCENARIOS if s.quick], ids=lambda s: s.name)
def test_fault_loses_nothing_and_counts_nothing_twice(
        scenario: Scenario, chaos_stack: DevSettings, tmp_path: Path,
        record_property: Callable[[str, object], None]) -> None:
    ledger = run_scenario(scenario, chaos_stack, tmp_path)
    record_property(f"stack.chaos.{scenario.name}", ledger.format())
    assert ledger.ok, ledger.format()
