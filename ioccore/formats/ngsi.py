"""NGSI-LD entities (normalized or keyValues) into ioc envelopes, by the tables of
``ngsi_models.yaml``.

What a context broker sends: a notification ``{"id", "type": "Notification",
"subscriptionId", "notifiedAt", "data": [entities]}``, or (``entityOperations/upsert``)
an array of entities. An entity's ``id`` is the event's ``source_id``; a sensor model
gives one event per mapped attribute, a traffic model one event per entity. Times in
NGSI-LD are UTC (``DateTime``), so a time without an offset is read as UTC. The
``location`` GeoProperty becomes ``{lat, lon}`` (a Point as is; another geometry by the
mean of its positions). Unmapped attributes are ignored; a mapped attribute that cannot
be read is a :class:`Problem` naming it, and the entity's other attributes still count.
Event ids are derived (:func:`ioccore.formats.eventid.derive`) from the entity id, the
observation time and the attribute and its value, so a broker notifying the same
observation twice stores it once.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC
from functools import lru_cache
from pathlib import Path
from typing import Any, Final

import yaml

from ioccore.formats import problems as p
from ioccore.formats.eventid import canonical_time, derive, parse_time
from ioccore.formats.problems import Problem

MODELS_FILE: Final = Path(__file__).with_name("ngsi_models.yaml")
MAX_ENTITIES: Final = 1000
_TYPED: Final = frozenset({"Property", "GeoProperty", "Relationship", "LanguageProperty",
                           "VocabProperty", "JsonProperty", "ListProperty"})


@dataclass(frozen=True, slots=True)
class Models:
    unit_codes: dict[str, str]
    models: dict[str, dict[str, Any]]


@lru_cache(maxsize=1)
def models() -> Models:
    raw = yaml.safe_load(MODELS_FILE.read_text())
    return Models({str(k): str(v) for k, v in raw["unit_codes"].items()}, raw["models"])


def entities_of(body: Any) -> tuple[list[Any], Problem | None]:
    """The entities of a notification, an upsert array or a single entity."""
    if isinstance(body, dict) and body.get("type") == "Notification":
        data = body.get("data")
        if not isinstance(data, list):
            return [], Problem(p.INVALID_NGSI, "a notification's data must be an array")
        body = data
    elif isinstance(body, dict):
        body = [body]
    if not isinstance(body, list):
        return [], Problem(p.INVALID_NGSI, "expected a notification, an entity or an "
                           "array of entities")
    if len(body) > MAX_ENTITIES:
        return [], Problem(p.INVALID_NGSI, f"more than {MAX_ENTITIES} entities")
    return body, None


def _short_type(value: Any) -> str | None:
    """``AirQualityObserved`` also from an expanded ``https://.../AirQualityObserved``."""
    if not isinstance(value, str):
        return None
    return value.rsplit("/", 1)[-1].rsplit("#", 1)[-1]


def _short_name(key: str) -> str:
    return key.rsplit("/", 1)[-1].rsplit("#", 1)[-1].lower()


def _attr(entity: dict[str, Any], name: str) -> Any:
    """The attribute ``name``, matched in any case (the models' examples spell ``NO2``
    in one version and ``no2`` in the next) and also when a broker sent it expanded
    (``https://smartdatamodels.org/dataModel.Environment/NO2``: a subscription whose
    ``@context`` lacks the model's)."""
    value = entity.get(name)
    if value is None:
        lower = name.lower()
        value = next((v for k, v in entity.items() if _short_name(k) == lower), None)
    if isinstance(value, list) and value:  # a multi-attribute: its default instance
        plain = [v for v in value if isinstance(v, dict) and "datasetId" not in v]
        value = (plain or value)[0]
    return value


def _is_typed(value: Any) -> bool:
    """A normalized attribute: NGSI-LD (``Property``, ...) or NGSI v2 style (``Number``,
    ``DateTime``, ``geo:json``) with its ``value``; a keyValues value such as an address
    object or a GeoJSON geometry has no ``value`` member."""
    return isinstance(value, dict) and (value.get("type") in _TYPED or (
        isinstance(value.get("type"), str) and "value" in value))


