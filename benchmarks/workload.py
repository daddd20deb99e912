"""Events for benchmarks: valid batch envelopes at Hanoi commune centroids.

Generated fast and deterministically so the producer is never what a benchmark
measures. Each message is one source's batch (the Kafka key), as departments send.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import orjson


def places(province: str | None = "01") -> list[tuple[str, float, float]]:
    """(code, lat, lon) of a province's communes (``None``: all 3,321)."""
    from geo.reference import read_reference

    frame = read_reference().communes
    if province is not None:
        frame = frame[frame["province_code"] == province]
    rows = frame.sort_values("code")
    return [(str(r.code), float(r.lat), float(r.lon)) for r in rows.itertuples()]


TIME_MARK = datetime(2001, 1, 1, tzinfo=UTC)
_TIME_MARK_BYTES = TIME_MARK.isoformat().encode()  # 2001-01-01T00:00:00+00:00
ID_MARK = b"@@@@@@@@"


def stamp(value: bytes, run: int, now: datetime) -> bytes:
    """A pool message with unique ids (``run`` distinct per send) and occurred_at = now."""
    at = now.isoformat().encode()
    return value.replace(ID_MARK, b"%08d" % run).replace(_TIME_MARK_BYTES, at)


class Workload:
    """Sensor, traffic and service events in the proportions of a real province."""

    def __init__(self, *, seed: int = 1, sources: int = 1000, batch: int = 100,
                 tag: str = "b") -> None:
        self._rng = random.Random(seed)
        self._places = places()
        self._sources = sources
        self.batch = batch
        self._tag = tag
        self._seq = 0

    def messages(self, n_events: int, start: datetime | None = None,
                 span_s: float = 0.0) -> Iterator[tuple[str, bytes, bytes, int]]:
        """(feed, key, value, events) with ``n_events`` in all, occurred_at spread over
        ``span_s`` from ``start`` (default: now)."""
        start = start or datetime.now(UTC)
        made = 0
        while made < n_events:
            n = min(self.batch, n_events - made)
            src = self._rng.randrange(self._sources)
            feed = "sensor" if src % 10 < 7 else ("traffic" if src % 10 < 9 else "service")
            code, lat, lon = self._places[src % len(self._places)]
            events = []
            for i in range(n):
                at = start + timedelta(seconds=span_s * (made + i) / max(1, n_events))
                events.append(self._event(feed, src, code, lat, lon, at))
            made += n
            yield feed, f"src-{src}".encode(), orjson.dumps(events), n

    def template_pool(self, n_messages: int) -> list[tuple[str, bytes, bytes, int]]:
        """Messages whose event ids and occurred_at are placeholders (see :func:`stamp`):
        stamping is two byte replacements, so a producer can send tens of thousands of
        events per second with ``occurred_at`` = now without building JSON."""
        saved = self._tag, self._seq
        self._tag = ID_MARK.decode()
        pool = []
        for feed, key, value, n in self.messages(n_messages * self.batch, start=TIME_MARK):
            pool.append((feed, key, value, n))
        self._tag, self._seq = saved
        return pool

    def _event(self, feed: str, src: int, code: str, lat: float, lon: float,
               at: datetime) -> dict[str, object]:
        self._seq += 1
        env: dict[str, object] = {
            "schema_version": 1, "event_id": f"{self._tag}{self._seq}",
            "source_id": f"src-{src}", "department": f"dept-{feed}", "feed": feed,
            "occurred_at": at.isoformat(),
        }
        r = self._rng.random()
        if feed == "sensor":
            env["location"] = {"lat": lat + 0.0005, "lon": lon + 0.0005}
            env["body"] = {"metric": "pm25", "value": round(20 + 80 * r, 1), "unit": "ug/m3"}
        elif feed == "traffic":
            env["location"] = {"lat": lat, "lon": lon}
            env["body"] = {"segment_id": f"seg-{src}", "vehicle_count": int(50 * r),
                           "avg_speed_kmh": round(10 + 40 * r, 1), "occupancy": round(r, 3)}
        else:
            env["commune_code"] = code
            status = "resolved" if r < 0.4 else "received"
            body: dict[str, object] = {
                "dossier_id": f"d{self._seq}", "procedure_code": "1.001", "agency": "UBND",
                "channel": "online" if r < 0.9 else "offline", "status": status,
                "due_at": (at + timedelta(days=3)).isoformat(), "fee_bearing": False,
                "digitised": True}
            if status == "resolved":
                body["resolved_at"] = at.isoformat()
            env["body"] = body
        return env
