"""A stage-1 ``send`` that keeps what it was given (unit tests of stage 1)."""

from __future__ import annotations

from ioccore.events.record import Record
from streams.deadletters import DeadLetter


class Sent:
    """Every enriched record and dead letter sent, in order; delivered at once."""

    def __init__(self) -> None:
        self.enriched: list[Record] = []
        self.dead: list[DeadLetter] = []

    async def __call__(self, enriched: dict[str, list[Record]],
                       dead: list[DeadLetter]) -> None:
        for recs in enriched.values():
            self.enriched.extend(recs)
        self.dead.extend(dead)
