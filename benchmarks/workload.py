"""Events for benchmarks: valid events at Hanoi commune centroids.

Generated fast and deterministically so the producer is never what a benchmark
measures. Each message is one source's batch (the Kafka key), as departments send, or
with ``one_event=True`` a single JSON object per message with ``commune_code`` set, as
kcat users, most producers and the gateway send (and what the Flink peer reads).
``Expected`` tallies the one-minute rollups the events must produce, to check exactness.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from dataclasses import dataclass, field
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
_TIME_MARK_BYTES = TIME_MARK.isoformat(timespec="microseconds").encode()
ID_MARK = b"@@@@@@@@"


def stamp(value: bytes, run: int, now: datetime) -> bytes:
    """A pool message with unique ids (``run`` distinct per send) and occurred_at = now."""
    at = now.isoformat().encode()
    return value.replace(ID_MARK, b"%08d" % run).replace(_TIME_MARK_BYTES, at)


Key = tuple[str, str, datetime]
"""(commune_code, metric, bucket) of a one-minute rollup."""


@dataclass
class Expected:
    """The one-minute rollups a set of events must produce (count, sum, min, max), with
    the metrics ``streams/sinks/statements.py`` derives from each feed."""

    windows: dict[Key, list[float]] = field(default_factory=dict)
    events: int = 0

    def add(self, env: dict[str, object], code: str) -> None:
        self.events += 1
        at = datetime.fromisoformat(str(env["occurred_at"]))
        bucket = at.replace(second=0, microsecond=0)
        body: dict[str, object] = env["body"]  # type: ignore[assignment]
        for metric, value in _points(str(env["feed"]), body):
            w = self.windows.get((code, metric, bucket))
            if w is None:
                self.windows[(code, metric, bucket)] = [1, value, value, value]
            else:
                w[0] += 1
                w[1] += value
                w[2] = min(w[2], value)
                w[3] = max(w[3], value)

    def by_metric(self) -> dict[str, tuple[int, float]]:
        """Events and value sum per metric over all communes and windows."""
        out: dict[str, tuple[int, float]] = {}
        for (_, metric, _), (n, total, _, _) in self.windows.items():
            c, t = out.get(metric, (0, 0.0))
            out[metric] = (c + int(n), t + total)
        return out

    def compare(self, rows: list[tuple[str, str, datetime, int, float, float, float]],
                *, by_commune: bool = True) -> list[str]:
        """Differences between rollup rows (commune, metric, bucket, count, sum, min, max)
        and what is expected; empty when exact. ``by_commune=False`` compares totals per
        metric only (when communes come from a geo join the generator does not replay)."""
        problems: list[str] = []
        if not by_commune:
            got: dict[str, tuple[int, float]] = {}
            for _, metric, _, n, total, _, _ in rows:
                c, t = got.get(metric, (0, 0.0))
                got[metric] = (c + int(n), t + float(total))
            for metric, (n, total) in self.by_metric().items():
                c, t = got.pop(metric, (0, 0.0))
                if c != n or abs(t - total) > 1e-6 * max(1.0, abs(total)):
                    problems.append(f"{metric}: count {c} sum {t} (expected {n}, {total})")
            problems += [f"{m}: unexpected" for m in got]
            return problems
        seen = set()
        for code, metric, bucket, n, total, lo, hi in rows:
            key = (code, metric, bucket.astimezone(UTC))
            seen.add(key)
            want = self.windows.get(key)
            if want is None:
                problems.append(f"{key}: unexpected window")
            elif (int(n) != want[0] or abs(float(total) - want[1]) > 1e-6 * max(1, abs(want[1]))
                  or abs(float(lo) - want[2]) > 1e-9 or abs(float(hi) - want[3]) > 1e-9):
                problems.append(f"{key}: {(n, total, lo, hi)} expected {tuple(want)}")
        problems += [f"{k}: missing window" for k in self.windows.keys() - seen]
        return problems


def _points(feed: str, body: dict[str, object]) -> list[tuple[str, float]]:
    if feed == "sensor":
        return [(str(body["metric"]), float(body["value"]))]  # type: ignore[arg-type]
    if feed == "traffic":
        return [("traffic.vehicle_count", float(body["vehicle_count"])),  # type: ignore[arg-type]
                ("traffic.avg_speed_kmh", float(body["avg_speed_kmh"])),  # type: ignore[arg-type]
                ("traffic.occupancy", float(body["occupancy"])),  # type: ignore[arg-type]
                ("traffic.incident", 1.0 if body.get("incident") else 0.0)]
    status = str(body["status"])
    online = 1.0 if body["channel"] == "online" else 0.0
    out = [(f"service.{status}", 1.0)]
    if status == "received":
        out.append(("service.received.online", online))
        if body.get("digitised") is not None:
            out.append(("service.received.digitised", 1.0 if body["digitised"] else 0.0))
    elif status == "resolved":
        due = datetime.fromisoformat(str(body["due_at"]))
        done = datetime.fromisoformat(str(body["resolved_at"]))
        out.append(("service.resolved.on_time", 1.0 if done <= due else 0.0))
        out.append(("service.resolved.online", online))
    return out


class Workload:
    """Sensor, traffic and service events in the proportions of a real province."""

    def __init__(self, *, seed: int = 1, sources: int = 1000, batch: int = 100,
                 tag: str = "b", one_event: bool = False,
                 expected: Expected | None = None) -> None:
        self._rng = random.Random(seed)
        self._places = places()
        self._sources = sources
        self.batch = 1 if one_event else batch
        self.one_event = one_event
        self.expected = expected
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
                if self.expected is not None:
                    self.expected.add(events[-1], code)
            made += n
            value = orjson.dumps(events[0] if self.one_event else events)
            yield feed, f"src-{src}".encode(), value, n

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
            "occurred_at": at.isoformat(timespec="microseconds"),
        }
        if self.one_event:
            env["commune_code"] = code
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
                "due_at": (at + timedelta(days=3)).isoformat(timespec="microseconds"),
                "fee_bearing": False, "digitised": True}
            if status == "resolved":
                body["resolved_at"] = at.isoformat(timespec="microseconds")
            env["body"] = body
        return env
