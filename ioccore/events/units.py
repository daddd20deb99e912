"""Canonical units per sensor metric, unit conversions and physical ranges.

Every sensor reading is stored in its metric's canonical unit. A reading in another
unit of the same quantity is converted (``mg/m3`` PM2.5 is multiplied by 1000); a unit
that measures something else is ``wrong_unit``; a unit this module does not know is
``unknown_unit``. Neither is ever stored as given.

Unit spellings are matched after normalisation: surrounding blanks removed, lower
case, ``µ``/``μ`` -> ``u``, ``³`` -> ``3``, ``°`` removed, blanks removed
(so ``"µg/m³"``, ``"ug/m3"`` and ``"UG/M3"`` are the same unit).

Gas concentrations (NO2, O3, CO, SO2) are canonical in ppm; mass concentrations are
converted with the molar volume at 25 °C and 1 atm (24.45 L/mol):
``ppm = mg/m3 * 24.45 / M`` with M the molar mass in g/mol.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Final

MOLAR_VOLUME_L: Final = 24.45
"""Litres per mole of an ideal gas at 25 °C and 101.325 kPa."""

MOLAR_MASS: Final[dict[str, float]] = {"no2": 46.0055, "o3": 47.9982, "co": 28.0101,
                                       "so2": 64.066}

Converter = Callable[[float], float]


def _scale(factor: float) -> Converter:
    return lambda v: v * factor


def _identity(v: float) -> float:
    return v


def _f_to_c(v: float) -> float:
    return (v - 32.0) * 5.0 / 9.0


def _k_to_c(v: float) -> float:
    return v - 273.15


UNIT_ALIASES: Final[dict[str, str]] = {
    # mass concentration
    "ug/m3": "ug/m3", "microgram/m3": "ug/m3", "mg/m3": "mg/m3",
    # mixing ratio
    "ppm": "ppm", "ppb": "ppb",
    # length
    "m": "m", "cm": "cm", "mm": "mm", "in": "in", "ft": "ft",
    # temperature
    "c": "C", "degc": "C", "celsius": "C", "f": "F", "degf": "F", "fahrenheit": "F",
    "k": "K", "kelvin": "K",
    # relative humidity
    "%": "%", "percent": "%", "%rh": "%", "rh%": "%", "fraction": "fraction",
    # sound level
    "db": "dBA", "dba": "dBA", "db(a)": "dBA",
    # speed
    "m/s": "m/s", "km/h": "km/h", "kmh": "km/h",
}
"""Normalised spelling -> unit token. Tokens not listed here are ``unknown_unit``."""


DISPLAY_SPELLINGS: Final[tuple[str, ...]] = (
    "µg/m3", "μg/m3", "µg/m³", "μg/m³", "mg/m³", "°C", "°F", "dB(A)", "dBA", "K", "C", "F",
    "%RH",
)
"""Common spellings listed in the JSON Schema besides the normalised ones."""


def spellings(metric: str) -> list[str]:
    """Every listed spelling accepted for a metric (the validator also accepts any case)."""
    names = set(UNIT_ALIASES) | set(DISPLAY_SPELLINGS)
    return sorted(n for n in names if normalise_unit(n) in CONVERSIONS[metric])


def normalise_unit(unit: str) -> str | None:
    """The unit token for a spelling, or ``None`` when the unit is unknown."""
    key = (unit.strip().lower().replace("µ", "u").replace("μ", "u").replace("³", "3")
           .replace("°", "").replace(" ", ""))
    return UNIT_ALIASES.get(key)


def _gas(metric: str) -> dict[str, Converter]:
    mass = MOLAR_MASS[metric]
    return {
        "ppm": _identity,
        "ppb": _scale(1e-3),
        "mg/m3": _scale(MOLAR_VOLUME_L / mass),
        "ug/m3": _scale(MOLAR_VOLUME_L / mass / 1000.0),
    }


_PM = {"ug/m3": _identity, "mg/m3": _scale(1000.0)}

CANONICAL_UNIT: Final[dict[str, str]] = {
    "pm25": "ug/m3",
    "pm10": "ug/m3",
    "no2": "ppm",
    "o3": "ppm",
    "co": "ppm",
    "so2": "ppm",
    "water_level": "m",
    "rainfall": "mm",
    "temperature": "C",
    "humidity": "%",
    "noise": "dBA",
    "wind_speed": "m/s",
}
"""Metric -> canonical unit token (what ``Record.unit`` holds)."""

CONVERSIONS: Final[dict[str, dict[str, Converter]]] = {
    "pm25": _PM,
    "pm10": _PM,
    "no2": _gas("no2"),
    "o3": _gas("o3"),
    "co": _gas("co"),
    "so2": _gas("so2"),
    "water_level": {"m": _identity, "cm": _scale(0.01), "mm": _scale(0.001),
                    "ft": _scale(0.3048)},
    "rainfall": {"mm": _identity, "cm": _scale(10.0), "in": _scale(25.4)},
    "temperature": {"C": _identity, "F": _f_to_c, "K": _k_to_c},
    "humidity": {"%": _identity, "fraction": _scale(100.0)},
    "noise": {"dBA": _identity},
    "wind_speed": {"m/s": _identity, "km/h": _scale(1 / 3.6)},
}
"""Metric -> accepted unit token -> converter to the canonical unit."""

RANGES: Final[dict[str, tuple[float, float]]] = {
    "pm25": (0.0, 1000.0),       # µg/m3; monitors saturate near 1000
    "pm10": (0.0, 2000.0),       # µg/m3
    "no2": (0.0, 20.0),          # ppm
    "o3": (0.0, 10.0),           # ppm
    "co": (0.0, 1000.0),         # ppm (fires included)
    "so2": (0.0, 20.0),          # ppm
    "water_level": (-10.0, 50.0),  # m above the gauge datum
    "rainfall": (0.0, 500.0),    # mm over the reporting interval
    "temperature": (-30.0, 60.0),  # °C
    "humidity": (0.0, 100.0),    # %
    "noise": (0.0, 160.0),       # dB(A)
    "wind_speed": (0.0, 100.0),  # m/s
}
"""Physical ranges (inclusive) per metric, in canonical units."""

METRICS: Final[tuple[str, ...]] = tuple(CANONICAL_UNIT)

def lookup(metric: str, unit: str) -> tuple[Converter, float, float] | None:
    """Converter and canonical range for a (metric, unit) pair, or ``None`` if refused
    (then :func:`unit_problem` tells why)."""
    token = normalise_unit(unit)
    conv = CONVERSIONS.get(metric, {}).get(token) if token is not None else None
    if conv is None:
        return None
    lo, hi = RANGES[metric]
    return conv, lo, hi


def unit_problem(metric: str, unit: str) -> str:
    """``"unknown_unit"`` or ``"wrong_unit"`` for a pair :func:`lookup` refused."""
    return "unknown_unit" if normalise_unit(unit) is None else "wrong_unit"


def accepted_units(metric: str) -> list[str]:
    """Canonical spellings of the units accepted for a metric (canonical first)."""
    canonical = CANONICAL_UNIT[metric]
    others = sorted(u for u in CONVERSIONS[metric] if u != canonical)
    return [canonical, *others]


def convert(metric: str, value: float, unit: str) -> float:
    """``value`` in ``unit`` expressed in the metric's canonical unit.

    Raises :class:`ioccore.errors.ContractError` for a refused unit.
    """
    from ioccore.errors import ContractError

    hit = lookup(metric, unit)
    if hit is None:
        raise ContractError(unit_problem(metric, unit), f"unit {unit!r} for metric {metric}")
    return hit[0](value)