def _value(attr: Any) -> Any:
    """The attribute's value in either form (``{"@value": ...}`` unwrapped)."""
    v = attr.get("value", attr.get("object")) if _is_typed(attr) else attr
    if isinstance(v, dict) and "@value" in v:
        v = v["@value"]
    return v


def _time(text: Any) -> str | None:
    if not isinstance(text, str):
        return None
    if "/" in text:  # an interval "start/end": the observation ends at its end
        text = text.rsplit("/", 1)[-1]
    parsed = parse_time(text)
    if parsed is None:
        parsed = parse_time(text + "Z")  # NGSI-LD DateTime is UTC
    return None if parsed is None else canonical_time(parsed.astimezone(UTC))


def _location(entity: dict[str, Any]) -> tuple[dict[str, float] | None, str | None]:
    attr = _attr(entity, "location")
    if attr is None:
        return None, None
    geo = _value(attr)
    if not isinstance(geo, dict):
        return None, "location is not GeoJSON"
    coords: list[tuple[float, float]] = []

    def walk(c: Any, depth: int = 0) -> None:
        if depth > 6 or len(coords) > 10_000:
            return
        if (isinstance(c, list) and len(c) >= 2 and all(
                isinstance(x, int | float) and not isinstance(x, bool) for x in c[:2])):
            coords.append((float(c[0]), float(c[1])))
        elif isinstance(c, list):
            for x in c:
                walk(x, depth + 1)

    walk(geo.get("coordinates"))
    if not coords or not all(math.isfinite(x) and math.isfinite(y) for x, y in coords):
        return None, "location has no coordinates"
    lon = sum(x for x, _ in coords) / len(coords)
    lat = sum(y for _, y in coords) / len(coords)
    return {"lat": round(lat, 7), "lon": round(lon, 7)}, None


def convert(entities: list[Any], *, department: str
            ) -> tuple[list[dict[str, Any]], list[Problem]]:
    """The envelopes of ``entities`` and the problems, by entity index."""
    table = models()
    events: list[dict[str, Any]] = []
    problems: list[Problem] = []
    for i, entity in enumerate(entities):
        if not isinstance(entity, dict) or not isinstance(entity.get("id"), str) \
                or not entity["id"] or len(entity["id"]) > 128:
            problems.append(Problem(p.INVALID_NGSI, "an entity needs an id (1-128 "
                                    "characters) and a type", i))
            continue
        etype = _short_type(entity.get("type"))
        model = table.models.get(etype or "")
        if model is None:
            problems.append(Problem(p.UNKNOWN_ENTITY_TYPE, f"no mapping for entity type "
                                    f"{str(entity.get('type'))[:80]!r}", i))
            continue
        location, bad_location = _location(entity)
        if bad_location is not None:
            problems.append(Problem(p.INVALID_ATTRIBUTE, bad_location, i, "location"))
            continue
        when = next((t for t in (_time(_value(_attr(entity, a))) for a in model["time"]
                                 if _attr(entity, a) is not None) if t), None)
        base: dict[str, Any] = {"schema_version": 1, "feed": model["feed"],
                                "source_id": entity["id"], "department": department}
        if location is not None:
            base["location"] = location
        if model["feed"] == "sensor":
            made, more = _sensor(entity, i, model, when, base, table.unit_codes)
        else:
            made, more = _traffic(entity, i, model, when, base, table.unit_codes)
        events += made
        problems += more
    return events, problems


def _number(v: Any) -> float | None:
    if isinstance(v, bool) or not isinstance(v, int | float):
        return None
    f = float(v)
    return f if math.isfinite(f) else None


