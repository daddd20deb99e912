"""Where simulated events happen: the communes of a province with their centroids.

The simulator depends on the geography only through :class:`Commune` lists.
:func:`load_communes` reads the geo engineer's bundled reference
(``geo/data/communes_2025.csv.gz``, columns ``code, name, level, province_code, lat,
lon, area_km2``) with the csv module only (no polygons parsed), and falls back to the
``vietnamadminunits`` package's ``dataset.db`` when the file is absent.
:func:`communes_from_rows` builds the list from any (code, province, lat, lon) rows.
"""

from __future__ import annotations

import csv
import gzip
import io
import sqlite3
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from ioccore.settings import ROOT

DEFAULT_REFERENCE = ROOT / "geo" / "data" / "communes_2025.csv.gz"


@dataclass(frozen=True, slots=True)
class Commune:
    code: str
    province_code: str
    lat: float
    lon: float
    name: str = ""
    area_km2: float = 20.0
    urban: bool = False  # a ward (phường): denser traffic, more pollution


def communes_from_rows(rows: Iterable[tuple[str, str, float, float]]) -> list[Commune]:
    """Communes from bare (commune_code, province_code, lat, lon) rows, sorted by code."""
    return sorted((Commune(c, p, float(la), float(lo)) for c, p, la, lo in rows),
                  key=lambda c: c.code)


def _from_reference(path: Path, province: str) -> list[Commune]:
    out = []
    with gzip.open(path, "rb") as fh:
        text = io.TextIOWrapper(fh, encoding="utf-8", newline="")
        csv.field_size_limit(1 << 30)
        for row in csv.DictReader(text):
            if row["level"] != "commune" or row["province_code"] != province:
                continue
            area = float(row["area_km2"]) if row["area_km2"] else 20.0
            out.append(Commune(row["code"], province, float(row["lat"]), float(row["lon"]),
                               row["name"], area, row.get("type", "").startswith("Phường")
                               or row["name"].startswith("Phường")))
    return sorted(out, key=lambda c: c.code)


def _from_package(province: str) -> list[Commune]:
    import vietnamadminunits

    db = Path(vietnamadminunits.__file__).resolve().parent / "data" / "dataset.db"
    with sqlite3.connect(db) as con:
        rows = con.execute(
            "SELECT wardCode, ward, wardLat, wardLon, wardAreaKm2 FROM admin_units "
            "WHERE provinceCode = ? ORDER BY wardCode", (province,)).fetchall()
    return [Commune(code, province, float(lat), float(lon), name, float(area or 20.0),
                    name.startswith("Phường")) for code, name, lat, lon, area in rows]


def load_communes(province: str = "01", reference: Path | None = None) -> list[Commune]:
    """The communes of ``province`` (two-digit code, e.g. ``"01"`` Hà Nội), sorted by code.

    Raises :class:`ioccore.errors.ConfigError` for a province with no communes.
    """
    from ioccore.errors import ConfigError

    path = reference or DEFAULT_REFERENCE
    communes = _from_reference(path, province) if path.exists() else _from_package(province)
    if not communes:
        raise ConfigError(f"no communes for province {province!r}")
    return communes


def all_commune_codes(reference: Path | None = None) -> set[str]:
    """Every current commune code (for a ``known_commune`` set in tests and demos)."""
    path = reference or DEFAULT_REFERENCE
    if path.exists():
        with gzip.open(path, "rb") as fh:
            text = io.TextIOWrapper(fh, encoding="utf-8", newline="")
            csv.field_size_limit(1 << 30)
            return {r["code"] for r in csv.DictReader(text) if r["level"] == "commune"}
    import vietnamadminunits

    db = Path(vietnamadminunits.__file__).resolve().parent / "data" / "dataset.db"
    with sqlite3.connect(db) as con:
        return {r[0] for r in con.execute("SELECT wardCode FROM admin_units")}
