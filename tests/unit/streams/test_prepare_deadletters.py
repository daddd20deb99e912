"""Stage 1's dead letters of rejected elements: each one is the named tuple the keyword
constructor builds (stage 1 makes them from all their fields at once, for speed)."""

from __future__ import annotations

import logging

from benchmarks.bench_hostile import NOW, junk_between
from geo.index import index_from_reference
from ioccore.events.validate import Validator
from streams.deadletters import DeadLetter, named_department
from streams.prepare import InMessage, Prepare


def test_each_dead_letter_is_the_one_the_constructor_builds() -> None:
    logging.disable(logging.INFO)
    try:
        prepare = Prepare(Validator(max_message_bytes=1 << 20, max_future_skew_s=300),
                          index_from_reference(), {"raw": "sensor"},
                          publisher=named_department)
        out = prepare.run([InMessage("raw", 2, 7, b"aq-0001", junk_between(4096))], NOW)
    finally:
        logging.disable(logging.NOTSET)
    assert out.deadletters and out.records
    for letter in out.deadletters:
        assert type(letter) is DeadLetter
        assert letter == DeadLetter(**letter._asdict())
        assert len(letter) == len(DeadLetter._fields)
        assert (letter.source_topic, letter.source_partition, letter.source_offset,
                letter.value_kind) == ("raw", 2, 7, "original")
        assert letter.value == b'{"a": [1' and isinstance(letter.batch_index, int)
        assert dict(letter.headers())["ioc-batch-index"] == str(letter.batch_index).encode()