def _sensor(entity: dict[str, Any], index: int, model: dict[str, Any], when: str | None,
            base: dict[str, Any], codes: dict[str, str]
            ) -> tuple[list[dict[str, Any]], list[Problem]]:
    events: list[dict[str, Any]] = []
    problems: list[Problem] = []
    for name, spec in model["metrics"].items():
        attr = _attr(entity, name)
        if attr is None:
            continue
        value = _number(_value(attr))
        if value is None:
            problems.append(Problem(p.INVALID_ATTRIBUTE, f"{name}: the value is not a "
                                    "finite number", index, name))
            continue
        code = attr.get("unitCode", spec["unit"]) if _is_typed(attr) else spec["unit"]
        unit = codes.get(str(code))
        if unit is None:
            problems.append(Problem(p.UNKNOWN_UNIT_CODE, f"{name}: unitCode "
                                    f"{str(code)[:20]!r} is not converted", index, name))
            continue
        at = _time(attr.get("observedAt")) if _is_typed(attr) else None
        t = at or when
        if t is None:
            problems.append(Problem(p.INVALID_ATTRIBUTE, f"{name}: no observation time "
                                    f"({', '.join(model['time'])} or observedAt)", index,
                                    name))
            continue
        body = {"metric": spec["metric"], "value": value, "unit": unit}
        events.append({**base, "event_id": derive(base["source_id"], t, {
            "attribute": name, "value": value, "unit": unit}),
            "occurred_at": t, "body": body})
    return events, problems


def _traffic(entity: dict[str, Any], index: int, model: dict[str, Any], when: str | None,
             base: dict[str, Any], codes: dict[str, str]
             ) -> tuple[list[dict[str, Any]], list[Problem]]:
    body: dict[str, Any] = {"segment_id": base["source_id"]}
    problems: list[Problem] = []
    observed: str | None = None
    for name, spec in model["fields"].items():
        attr = _attr(entity, name)
        if attr is None:
            continue
        raw = _value(attr)
        kind = spec.get("kind")
        if _is_typed(attr) and attr.get("observedAt") is not None:
            observed = observed or _time(attr.get("observedAt"))
        if kind == "ref":
            if isinstance(raw, str) and 0 < len(raw) <= 128:
                body[spec["field"]] = raw
            else:
                problems.append(Problem(p.INVALID_ATTRIBUTE, f"{name}: not an id", index,
                                        name))
            continue
        if kind == "flag":
            if not isinstance(raw, bool):
                problems.append(Problem(p.INVALID_ATTRIBUTE, f"{name}: not a boolean",
                                        index, name))
            elif raw:
                body[spec["field"]] = spec["value"]
            continue
        value = _number(raw)
        if value is None:
            problems.append(Problem(p.INVALID_ATTRIBUTE, f"{name}: the value is not a "
                                    "finite number", index, name))
            continue
        code = str(attr.get("unitCode", "")) if _is_typed(attr) else ""
        if kind == "integer":
            if not value.is_integer():
                problems.append(Problem(p.INVALID_ATTRIBUTE, f"{name}: not a whole count",
                                        index, name))
                continue
            body[spec["field"]] = int(value)
        elif kind == "fraction":
            if code and codes.get(code) not in ("%", "fraction"):
                problems.append(Problem(p.UNKNOWN_UNIT_CODE, f"{name}: unitCode "
                                        f"{code[:20]!r} is not a share", index, name))
                continue
            body[spec["field"]] = value / 100.0 if codes.get(code) == "%" else value
        else:
            unit = codes.get(code or spec["unit"])
            if unit not in ("km/h", "m/s"):
                problems.append(Problem(p.UNKNOWN_UNIT_CODE, f"{name}: unitCode "
                                        f"{code[:20]!r} is not a speed", index, name))
                continue
            body[spec["field"]] = value * 3.6 if unit == "m/s" else value
    t = when or observed
    if problems and not any(k in body for k in ("vehicle_count", "avg_speed_kmh",
                                                "occupancy")):
        return [], problems
    if t is None:
        return [], [*problems, Problem(p.INVALID_ATTRIBUTE, "no observation time ("
                                       f"{', '.join(model['time'])})", index)]
    event = {**base, "event_id": derive(base["source_id"], t, {"traffic": body}),
             "occurred_at": t, "body": body}
    return [event], problems
