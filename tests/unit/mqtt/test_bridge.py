"""The bridge loop's contract with an in-memory client: nothing is acknowledged before
the admission step returned, a failing step is retried with the same parts, and an
acknowledgement is never carried over to a new connection."""

from __future__ import annotations

import asyncio
from typing import Any

import orjson
import pytest

from streams.mqtt import bridge as bridge_mod
from streams.mqtt.bridge import Bridge, take
from streams.mqtt.messages import Inbound, Part


class FakeClient:
    def __init__(self) -> None:
        self.generation = 1
        self.acked: list[int] = []

    def ack(self, msg: Inbound) -> bool:
        if msg.generation != self.generation:
            return False
        self.acked.append(msg.mid)
        return True


def inbound(mid: int, generation: int = 1) -> Inbound:
    payload = orjson.dumps({"schema_version": 1, "occurred_at": "2025-11-03T01:00:00Z",
                            "commune_code": "00004",
                            "body": {"metric": "pm25", "value": mid, "unit": "ug/m3"}})
    return Inbound(mid, 1, f"ioc/env/sensor/s{mid}", payload, generation)


def make(admit: Any, client: FakeClient) -> Bridge:
    return Bridge(client, asyncio.Queue(), admit, root="ioc",  # type: ignore[arg-type]
                  max_bytes=10_000, batch_max=10, within_s=0.01)


@pytest.mark.asyncio
async def test_acknowledged_only_after_admission_and_in_order(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(bridge_mod, "RETRY_MIN_S", 0.001)
    client = FakeClient()
    calls: list[list[str | None]] = []

    async def admit(parts: list[Part]) -> None:
        calls.append([None if p.event is None else str(p.event["event_id"]) for p in parts])
        assert client.acked == []  # nothing acknowledged while the batch is in hand
        if len(calls) < 3:
            raise OSError("kafka down")

    b = make(admit, client)
    await b.handle([inbound(3), inbound(1), inbound(2)])
    assert client.acked == [3, 1, 2]
    assert len(calls) == 3 and calls[0] == calls[1] == calls[2]  # the same parts again


@pytest.mark.asyncio
async def test_no_ack_across_a_reconnect() -> None:
    client = FakeClient()

    async def admit(parts: list[Part]) -> None:
        client.generation += 1  # the connection dropped while Kafka was awaited

    b = make(admit, client)
    await b.handle([inbound(1), inbound(2)])
    assert client.acked == [] and b.acked == 0


@pytest.mark.asyncio
async def test_take_batches_up_to_the_bound() -> None:
    q: asyncio.Queue[Inbound] = asyncio.Queue()
    for i in range(25):
        q.put_nowait(inbound(i))
    first = await take(q, batch_max=10, within_s=0.01)
    assert [m.mid for m in first] == list(range(10))
    rest = [await take(q, batch_max=10, within_s=0.01) for _ in range(2)]
    assert [len(r) for r in rest] == [10, 5]
    for i in range(5):
        q.put_nowait(inbound(i))
    size = len(inbound(0).payload)
    assert len(await take(q, batch_max=10, within_s=0.01, max_bytes=2 * size)) == 2


@pytest.mark.asyncio
async def test_stop_finishes_the_batch_in_hand() -> None:
    client = FakeClient()
    seen = asyncio.Event()

    async def admit(parts: list[Part]) -> None:
        seen.set()
        await asyncio.sleep(0.05)

    b = make(admit, client)
    b.queue.put_nowait(inbound(7))
    task = asyncio.create_task(b.run())
    await seen.wait()
    b.stopping.set()
    await asyncio.wait_for(task, 2)
    assert client.acked == [7]
