"""promtool's expanding notation for test input series.

``"10 12 80x5 _ 1+2x3 _x2"``: a number is one value; ``a+bxn`` (or ``a-bxn``) is
``n+1`` values starting at ``a`` stepping by ``b``; ``axn`` is ``a`` repeated ``n+1``
times; ``_`` is one missing value and ``_xn`` is ``n`` missing values.
"""

from __future__ import annotations

import re

_STEP = re.compile(r"^(-?\d+(?:\.\d+)?(?:e[-+]?\d+)?)(?:([+-])(\d+(?:\.\d+)?))?x(\d+)$")
_BLANKS = re.compile(r"^_x(\d+)$")


def expand(text: str) -> list[float | None]:
    """Values per minute (``None`` = no data that minute); ``ValueError`` if malformed."""
    out: list[float | None] = []
    for token in text.split():
        if token == "_":
            out.append(None)
            continue
        blanks = _BLANKS.match(token)
        if blanks:
            out.extend([None] * int(blanks.group(1)))
            continue
        step = _STEP.match(token)
        if step:
            start = float(step.group(1))
            delta = float(step.group(3) or 0) * (-1 if step.group(2) == "-" else 1)
            out.extend(start + i * delta for i in range(int(step.group(4)) + 1))
            continue
        try:
            out.append(float(token))
        except ValueError:
            raise ValueError(f"bad series token {token!r} (use 1, 1x3, 1+2x3, _ or _x3)") from None
    return out
