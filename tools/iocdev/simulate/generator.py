"""The event generator: a province's sources, emitting in simulated-time order.

Sources per commune: one air-quality station (8 metrics: pm25, pm10, no2, o3, co,
temperature, humidity, noise), one rain gauge, a river gauge in about a third of the
communes, 1 traffic camera (3 in wards), and the commune's one-stop shop; plus the
province departments' service desks. Sensor and camera streams report on fixed
intervals with a per-stream phase; the interval follows from the requested rate
(55 % sensor, 35 % traffic, 10 % service events). Dossier events are a Poisson flow.

``rate`` is events per *simulated* second. Everything is derived from ``seed``: the
same arguments give the same events, byte for byte once encoded.
"""

from __future__ import annotations

import heapq
import math
import random
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, NamedTuple

import msgspec

from ioccore.events.reasons import Reason
from iocdev.simulate import dossiers, physics
from iocdev.simulate.communes import Commune, load_communes
from iocdev.simulate.corrupt import corrupt
from iocdev.simulate.physics import (
    AIR_METRICS,
    FLOOD_LEVELS_M,
    AirStation,
    Camera,
    WaterGauge,
    Weather,
    rng,
)

SHARES = {"sensor": 0.55, "traffic": 0.35, "service": 0.10}


@dataclass(frozen=True, slots=True)
class Truth:
    """What the simulator meant (never in the payload)."""

    valid: bool
    expected_reason: str | None
    commune_code: str
    metric: str | None = None
    value: float | None = None  # canonical units (sensor) or the count (traffic)
    extra: dict[str, Any] = field(default_factory=dict)


class SimEvent(NamedTuple):
    feed: str
    key: str  # source_id, the Kafka key
    payload: dict[str, Any] | bytes  # dict when valid, bytes when malformed
    truth: Truth
    t: float  # occurred_at, epoch seconds (simulated time)


_UNIT_SENT = {  # metric -> (unit as sent, factor from canonical)
    "no2": {"ppm": 1.0, "ppb": 1000.0}, "o3": {"ppm": 1.0, "ppb": 1000.0},
    "co": {"ppm": 1.0, "ppb": 1000.0},
}
DEPARTMENTS = {"sensor": "nnmt", "traffic": "xd", "service": "phvhcc"}


@dataclass(slots=True)
class _Stream:
    feed: str
    source_id: str
    kind: str  # "air", "rain", "water", "camera"
    obj: Any
    commune: Commune
    lat: float
    lon: float
    interval: float


class World:
    """The sources of one province and their models."""

    def __init__(self, province: str, seed: int, communes: list[Commune] | None = None,
                 online_rise: dossiers.OnlineRise | None = None) -> None:
        self.province = province
        self.seed = seed
        self.communes = communes if communes is not None else load_communes(province)
        self.air: list[AirStation] = []
        self.rain: list[tuple[str, Commune, float, float]] = []
        self.water: list[WaterGauge] = []
        self.cameras: list[Camera] = []
        for c in self.communes:
            r = rng(seed, "sources", c.code)

            def near(r: random.Random = r, c: Commune = c) -> tuple[float, float]:
                return _near(r, c)

            lat, lon = near()
            self.air.append(AirStation(
                f"aq-{c.code}", c, lat, lon,
                pm_base=(72.0 if c.urban else 55.0) * r.uniform(0.8, 1.35),
                pm10_ratio=r.uniform(1.45, 1.85),
                pm_unit="mg/m3" if r.random() < 0.1 else "µg/m3",
                gas_unit="ppb" if r.random() < 0.3 else "ppm",
                temp_unit="K" if r.random() < 0.05 else "°C"))
            self.rain.append((f"rg-{c.code}", c, *near()))
            if r.random() < 0.35:
                self.water.append(WaterGauge(
                    f"wl-{c.code}", c, baseline_m=r.uniform(0.3, 0.9),
                    gain_m_per_mm=r.uniform(0.012, 0.03), tau_h=r.uniform(8.0, 30.0)))
            for k in range(3 if c.urban else 1):
                la, lo = near()
                self.cameras.append(Camera(
                    f"cam-{c.code}-{k}", f"seg-{c.code}-{k}", c, la, lo,
                    capacity_per_min=r.uniform(35, 60) if c.urban else r.uniform(12, 30),
                    free_flow_kmh=r.uniform(40, 50) if c.urban else r.uniform(55, 70)))
        self.water_sid = {g.source_id: (g, *_near(rng(seed, "wl", g.source_id), g.commune))
                          for g in self.water}
        self.agencies = dossiers.make_agencies(seed, province, self.communes, online_rise)
        self.air_cache: dict[tuple[str, float], dict[str, float]] = {}
        self.counters: dict[str, int] = {}

    def sensor_streams(self) -> int:
        return len(self.air) * len(AIR_METRICS) + len(self.rain) + len(self.water)


