"""The bundled reference files read without pandas: what a worker needs from them.

A worker needs the communes' codes, province codes and polygons (the geo index), their
names (alert annotations) and the pre-2025 code table; :mod:`geo.reference` reads the
same files into pandas frames for loading the database and for people, and builds them.
Reading them here with the standard library keeps pandas (about 40 MB resident) out of
every worker process.
"""

from __future__ import annotations

import csv
import gzip
import io
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import shapely

from geo.errors import BoundaryFileError

DATA_DIR = Path(__file__).resolve().parent / "data"
REFERENCE_FILE = DATA_DIR / "communes_2025.csv.gz"
LEGACY_FILE = DATA_DIR / "legacy_2025.csv.gz"

_REQUIRED = ("code", "name", "level", "parent_code", "province_code", "wkt")


@dataclass(frozen=True, slots=True)
class Unit:
    """One row of the reference (a province or a commune), polygon as WKT text."""

    code: str
    name: str
    level: str
    parent_code: str
    province_code: str
    wkt: str


def _rows(path: Path, required: tuple[str, ...]) -> list[dict[str, str]]:
    csv.field_size_limit(1 << 30)  # a province's WKT is longer than csv's default limit
    try:
        with gzip.open(path, "rb") as raw, io.TextIOWrapper(raw, encoding="utf-8",
                                                              newline="") as text:
            reader = csv.DictReader(text)
            missing = [c for c in required if c not in (reader.fieldnames or ())]
            if missing:
                raise BoundaryFileError("missing_columns", f"{path} lacks columns {missing}")
            return list(reader)
    except (OSError, ValueError, EOFError, csv.Error) as exc:
        raise BoundaryFileError("unreadable", f"cannot read {path}: {exc}") from exc


def read_units(path: Path = REFERENCE_FILE) -> list[Unit]:
    """Every unit of a reference file (the bundled one, or one in its format)."""
    return [Unit(r["code"], r["name"], r["level"], r["parent_code"], r["province_code"],
                 r["wkt"]) for r in _rows(path, _REQUIRED)]


def communes_for_index(path: Path = REFERENCE_FILE
                       ) -> tuple[list[str], list[str], Any]:
    """(codes, province codes, shapely polygons) of the reference's communes."""
    communes = [u for u in read_units(path) if u.level == "commune"]
    geoms = shapely.from_wkt([u.wkt for u in communes])
    return ([u.code for u in communes], [u.province_code or u.parent_code for u in communes],
            geoms)


def legacy_targets(path: Path = LEGACY_FILE) -> dict[str, tuple[str, ...]]:
    """Pre-2025 commune code -> the current code(s) it went into (unmapped ones left out)."""
    return {r["old_code"]: tuple(r["new_codes"].split())
            for r in _rows(path, ("old_code", "new_codes")) if r["new_codes"]}
