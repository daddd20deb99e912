"""The gateway's validation call has a budget (issue 24): past it the worker stops and
the request is refused 413 ``over_budget``, so the worker is free for the next one."""

from __future__ import annotations

from ioc.api import validation
from ioccore.events.reasons import Reason


def test_a_request_over_its_budget_is_refused_and_a_valid_one_is_not() -> None:
    validation._init(1 << 20, 300, 5000)  # what each worker process runs at start
    unit = b",{x " * 63 + b",{} "
    hostile = b'[{"a":1 ' + unit * 2000 + b"]"
    wire, err = validation.run(hostile, "application/json", 5000, 0.0)
    assert wire is None and err is not None
    name, message, code = err
    assert (name, code) == ("PayloadTooLargeError", Reason.OVER_BUDGET) and "budget" in message
    ok, none = validation.run(b'[{"a":1}]', "application/json", 5000, 2.0)
    assert none is None and ok is not None and len(ok) == 1