def _near(r: random.Random, c: Commune) -> tuple[float, float]:
    return round(c.lat + r.uniform(-0.006, 0.006), 6), round(c.lon + r.uniform(-0.006, 0.006), 6)


def events(province: str = "01", start: datetime | float = 0.0, span: float = 3600.0,
           rate: float = 100.0, seed: int = 0, bad_share: float = 0.0,
           communes: list[Commune] | None = None,
           online_rise: dossiers.OnlineRise | None = None) -> Iterator[SimEvent]:
    """Simulated events in occurred_at order, with their ground truth.

    ``start``: aware datetime or epoch seconds; ``span``: simulated seconds;
    ``rate``: events per simulated second; ``bad_share``: share of malformed events;
    ``online_rise``: a month-on-month rise of the dossiers' online share.
    """
    t_start = start.timestamp() if isinstance(start, datetime) else float(start)
    t_end = t_start + span
    world = World(province, seed, communes, online_rise)
    weather = Weather.build(seed, t_start, t_end)
    streams: list[_Stream] = []
    sensor_iv = world.sensor_streams() / max(1e-9, rate * SHARES["sensor"])
    traffic_iv = len(world.cameras) / max(1e-9, rate * SHARES["traffic"])
    for a in world.air:
        for m in AIR_METRICS:
            streams.append(_Stream("sensor", a.source_id, "air:" + m, a, a.commune, a.lat,
                                   a.lon, sensor_iv))
    for sid, c, la, lo in world.rain:
        streams.append(_Stream("sensor", sid, "rain", None, c, la, lo, sensor_iv))
    for g in world.water:
        _, la, lo = world.water_sid[g.source_id]
        streams.append(_Stream("sensor", g.source_id, "water", g, g.commune, la, lo,
                               sensor_iv))
    for cam in world.cameras:
        streams.append(_Stream("traffic", cam.source_id, "camera", cam, cam.commune,
                               cam.lat, cam.lon, traffic_iv))
    phase = rng(seed, "phase")
    heap: list[tuple[float, int]] = [
        (t_start + phase.random() * s.interval, i) for i, s in enumerate(streams)]
    service_rate = rate * SHARES["service"]
    svc_rng = rng(seed, "service")
    svc_idx = len(streams)
    if service_rate > 0:
        heap.append((t_start + svc_rng.expovariate(service_rate), svc_idx))
    heapq.heapify(heap)
    noise = rng(seed, "noise")
    bad = rng(seed, "bad")
    last_valid: dict[str, bytes] = {}
    while heap:
        t, i = heap[0]
        if t >= t_end:
            return
        if i == svc_idx:
            heapq.heapreplace(heap, (t + svc_rng.expovariate(service_rate), i))
            ev = _service(world, t, svc_rng)
        else:
            s = streams[i]
            heapq.heapreplace(heap, (t + s.interval, i))
            ev = _reading(world, s, t, weather, noise)
        if bad_share > 0 and bad.random() < bad_share:
            ev = _spoil(ev, bad, last_valid)
        elif bad_share > 0 and isinstance(ev.payload, dict):
            last_valid[ev.key] = msgspec.json.encode(ev.payload)
        yield ev


def generate(province: str = "01", start: datetime | float = 0.0, span: float = 3600.0,
             rate: float = 100.0, seed: int = 0, bad_share: float = 0.0
             ) -> Iterator[tuple[str, str, dict[str, Any] | bytes]]:
    """(feed, key, payload) triples: the pure generator API (see :func:`events`)."""
    for ev in events(province, start, span, rate, seed, bad_share):
        yield ev.feed, ev.key, ev.payload


def _spoil(ev: SimEvent, r: random.Random, last_valid: dict[str, bytes]) -> SimEvent:
    prev = last_valid.get(ev.key)
    reason: str
    if prev is not None and r.random() < 0.06:
        raw, reason = prev, Reason.DUPLICATE_EVENT_ID
    else:
        assert isinstance(ev.payload, dict)
        raw, reason = corrupt(ev.payload, r)
    truth = Truth(False, str(reason), ev.truth.commune_code, ev.truth.metric)
    return ev._replace(payload=raw, truth=truth)


