"""`ioc demo`: the end-to-end main job."""

from __future__ import annotations


def demo() -> None:
    """Run the end-to-end demo."""
    raise NotImplementedError
