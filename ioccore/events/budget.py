"""A time budget for validating one message: a second line of defence behind linear time.

Splitting and validation are linear in the input by construction (benchmarks/
bench_hostile.py measures it); the budget bounds what a bug or an unforeseen shape could
still cost. The validator's loops call :meth:`Deadline.check` between elements and the
batch splitter between its vectorised passes (cooperative: nothing is interrupted
mid-element or mid-pass, and each is linear in at most a message's bytes). Over
the budget, :class:`OverBudgetError` ends the validation; the caller dead-letters the whole
message with reason ``over_budget`` (stage 1) or answers 422 (the gateway).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Final

from ioccore.errors import ContractError
from ioccore.events.reasons import Reason

CHECK_EVERY: Final = 4096
"""Scanner steps between two looks at the clock (a clock read is about 50 ns)."""


class OverBudgetError(ContractError):
    """Validation of one message ran past its deadline."""

    def __init__(self, budget_s: float) -> None:
        super().__init__(Reason.OVER_BUDGET,
                         f"validation took longer than its budget of {budget_s:g} s")


class Deadline:
    """A monotonic deadline; :meth:`check` raises :class:`OverBudgetError` once it passed."""

    __slots__ = ("_at", "_budget_s", "_clock")

    def __init__(self, at: float, clock: Callable[[], float] = time.monotonic) -> None:
        self._at = at
        self._clock = clock
        self._budget_s = max(0.0, at - clock())

    @classmethod
    def after(cls, budget_s: float, clock: Callable[[], float] = time.monotonic) -> Deadline:
        return cls(clock() + budget_s, clock)

    def restart(self) -> None:
        """The same budget again, from now: one deadline serves a batch's messages in
        turn (stage 1 made one per message, about 0.5 µs each)."""
        self._at = self._clock() + self._budget_s

    def check(self) -> None:
        if self._clock() > self._at:
            raise OverBudgetError(self._budget_s)


def check(deadline: Deadline | None) -> None:
    """:meth:`Deadline.check` when there is a deadline."""
    if deadline is not None:
        deadline.check()