def _envelope(feed: str, source_id: str, n: int, t: float, world: World
              ) -> dict[str, Any]:
    return {
        "schema_version": 1, "feed": feed, "event_id": f"{source_id}-{n:09d}",
        "source_id": source_id, "department": f"{world.province}-{DEPARTMENTS[feed]}",
        "occurred_at": physics.local(t).isoformat(timespec="milliseconds"),
    }


def _reading(world: World, s: _Stream, t: float, weather: Weather, noise: random.Random
             ) -> SimEvent:
    n = world.counters[s.source_id] = world.counters.get(s.source_id, 0) + 1
    env = _envelope(s.feed, s.source_id, n, t, world)
    env["location"] = {"lat": s.lat, "lon": s.lon}
    extra: dict[str, Any] = {}
    if s.kind == "camera":
        cam: Camera = s.obj
        count, speed, occ, incident = physics.traffic_values(
            cam, t, s.interval, weather, world.seed, noise)
        env["body"] = {"segment_id": cam.segment_id, "vehicle_count": count,
                       "avg_speed_kmh": round(speed, 1), "occupancy": round(occ, 3),
                       "incident": incident}
        return SimEvent("traffic", s.source_id, env,
                        Truth(True, None, s.commune.code, None, float(count),
                              {"incident": incident, "speed": speed}), t)
    if s.kind == "rain":
        hours = s.interval / physics.HOUR
        mm = weather.rain_at(t, s.commune) * hours
        value, unit, metric, sent = mm, "mm", "rainfall", round(mm, 2)
    elif s.kind == "water":
        gauge: WaterGauge = s.obj
        value = weather.water_level(t, gauge) + noise.gauss(0.0, 0.005)
        unit, metric = "m", "water_level"
        sent = round(value, 3)
        extra["flood_level"] = sum(value >= x for x in FLOOD_LEVELS_M)
    else:
        station: AirStation = s.obj
        metric = s.kind[4:]
        value = _air_value(world, station, metric, t, weather, noise)
        unit, sent = _as_sent(station, metric, value)
    env["body"] = {"metric": metric, "value": sent, "unit": unit}
    return SimEvent("sensor", s.source_id, env,
                    Truth(True, None, s.commune.code, metric, value, extra), t)


def _air_value(world: World, station: AirStation, metric: str, t: float, weather: Weather,
               noise: random.Random) -> float:
    # The 8 metrics of a station share one evaluation per (station, minute).
    key = (station.source_id, t // 60.0)
    cache = world.air_cache
    vals = cache.get(key)
    if vals is None:
        if len(cache) > 50_000:
            cache.clear()
        vals = physics.air_values(station, t, weather, world.seed, noise)
        cache[key] = vals
    return vals[metric]


def _as_sent(station: AirStation, metric: str, value: float) -> tuple[str, float]:
    if metric in ("pm25", "pm10"):
        if station.pm_unit == "mg/m3":
            return "mg/m3", round(value / 1000.0, 5)
        return "µg/m3", round(value, 1)
    if metric in _UNIT_SENT:
        factor = _UNIT_SENT[metric][station.gas_unit]
        return station.gas_unit, round(value * factor, 5 if factor == 1.0 else 2)
    if metric == "temperature":
        if station.temp_unit == "K":
            return "K", round(value + 273.15, 2)
        return "°C", round(value, 2)
    if metric == "humidity":
        return "%", round(value, 1)
    return "dBA", round(value, 1)


def _service(world: World, t: float, r: random.Random) -> SimEvent:
    agency = world.agencies[_pick_agency(world, r)]
    body, code, truth = dossiers.next_event(agency, t, world.communes, r)
    n = world.counters[agency.source_id] = world.counters.get(agency.source_id, 0) + 1
    env = _envelope("service", agency.source_id, n, t, world)
    env["commune_code"] = code
    env["body"] = body
    truth["agency_level"] = "commune" if agency.commune is not None else "province"
    truth["agency"] = agency.agency
    return SimEvent("service", agency.source_id, env, Truth(True, None, code, None, None, truth),
                    t)


def _pick_agency(world: World, r: random.Random) -> int:
    n_communes = len(world.communes)
    if r.random() < 0.7:
        return r.randrange(n_communes)
    return n_communes + r.randrange(len(world.agencies) - n_communes)


def expected_total(rate: float, span: float) -> int:
    """Approximate number of events :func:`events` yields."""
    return math.floor(rate * span)
