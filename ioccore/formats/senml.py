"""SenML (RFC 8428, JSON) packs into ioc envelopes.

A pack is a JSON array of records; base fields (``bn``, ``bt``, ``bu``, ``bv``) apply to
the records after them until changed (RFC 8428 section 4.6). The MQTT topic names the
department, the feed and the source, so names only say *what* was measured:

* ``sensor``: every record with a number (``v``) is one reading; its name (``n``, or
  the base name when ``n`` is empty) is the metric (:data:`METRIC_ALIASES`), its unit
  (``u``/``bu``) is translated by :data:`UNITS` and checked by the validator like any
  envelope's;
* ``traffic``: the records of one time make one traffic event, their names the body
  fields (``vehicle_count``, ``avg_speed_kmh`` or ``speed`` with a unit, ``occupancy``,
  ``segment_id``/``incident`` as strings ``vs``; the segment defaults to the source);
* records in the units ``lat`` and ``lon`` (or named so) give the pack's location.

Times must be absolute (``bt + t`` at least 2**28 s, RFC 8428 section 4.5.3): a
relative time would be resolved against the bridge's clock, and a redelivered message
would then be a new reading. Each event gets a derived id
(:func:`ioccore.formats.eventid.derive`).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any, Final

from ioccore.formats import problems as p
from ioccore.formats.eventid import canonical_time, derive
from ioccore.formats.problems import Problem

MAX_RECORDS: Final = 1000
RELATIVE_LIMIT: Final = 2 ** 28
"""RFC 8428: times below this are relative to now."""
_BASE = ("bn", "bt", "bu", "bv", "bs", "bver")
_FIELDS = frozenset({*_BASE, "n", "u", "v", "vs", "vb", "vd", "s", "t", "ut"})
SENML_KEYS: Final = _FIELDS

METRIC_ALIASES: Final[dict[str, str]] = {
    "pm2.5": "pm25", "pm2_5": "pm25", "pm25": "pm25", "pm10": "pm10",
    "no2": "no2", "o3": "o3", "co": "co", "so2": "so2",
    "temp": "temperature", "temperature": "temperature",
    "hum": "humidity", "humidity": "humidity", "rh": "humidity",
    "level": "water_level", "water_level": "water_level", "waterlevel": "water_level",
    "rain": "rainfall", "rainfall": "rainfall", "precipitation": "rainfall",
    "noise": "noise", "wind_speed": "wind_speed", "windspeed": "wind_speed",
}
"""SenML record names (lower case) -> ioc metrics; other names pass through unchanged
(and the validator says ``unknown_metric``)."""

UNITS: Final[dict[str, str]] = {
    "Cel": "C", "K": "K", "%RH": "%", "%": "%", "/": "fraction", "m": "m", "mm": "mm",
    "cm": "cm", "m/s": "m/s", "km/h": "km/h", "ppm": "ppm", "ppb": "ppb",
    "ug/m3": "ug/m3", "mg/m3": "mg/m3", "dB": "dBA", "dBA": "dBA",
}
"""SenML units (RFC 8428 section 12.1, plus the concentrations devices use) -> ioc units;
other units pass through to the validator."""

TRAFFIC_FIELDS: Final = ("vehicle_count", "avg_speed_kmh", "occupancy")


def is_senml(value: Any) -> bool:
    """Whether a decoded payload looks like a SenML pack rather than ioc envelopes."""
    if not isinstance(value, list) or not value or not isinstance(value[0], dict):
        return False
    keys = set(value[0])
    return bool(keys) and "schema_version" not in keys and keys <= _FIELDS | {
        k for k in keys if k.endswith("_")}


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    f = float(value)
    return f if math.isfinite(f) else None


def convert(pack: Any, *, department: str, feed: str, source_id: str
            ) -> tuple[list[dict[str, Any]], list[Problem]]:
    """The envelopes of a decoded pack, and what was refused (by record index)."""
    if not isinstance(pack, list) or not pack:
        return [], [Problem(p.INVALID_SENML, "a SenML pack is a non-empty JSON array")]
    if len(pack) > MAX_RECORDS:
        return [], [Problem(p.INVALID_SENML, f"more than {MAX_RECORDS} records in a pack")]
    if feed not in ("sensor", "traffic"):
        return [], [Problem(p.UNSUPPORTED_FEED, f"SenML carries sensor and traffic "
                            f"readings, not {feed} events; send ioc envelopes")]
    resolved: list[tuple[int, dict[str, Any]]] = []
    problems: list[Problem] = []
    base: dict[str, Any] = {}
    for i, rec in enumerate(pack):
        if not isinstance(rec, dict):
            problems.append(Problem(p.INVALID_SENML, "a record must be a JSON object", i))
            continue
        unknown = [k for k in rec if k.endswith("_")]
        if unknown:
            problems.append(Problem(p.SENML_MUST_UNDERSTAND,
                                    f"must-understand field {unknown[0][:40]!r}", i))
            continue
        for k in _BASE:
            if k in rec:
                base[k] = rec[k]
        r, err = _resolve(rec, base)
        if err is not None:
            problems.append(Problem(err[0], err[1], i))
            continue
        if r is not None:
            resolved.append((i, r))
    location = _location(resolved)
    readings = [(i, r) for i, r in resolved if not r["is_location"]]
    if feed == "sensor":
        events, more = _sensor(readings, department, source_id)
    else:
        events, more = _traffic(readings, department, source_id)
    for e in events:
        if location is not None:
            e["location"] = location
    return events, problems + more


def _resolve(rec: Mapping[str, Any], base: Mapping[str, Any]
             ) -> tuple[dict[str, Any] | None, tuple[str, str] | None]:
    """A record with its base values applied: name, unit, time, value/string."""
    bn, n = base.get("bn", ""), rec.get("n", "")
    if not isinstance(bn, str) or not isinstance(n, str):
        return None, (p.INVALID_SENML, "bn and n must be strings")
    bt, t = base.get("bt", 0), rec.get("t", 0)
    bt_n, t_n = _number(bt), _number(t)
    if bt_n is None or t_n is None:
        return None, (p.INVALID_SENML, "bt and t must be numbers")
    when = bt_n + t_n
    if when < RELATIVE_LIMIT:
        return None, (p.SENML_TIME_MISSING, f"the record's time {when:g} is relative "
                      "(below 2**28 s); give bt or t in seconds since 1970")
    unit = rec.get("u", base.get("bu"))
    if unit is not None and not isinstance(unit, str):
        return None, (p.INVALID_SENML, "u and bu must be strings")
    name = (n or bn.rstrip(":/").rsplit(":", 1)[-1].rsplit("/", 1)[-1]).strip()
    is_location = unit in ("lat", "lon") or name.lower() in ("lat", "lon")
    value: float | None = None
    if "v" in rec or ("bv" in base and "vs" not in rec and "vb" not in rec):
        v = _number(rec.get("v", 0))
        b = _number(base.get("bv", 0))
        if v is None or b is None:
            return None, (p.SENML_NOT_NUMERIC, f"{name[:40]!r}: v must be a finite number")
        value = v + b
    string = rec.get("vs")
    try:
        stamp = datetime.fromtimestamp(when, UTC)
    except (OverflowError, OSError, ValueError):
        return None, (p.INVALID_SENML, f"time {when:g} is out of range")
    return {"name": name, "unit": unit, "time": canonical_time(stamp), "value": value,
            "string": string if isinstance(string, str) else None,
            "is_location": is_location}, None


def _location(resolved: list[tuple[int, dict[str, Any]]]) -> dict[str, float] | None:
    got: dict[str, float] = {}
    for _, r in resolved:
        if r["is_location"] and r["value"] is not None:
            key = r["unit"] if r["unit"] in ("lat", "lon") else r["name"].lower()
            got[key] = r["value"]
    if "lat" in got and "lon" in got:
        return {"lat": got["lat"], "lon": got["lon"]}
    return None


def _envelope(department: str, feed: str, source_id: str, when: str,
              body: dict[str, Any]) -> dict[str, Any]:
    return {"schema_version": 1, "feed": feed,
            "event_id": derive(source_id, when, {"feed": feed, "body": body}),
            "source_id": source_id, "department": department, "occurred_at": when,
            "body": body}


def _sensor(readings: list[tuple[int, dict[str, Any]]], department: str, source_id: str
            ) -> tuple[list[dict[str, Any]], list[Problem]]:
    events: list[dict[str, Any]] = []
    problems: list[Problem] = []
    for i, r in readings:
        if r["value"] is None:
            problems.append(Problem(p.SENML_NOT_NUMERIC,
                                    f"{r['name'][:40]!r} has no numeric value v", i))
            continue
        metric = METRIC_ALIASES.get(r["name"].lower(), r["name"])
        unit = UNITS.get(r["unit"], r["unit"]) if r["unit"] is not None else ""
        events.append(_envelope(department, "sensor", source_id, r["time"],
                                {"metric": metric, "value": r["value"], "unit": unit}))
    return events, problems


def _traffic(readings: list[tuple[int, dict[str, Any]]], department: str, source_id: str
             ) -> tuple[list[dict[str, Any]], list[Problem]]:
    by_time: dict[str, dict[str, Any]] = {}
    problems: list[Problem] = []
    for i, r in readings:
        name = r["name"].lower()
        body = by_time.setdefault(r["time"], {"segment_id": source_id})
        if name in ("segment_id", "incident"):
            if r["string"] is None:
                problems.append(Problem(p.INVALID_SENML, f"{name} must be a string (vs)", i))
            else:
                body[name] = r["string"]
            continue
        if r["value"] is None:
            problems.append(Problem(p.SENML_NOT_NUMERIC, f"{name[:40]!r} has no value v", i))
            continue
        value, unit = r["value"], r["unit"]
        if name in ("speed", "avg_speed", "avg_speed_kmh"):
            body["avg_speed_kmh"] = value * 3.6 if unit == "m/s" else value
        elif name == "occupancy":
            body["occupancy"] = value / 100.0 if unit == "%" else value
        elif name in ("vehicle_count", "count", "intensity"):
            body["vehicle_count"] = int(value) if value.is_integer() else value
        else:
            body[name] = value  # the validator refuses it as unknown_field
    events = [_envelope(department, "traffic", source_id, when, body)
              for when, body in by_time.items()]
    return events, problems
