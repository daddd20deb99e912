"""The simulated world: weather, air quality, water levels and traffic as functions of
time and place. Pure and deterministic: every random draw comes from a
``random.Random`` seeded by (seed, what, where, when) strings, so a value does not
depend on how many events were generated before it.

Local time is Vietnam time (UTC+7); diurnal shapes use the local hour.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from functools import lru_cache

from iocdev.simulate.communes import Commune

VN_TZ = timezone(timedelta(hours=7))
HOUR = 3600.0
DAY = 86_400.0

FLOOD_LEVELS_M = (1.5, 2.0, 2.5)
"""Alarm levels I, II, III (metres above the gauge datum) used for ground truth."""

PM25_UNHEALTHY = 55.5
"""Lower bound of the 'unhealthy' PM2.5 band (µg/m3, 24 h; US EPA AQI 151+)."""

# Hà Nội monthly mean temperature (°C), January first.
_MONTH_TEMP = (16.4, 17.2, 20.2, 23.9, 27.4, 29.0, 29.2, 28.6, 27.5, 24.9, 21.5, 18.2)
# Seasonal PM factor (winter inversions and burning; summer rain washout).
_MONTH_PM = (1.0, 0.95, 0.8, 0.65, 0.5, 0.45, 0.42, 0.45, 0.55, 0.75, 0.95, 1.0)
_WET_MONTHS = frozenset({5, 6, 7, 8, 9, 10})


def rng(seed: int, *parts: object) -> random.Random:
    """A generator seeded by the seed and a path of names (stable across processes)."""
    return random.Random(f"{seed}:" + ":".join(str(p) for p in parts))


def local(t: float) -> datetime:
    return datetime.fromtimestamp(t, VN_TZ)


def local_hour(t: float) -> float:
    """Hour of day in Vietnam, fractional (0..24)."""
    return ((t + 7 * HOUR) % DAY) / HOUR


def bump(h: float, mu: float, sigma: float) -> float:
    """A Gaussian bump over the hour of day, wrapping around midnight."""
    d = abs(h - mu)
    d = min(d, 24.0 - d)
    return math.exp(-0.5 * (d / sigma) ** 2)


def traffic_factor(t: float) -> float:
    """Relative traffic demand 0.1..1.0: morning and evening rush, a midday shoulder."""
    h = local_hour(t)
    wd = local(t).weekday()
    weekend = 0.8 if wd >= 5 else 1.0
    f = 0.1 + 0.9 * min(1.0, bump(h, 7.75, 1.1) + 0.9 * bump(h, 17.75, 1.3)
                       + 0.45 * bump(h, 12.0, 2.5) + 0.2 * bump(h, 21.0, 1.5))
    return f * weekend


def pm_diurnal(t: float) -> float:
    """PM diurnal factor: rush-hour peaks at ~08:00 and ~18:30, night inversion."""
    h = local_hour(t)
    return (0.78 + 0.55 * bump(h, 8.0, 1.3) + 0.45 * bump(h, 18.5, 1.6)
            + 0.15 * bump(h, 22.5, 2.0) - 0.1 * bump(h, 14.0, 2.0))


@dataclass(slots=True)
class Weather:
    """Province-wide hourly rain (mm/h) from a wet/dry Markov chain, and per-gauge water
    levels from a linear reservoir fed by rain over the commune."""

    seed: int
    t0: float  # first hour of the grid (epoch seconds, aligned to the hour)
    rain: list[float]  # mm/h, one per hour from t0

    @classmethod
    def build(cls, seed: int, start: float, end: float) -> Weather:
        t0 = math.floor(start / HOUR) * HOUR - 72 * HOUR  # spin-up for the reservoirs
        hours = math.ceil((end - t0) / HOUR) + 2
        r = rng(seed, "weather")
        rain: list[float] = []
        wet = False
        for i in range(hours):
            month = local(t0 + i * HOUR).month
            rainy_season = month in _WET_MONTHS
            p_start, p_stop = (0.05, 0.22) if rainy_season else (0.012, 0.35)
            wet = (r.random() > p_stop) if wet else (r.random() < p_start)
            if wet:
                mean = 9.0 if rainy_season else 1.2
                rain.append(min(120.0, r.lognormvariate(math.log(mean), 0.9)))
            else:
                rain.append(0.0)
        return cls(seed, t0, rain)

    def _index(self, t: float) -> tuple[int, float]:
        x = (t - self.t0) / HOUR
        i = max(0, min(len(self.rain) - 2, int(x)))
        return i, x - i

    def rain_at(self, t: float, commune: Commune) -> float:
        """Rain intensity (mm/h) over a commune at time t."""
        i, _ = self._index(t)
        base = self.rain[i]
        if base == 0.0:
            return 0.0
        m = _commune_rain_factor(self.seed, commune.code, i)
        return base * m

    def water_level(self, t: float, gauge: WaterGauge) -> float:
        """Water level (m above datum) at a gauge: baseline plus reservoir storage."""
        i, frac = self._index(t)
        levels = _levels(self, gauge)
        return levels[i] + (levels[i + 1] - levels[i]) * frac


@lru_cache(maxsize=200_000)
def _commune_rain_factor(seed: int, code: str, hour: int) -> float:
    return rng(seed, "rainf", code, hour).uniform(0.5, 1.5)


@dataclass(frozen=True, slots=True)
class WaterGauge:
    source_id: str
    commune: Commune
    baseline_m: float
    gain_m_per_mm: float
    tau_h: float


_LEVEL_CACHE: dict[tuple[int, str, float], list[float]] = {}


def _levels(weather: Weather, gauge: WaterGauge) -> list[float]:
    key = (weather.seed, gauge.source_id, weather.t0)
    hit = _LEVEL_CACHE.get(key)
    if hit is not None and len(hit) == len(weather.rain):
        return hit
    decay = math.exp(-1.0 / gauge.tau_h)
    storage = 0.0
    out = []
    for i in range(len(weather.rain)):
        rain = weather.rain[i]
        if rain:
            rain *= _commune_rain_factor(weather.seed, gauge.commune.code, i)
        storage = storage * decay + gauge.gain_m_per_mm * rain
        out.append(gauge.baseline_m + storage)
    if len(_LEVEL_CACHE) > 10_000:
        _LEVEL_CACHE.clear()
    _LEVEL_CACHE[key] = out
    return out


@dataclass(frozen=True, slots=True)
class AirStation:
    source_id: str
    commune: Commune
    lat: float
    lon: float
    pm_base: float  # µg/m3 winter daily mean at this station
    pm10_ratio: float
    pm_unit: str  # "µg/m3" or "mg/m3" (vendor difference; converted by stage 1)
    gas_unit: str  # "ppm" or "ppb"
    temp_unit: str  # "°C" or "K"


def day_factor(seed: int, t: float) -> float:
    """Day-to-day PM variation (weather patterns), lognormal around 1."""
    d = int((t + 7 * HOUR) // DAY)
    return _day_factor(seed, d)


@lru_cache(maxsize=4096)
def _day_factor(seed: int, day: int) -> float:
    return min(2.2, rng(seed, "pmday", day).lognormvariate(0.0, 0.25))


def air_values(station: AirStation, t: float, weather: Weather, seed: int,
               noise: random.Random) -> dict[str, float]:
    """True values (canonical units) of every metric at a station at time t."""
    month = local(t).month
    rain = weather.rain_at(t, station.commune)
    washout = 1.0 / (1.0 + 0.08 * rain)
    tf = traffic_factor(t)
    pm25 = (station.pm_base * _MONTH_PM[month - 1] * pm_diurnal(t) * day_factor(seed, t)
            * washout * noise.lognormvariate(0.0, 0.08))
    pm10 = pm25 * station.pm10_ratio * noise.lognormvariate(0.0, 0.05)
    urban = 1.0 if station.commune.urban else 0.6
    h = local_hour(t)
    temp = (_MONTH_TEMP[month - 1] + 3.5 * math.cos(2 * math.pi * (h - 14.5) / 24.0)
            - min(4.0, 0.3 * rain) + noise.gauss(0.0, 0.3))
    humidity = max(30.0, min(100.0, 78.0 - 12.0 * math.cos(2 * math.pi * (h - 14.5) / 24.0)
                             + 2.0 * rain + noise.gauss(0.0, 2.0)))
    no2 = max(0.002, (0.010 + 0.035 * tf * urban) * noise.lognormvariate(0.0, 0.1))
    co = max(0.1, (0.35 + 1.6 * tf * urban) * noise.lognormvariate(0.0, 0.1))
    o3 = max(0.002, (0.008 + 0.05 * bump(h, 14.0, 3.0) * (0.5 if rain else 1.0))
             * noise.lognormvariate(0.0, 0.1))
    noise_db = 42.0 + 25.0 * tf * urban + 6.0 * urban + noise.gauss(0.0, 1.5)
    return {"pm25": pm25, "pm10": pm10, "no2": no2, "o3": o3, "co": co,
            "temperature": temp, "humidity": humidity, "noise": noise_db}


AIR_METRICS = ("pm25", "pm10", "no2", "o3", "co", "temperature", "humidity", "noise")


@dataclass(frozen=True, slots=True)
class Camera:
    source_id: str
    segment_id: str
    commune: Commune
    lat: float
    lon: float
    capacity_per_min: float
    free_flow_kmh: float


INCIDENT_KINDS = (("accident", 0.4), ("breakdown", 0.4), ("roadworks", 0.1), ("fire", 0.02),
                  ("other", 0.08))


def incident_at(seed: int, camera: Camera, t: float, rain_mm_h: float) -> str | None:
    """An incident on the camera's segment at t (drawn per hour: ~1.5% of hours; heavy
    rain adds flooding)."""
    hour = int(t // HOUR)
    for hh in (hour, hour - 1):
        kind, begin, end = _incident(seed, camera.source_id, hh)
        if kind is not None and begin <= t < end:
            return kind
    if rain_mm_h > 25.0 and _flood_prone(seed, camera.source_id):
        return "flooding"
    return None


@lru_cache(maxsize=100_000)
def _incident(seed: int, source_id: str, hour: int) -> tuple[str | None, float, float]:
    r = rng(seed, "incident", source_id, hour)
    if r.random() >= 0.015:
        return None, 0.0, 0.0
    x = r.random()
    acc = 0.0
    kind = "other"
    for name, p in INCIDENT_KINDS:
        acc += p
        if x < acc:
            kind = name
            break
    begin = hour * HOUR + r.uniform(0, HOUR)
    return kind, begin, begin + r.uniform(15 * 60, 90 * 60)


@lru_cache(maxsize=10_000)
def _flood_prone(seed: int, source_id: str) -> bool:
    return rng(seed, "floodprone", source_id).random() < 0.25


def traffic_values(camera: Camera, t: float, interval_s: float, weather: Weather, seed: int,
                   noise: random.Random) -> tuple[int, float, float, str | None]:
    """(vehicle_count over the interval, avg speed km/h, occupancy, incident)."""
    rain = weather.rain_at(t, camera.commune)
    incident = incident_at(seed, camera, t, rain)
    flow = camera.capacity_per_min * traffic_factor(t) * noise.lognormvariate(0.0, 0.12)
    load = flow / camera.capacity_per_min
    occupancy = 0.85 * load ** 1.6
    if incident is not None:
        occupancy = min(0.97, occupancy + 0.35)
        flow *= 0.6
    occupancy = max(0.0, min(0.97, occupancy + noise.gauss(0.0, 0.02)))
    speed = camera.free_flow_kmh * (1.0 - 0.85 * occupancy ** 2) / (1.0 + 0.01 * rain)
    speed = max(2.0, speed + noise.gauss(0.0, 1.5))
    if incident is None and occupancy > 0.6:
        incident = "congestion"
    count = max(0, round(flow * interval_s / 60.0 + noise.gauss(0.0, 0.5)))
    return count, speed, occupancy, incident


def utc(t: float) -> datetime:
    return datetime.fromtimestamp(t, UTC)
