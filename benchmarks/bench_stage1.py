"""Stage 1's CPU per 1,000 one-event messages, by component, in one process.

    python -m benchmarks.bench_stage1 [--messages 50000] [--repeat 3]

Wall-clock rates on the shared 2-core machine swing with other load; the process's CPU
time (``time.process_time``) does not, so this is the figure to compare stage-1 changes
with. It runs the worker's real parts inline (no thread, no Kafka): the drain's one-event
messages (``benchmarks.workload``, ``commune_code`` set) through
:class:`~streams.stage1.Stage1` with the worker's validator and commune index, its
duplicate memory, and a ``send`` that encodes the enriched messages as
:class:`~streams.outputs.KafkaOutputs` does; then stage 2's decode of those messages and
the sink's row building. Reported in ms of CPU per 1,000 messages (= µs per message),
best of ``repeat``: ``Prepare.run`` (validation and the geo join), stage 1 in all (with
the duplicate memory, the enriched messages' encoding and metrics), stage-2 decode and
the sink's rows (``rows_of``). Not in it: the Kafka client (fetch, unpack, produce) and
PostgreSQL, which ``benchmarks.profile`` and ``benchmarks.bench_sink_cpu`` attribute.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from collections.abc import Callable, Set
from functools import partial
from typing import Any

from aiokafka.partitioner import DefaultPartitioner

from ioccore.events.record import Feed, Record, decode_records, encode_records
from ioccore.settings import get_settings
from streams import deadletters
from streams.enriched_partitions import EnrichedPartitions, Partitioner, by_partition
from streams.outputs import ENRICHED_CHUNK
from streams.prepare import InMessage, Prepare
from streams.sinks.timescale import rows_of
from streams.stage1 import Stage1

TOPICS = {"sensor": "ioc.raw.sensor.v1", "traffic": "ioc.raw.traffic.v1",
          "service": "ioc.raw.service.v1"}


def one_event_messages(n: int) -> list[InMessage]:
    from benchmarks.workload import Workload

    out: list[InMessage] = []
    offsets = dict.fromkeys(TOPICS, 0)
    for feed, key, value, _ in Workload(seed=5, tag="s1", one_event=True).messages(
            n, span_s=240.0):
        out.append(InMessage(TOPICS[feed], 0, offsets[feed], key, value))
        offsets[feed] += 1
    return out


def _timed(fn: Callable[[], Any]) -> tuple[Any, float]:
    t0 = time.process_time()
    value = fn()
    return value, time.process_time() - t0


class _Encoding:
    """A ``send`` that groups and encodes the enriched messages as the app's outputs do
    (one message per partition of the configured enriched topic, aiokafka's partitioner)."""

    def __init__(self, partitions: int) -> None:
        self.values: list[bytes] = []
        ordered = list(range(partitions))

        async def lookup() -> tuple[Partitioner, Set[int]]:
            return DefaultPartitioner(), set(ordered)

        self._partitions = EnrichedPartitions(lookup)

    async def __call__(self, enriched: dict[str, list[Record]], dead: list[Any]) -> None:
        partition_of = await self._partitions.mapper()
        for _, records in by_partition(enriched, partition_of, ENRICHED_CHUNK):
            self.values.append(encode_records(records))


def _once(parts: Any, messages: list[InMessage], batch: int) -> tuple[dict[str, float], int]:
    """CPU seconds by part, and the enriched messages stage 1 sent."""
    feeds: dict[str, Feed] = {v: k for k, v in TOPICS.items()}  # type: ignore[misc]
    cpu: dict[str, float] = {}
    prepare = Prepare(parts.validator, parts.index, feeds,
                      publisher=deadletters.named_department)
    now = time.time()
    for i in range(0, len(messages), batch):
        _, dt = _timed(partial(prepare.run, messages[i:i + batch], now))
        cpu["validation + geo join (Prepare.run)"] = \
            cpu.get("validation + geo join (Prepare.run)", 0.0) + dt
    send = _Encoding(get_settings().kafka.topics.enriched.partitions)
    stage = Stage1(parts.validator, parts.index, feeds, send,
                   inline_slice_bytes=sys.maxsize)  # the whole batch inline

    async def all_batches() -> int:
        valid = 0
        for i in range(0, len(messages), batch):
            valid += (await stage.process(messages[i:i + batch])).valid
        return valid

    valid, cpu["stage 1 in all"] = _timed(partial(asyncio.run, all_batches()))
    if valid != len(messages):
        raise RuntimeError(f"{valid} of {len(messages)} messages valid")
    records: list[Record] = []

    def decode() -> None:
        for v in send.values:
            records.extend(decode_records(v))

    _, cpu["stage-2 decode"] = _timed(decode)
    by_feed: dict[Feed, list[Record]] = {}
    for r in records:
        by_feed.setdefault(r.feed, []).append(r)
    _, cpu["sink rows"] = _timed(lambda: [list(rows_of(f, rs, [False] * len(rs)))
                                          for f, rs in by_feed.items()])
    return cpu, len(send.values)


def run(n: int = 50_000, repeat: int = 3, batch: int = 5_000) -> dict[str, Any]:
    """Best of ``repeat``, in ms of CPU per 1,000 messages."""
    from ioc.worker import make_resources

    parts = make_resources(get_settings(), geo_source="reference")
    messages = one_event_messages(n)
    best: dict[str, float] = {}
    sent = 0
    for _ in range(repeat):
        cpu, sent = _once(parts, messages, batch)
        for k, v in cpu.items():
            per = round(1e6 * v / n, 2)
            best[k] = min(best.get(k, per), per)
    return {"messages": n, "batch": batch, "ms_cpu_per_1000_messages": best,
            "enriched_messages_per_batch": round(sent / -(-n // batch), 1)}


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--messages", type=int, default=50_000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    print(json.dumps(run(args.messages, args.repeat), indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
