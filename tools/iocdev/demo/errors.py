"""Errors of the demo.

    IocError (ioccore.errors)
     └── DemoError            a part of the demo failed; names the part and its log
          └── DemoInterruptedError Ctrl-C or SIGTERM reached the demo
"""

from __future__ import annotations

from pathlib import Path

from ioccore.errors import IocError


class DemoError(IocError):
    """A part of the demo (``stack``, ``migrate``, ``worker-0``, ...) failed."""

    def __init__(self, part: str, reason: str, log: Path | None = None) -> None:
        self.part = part
        self.reason = reason
        self.log = log
        super().__init__(f"{part}: {reason}")


class DemoInterruptedError(DemoError):
    """The demo was interrupted by a signal; everything it started is stopped."""

    def __init__(self, signum: int) -> None:
        self.signum = signum
        super().__init__("demo", f"interrupted by signal {signum}")
