"""Malformed variants of valid events, each with the reason stage 1 must give.

:func:`corrupt` turns one valid envelope (a dict) into bytes that break exactly one
rule. The bytes never contain a newline (NDJSON-safe), and brackets stay balanced so a
bad element inside a batch array cannot take its neighbours with it.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from typing import Any

import msgspec

from ioccore.events.reasons import Reason

_enc = msgspec.json.Encoder()
Payload = dict[str, Any]
Corruption = Callable[[Payload, random.Random], tuple[bytes, str] | None]


def _dump(p: Payload) -> bytes:
    return _enc.encode(p)


def _copy(p: Payload) -> Payload:
    out = dict(p)
    out["body"] = dict(p["body"])
    if "location" in p:
        out["location"] = dict(p["location"])
    return out


def not_json(p: Payload, r: random.Random) -> tuple[bytes, str]:
    return _dump(p).replace(b'"', b"'"), Reason.NOT_JSON


def not_an_object(p: Payload, r: random.Random) -> tuple[bytes, str]:
    return _enc.encode(p["event_id"]), Reason.NOT_AN_OBJECT


def missing_field(p: Payload, r: random.Random) -> tuple[bytes, str]:
    q = _copy(p)
    del q[r.choice(["event_id", "source_id", "department", "occurred_at", "body"])]
    return _dump(q), Reason.MISSING_FIELD


def wrong_type(p: Payload, r: random.Random) -> tuple[bytes, str]:
    q = _copy(p)
    body = q["body"]
    if "value" in body:
        body["value"] = str(body["value"])
    elif "vehicle_count" in body:
        body["vehicle_count"] = str(body["vehicle_count"])
    else:
        body["fee_bearing"] = "yes"
    return _dump(q), Reason.WRONG_TYPE


def non_finite(p: Payload, r: random.Random) -> tuple[bytes, str] | None:
    q = _copy(p)
    body = q["body"]
    field = "value" if "value" in body else "avg_speed_kmh" if "avg_speed_kmh" in body else None
    if field is None:
        return None
    body[field] = 12345.678
    token = r.choice([b"NaN", b"Infinity", b"-Infinity"])
    return _dump(q).replace(b"12345.678", token), Reason.NON_FINITE_NUMBER


def outside_vietnam(p: Payload, r: random.Random) -> tuple[bytes, str] | None:
    if "location" not in p:
        return None
    q = _copy(p)
    q["location"] = r.choice([{"lat": 35.68, "lon": 139.69}, {"lat": 21.03, "lon": -105.85},
                              {"lat": 1.29, "lon": 103.85}])
    return _dump(q), Reason.LOCATION_OUTSIDE_VIETNAM


def unknown_commune(p: Payload, r: random.Random) -> tuple[bytes, str] | None:
    if "commune_code" not in p:
        return None
    q = _copy(p)
    q["commune_code"] = "99999"
    return _dump(q), Reason.UNKNOWN_COMMUNE_CODE


def negative_count(p: Payload, r: random.Random) -> tuple[bytes, str] | None:
    if "vehicle_count" not in p["body"]:
        return None
    q = _copy(p)
    q["body"]["vehicle_count"] = -r.randint(1, 50)
    return _dump(q), Reason.NEGATIVE_COUNT


def out_of_range(p: Payload, r: random.Random) -> tuple[bytes, str] | None:
    q = _copy(p)
    body = q["body"]
    if "occupancy" in body:
        body["occupancy"] = 1.7
    elif body.get("metric") == "humidity":
        body["value"] = 140.0
    elif body.get("metric") in ("pm25", "pm10"):
        body["value"] = 50_000.0 if body["unit"] != "mg/m3" else 50.0
    elif body.get("metric") == "water_level":
        body["value"] = 75.0 if body["unit"] == "m" else 7500.0
    else:
        return None
    return _dump(q), Reason.OUT_OF_RANGE


def bad_unit(p: Payload, r: random.Random) -> tuple[bytes, str] | None:
    if "unit" not in p["body"]:
        return None
    q = _copy(p)
    if r.random() < 0.5:
        q["body"]["unit"] = "bananas"
        return _dump(q), Reason.UNKNOWN_UNIT
    q["body"]["unit"] = "km/h"
    return _dump(q), Reason.WRONG_UNIT


def no_offset(p: Payload, r: random.Random) -> tuple[bytes, str]:
    q = _copy(p)
    q["occurred_at"] = q["occurred_at"][:-6]  # "...+07:00" -> naive
    return _dump(q), Reason.TIMESTAMP_WITHOUT_OFFSET


def in_future(p: Payload, r: random.Random) -> tuple[bytes, str]:
    q = _copy(p)
    q["occurred_at"] = "2099" + q["occurred_at"][4:]
    return _dump(q), Reason.TIMESTAMP_IN_FUTURE


def bad_timestamp(p: Payload, r: random.Random) -> tuple[bytes, str]:
    q = _copy(p)
    q["occurred_at"] = "03/11/2025 08:00"
    return _dump(q), Reason.INVALID_TIMESTAMP


def unknown_feed(p: Payload, r: random.Random) -> tuple[bytes, str]:
    q = _copy(p)
    q["feed"] = "weather"
    return _dump(q), Reason.UNKNOWN_FEED


def schema_version(p: Payload, r: random.Random) -> tuple[bytes, str]:
    q = _copy(p)
    q["schema_version"] = 2
    return _dump(q), Reason.UNSUPPORTED_SCHEMA_VERSION


def unknown_field(p: Payload, r: random.Random) -> tuple[bytes, str]:
    q = _copy(p)
    q["lng"] = 105.8
    return _dump(q), Reason.UNKNOWN_FIELD


def missing_location(p: Payload, r: random.Random) -> tuple[bytes, str]:
    q = _copy(p)
    q.pop("location", None)
    q.pop("commune_code", None)
    return _dump(q), Reason.MISSING_LOCATION


CORRUPTIONS: tuple[Corruption, ...] = (
    not_json, not_an_object, missing_field, wrong_type, non_finite, outside_vietnam,
    unknown_commune, negative_count, out_of_range, bad_unit, no_offset, in_future,
    bad_timestamp, unknown_feed, schema_version, unknown_field, missing_location,
)


def corrupt(p: Payload, r: random.Random) -> tuple[bytes, str]:
    """Bytes breaking one rule of the contract, and the expected rejection reason."""
    while True:
        out = CORRUPTIONS[r.randrange(len(CORRUPTIONS))](p, r)
        if out is not None:
            return out
