"""Where simulated events go: an NDJSON file, Kafka, or the HTTP ingest gateway.

* File: one envelope per line, in occurred_at order (malformed ones as their bytes).
* Kafka: one message per (topic, source_id) batch: a JSON array of up to ``batch``
  events of one source (``batch=1``: a bare object), key = source_id, acks=all and an
  idempotent producer. Batching per source keeps the key meaningful (a source's
  events land in one partition, in order). A source's pending batch is flushed when
  full or after ``max_delay_s`` of wall time.
* HTTP: NDJSON bodies of up to ``batch`` events to ``POST {url}/v1/events`` with
  ``Authorization: Bearer <api key>``; 429 is retried after ``Retry-After``.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any, Protocol

import msgspec

_enc = msgspec.json.Encoder()


def encode(payload: dict[str, Any] | bytes) -> bytes:
    return payload if isinstance(payload, bytes) else _enc.encode(payload)


class Target(Protocol):
    def send(self, feed: str, key: str, value: bytes) -> None: ...
    def poll(self) -> None: ...
    def close(self) -> dict[str, int]: ...


class FileTarget:
    def __init__(self, path: Path) -> None:
        self._fh: IO[bytes] = path.open("wb")
        self.count = 0

    def send(self, feed: str, key: str, value: bytes) -> None:
        self._fh.write(value + b"\n")
        self.count += 1

    def poll(self) -> None:
        return None

    def close(self) -> dict[str, int]:
        self._fh.close()
        return {"events": self.count}


class _Batcher:
    """Pending values per group, flushed when full or older than ``max_delay_s``."""

    def __init__(self, batch: int, max_delay_s: float,
                 flush: Callable[[Any, list[bytes]], None]) -> None:
        self.batch = max(1, batch)
        self.max_delay_s = max_delay_s
        self._flush = flush
        self._pending: dict[Any, tuple[float, list[bytes]]] = {}
        self._last_poll = time.monotonic()

    def add(self, group: Any, value: bytes) -> None:
        entry = self._pending.get(group)
        if entry is None:
            entry = self._pending[group] = (time.monotonic(), [])
        entry[1].append(value)
        if len(entry[1]) >= self.batch:
            del self._pending[group]
            self._flush(group, entry[1])

    def poll(self) -> None:
        now = time.monotonic()
        if now - self._last_poll < self.max_delay_s / 4:
            return
        self._last_poll = now
        for group in [g for g, (t0, _) in self._pending.items() if now - t0 >= self.max_delay_s]:
            self._flush(group, self._pending.pop(group)[1])

    def drain(self) -> None:
        for group in list(self._pending):
            self._flush(group, self._pending.pop(group)[1])


def batch_value(values: list[bytes]) -> bytes:
    """One message value: the bare event for one, a JSON array for several."""
    return values[0] if len(values) == 1 else b"[" + b",".join(values) + b"]"


class KafkaTarget:
    def __init__(self, *, bootstrap_servers: str, topics: dict[str, str], batch: int,
                 client_options: dict[str, Any] | None = None, max_request_size: int = 1 << 20,
                 max_delay_s: float = 0.5, client_id: str = "ioc-simulate") -> None:
        from kafka import KafkaProducer

        self._producer = KafkaProducer(
            bootstrap_servers=bootstrap_servers, acks="all", enable_idempotence=True,
            linger_ms=20, max_request_size=max_request_size, client_id=client_id,
            **(client_options or {}))
        self._topics = topics
        self.messages = 0
        self.events = 0
        self._batcher = _Batcher(batch, max_delay_s, self._flush)

    def _flush(self, group: tuple[str, str], values: list[bytes]) -> None:
        feed, key = group
        self._producer.send(self._topics[feed], key=key.encode(), value=batch_value(values))
        self.messages += 1
        self.events += len(values)

    def send(self, feed: str, key: str, value: bytes) -> None:
        self._batcher.add((feed, key), value)

    def poll(self) -> None:
        self._batcher.poll()

    def close(self) -> dict[str, int]:
        self._batcher.drain()
        self._producer.flush()
        self._producer.close()
        return {"events": self.events, "messages": self.messages}


class HttpTarget:
    def __init__(self, *, url: str, api_key: str, batch: int, max_delay_s: float = 0.5,
                 timeout_s: float = 30.0) -> None:
        import httpx

        self._client = httpx.Client(base_url=url, timeout=timeout_s, headers={
            "Authorization": f"Bearer {api_key}", "Content-Type": "application/x-ndjson"})
        self.accepted = 0
        self.rejected = 0
        self.requests = 0
        self._batcher = _Batcher(batch, max_delay_s, self._flush)

    def _flush(self, group: object, values: list[bytes]) -> None:
        from ioccore.errors import DeliveryError

        body = b"\n".join(values) + b"\n"
        for _attempt in range(10):
            resp = self._client.post("/v1/events", content=body)
            self.requests += 1
            if resp.status_code == 429:
                time.sleep(float(resp.headers.get("Retry-After", "1")))
                continue
            if resp.status_code in (401, 403, 413) or resp.status_code >= 500:
                raise DeliveryError(f"POST /v1/events answered {resp.status_code}: "
                                    f"{resp.text[:300]}")
            try:
                result = resp.json()
            except ValueError:
                result = {}
            self.accepted += int(result.get("accepted", len(values))) if isinstance(
                result, dict) else len(values)
            self.rejected += int(result.get("rejected", 0)) if isinstance(result, dict) else 0
            return
        raise DeliveryError("POST /v1/events: still rate-limited after 10 attempts")

    def send(self, feed: str, key: str, value: bytes) -> None:
        self._batcher.add("all", value)

    def poll(self) -> None:
        self._batcher.poll()

    def close(self) -> dict[str, int]:
        self._batcher.drain()
        self._client.close()
        return {"accepted": self.accepted, "rejected": self.rejected,
                "requests": self.requests}
