"""The bundled reference: Vietnam's administrative units in force since 2025-07-01.

Built from the data of the PyPI package ``vietnamadminunits`` (MIT licence;
``data/dataset.db`` table ``admin_units`` and ``data/converter_2025.json``) by::

    python -m geo.reference build            # or: ioc geo build-reference

and written to ``geo/data/``:

``communes_2025.csv.gz``
    one row per unit (34 provinces, 3,321 communes): ``code, name, type, level,
    parent_code, province_code, lat, lon, area_km2, approximate, wkt``. Polygons are
    approximate (see :mod:`geo.voronoi`); ``lat``/``lon``/``area_km2`` are the
    package's official figures (``area_km2`` is empty for two communes).
``legacy_2025.csv.gz``
    one row per pre-2025 commune: ``old_code, old_name, old_district, old_province,
    new_codes`` (space-separated; several when the old commune was split) and
    ``default_code`` (the package's default pick for a split commune).

Reading is pandas + shapely only and takes well under a second; a worker reads the same
files without pandas (:mod:`geo.bundled`).
"""

from __future__ import annotations

import argparse
import gzip
import json
import sqlite3
import sys
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd  # type: ignore[import-untyped]
import shapely

from geo.bundled import DATA_DIR, LEGACY_FILE, REFERENCE_FILE
from geo.errors import BoundaryFileError
from geo.voronoi import approximate_polygons, union_by

__all__ = ["DATA_DIR", "LEGACY_FILE", "REFERENCE_FILE", "Reference", "build", "read_legacy",
           "read_reference"]
SOURCE = "vietnamadminunits 1.0.4 (MIT); approximate Voronoi polygons"
"""Value of ``admin_units.source`` for rows loaded from the bundled reference."""

COLUMNS = ["code", "name", "type", "level", "parent_code", "province_code", "lat", "lon",
           "area_km2", "approximate", "wkt"]
_DTYPES = {"code": str, "name": str, "type": str, "level": str, "parent_code": str,
           "province_code": str, "old_code": str, "new_codes": str, "default_code": str}


def package_data_dir() -> Path:
    """The ``data`` folder of the installed ``vietnamadminunits`` package."""
    import vietnamadminunits

    return Path(vietnamadminunits.__file__).resolve().parent / "data"


@dataclass(frozen=True, slots=True)
class Reference:
    """The reference as read: units (pandas, ``geometry`` column of shapely objects)."""

    units: pd.DataFrame

    @property
    def communes(self) -> pd.DataFrame:
        return self.units[self.units["level"] == "commune"]

    @property
    def provinces(self) -> pd.DataFrame:
        return self.units[self.units["level"] == "province"]


def _province_type(name: str) -> str:
    return "Thành phố" if name.startswith("Thành phố") else "Tỉnh"


def build_units(db: Path) -> pd.DataFrame:
    """Provinces and communes with approximate polygons, from ``dataset.db``."""
    with sqlite3.connect(db) as con:
        raw = pd.read_sql_query(
            "SELECT provinceCode, province, provinceLat, provinceLon, wardCode, ward, "
            "wardType, wardLat, wardLon, wardAreaKm2 FROM admin_units ORDER BY wardCode",
            con,
        )
    communes = pd.DataFrame({
        "code": raw["wardCode"], "name": raw["ward"], "type": raw["wardType"],
        "level": "commune", "parent_code": raw["provinceCode"],
        "province_code": raw["provinceCode"], "lat": raw["wardLat"], "lon": raw["wardLon"],
        "area_km2": raw["wardAreaKm2"], "approximate": True,
    })
    communes["geometry"] = approximate_polygons(
        communes["province_code"].to_numpy(), communes["lat"].to_numpy(),
        communes["lon"].to_numpy(), communes["area_km2"].to_numpy(dtype=np.float64),
    )
    prov = raw.drop_duplicates("provinceCode").sort_values("provinceCode")
    areas = communes.groupby("province_code")["area_km2"].sum()
    unions = union_by(communes["province_code"].to_numpy(),
                      communes["geometry"].to_numpy())
    provinces = pd.DataFrame({
        "code": prov["provinceCode"], "name": prov["province"],
        "type": prov["province"].map(_province_type), "level": "province",
        "parent_code": None, "province_code": prov["provinceCode"],
        "lat": prov["provinceLat"], "lon": prov["provinceLon"],
        "area_km2": prov["provinceCode"].map(areas).round(2), "approximate": True,
    })
    provinces["geometry"] = provinces["code"].map(unions)
    return pd.concat([provinces, communes], ignore_index=True)


def build_legacy(db: Path, converter: Path) -> pd.DataFrame:
    """Pre-2025 commune code -> new commune code(s), from the package's converter data."""
    data = json.loads(converter.read_text(encoding="utf-8"))
    with sqlite3.connect(db) as con:
        new = pd.read_sql_query("SELECT provinceKey, wardKey, wardCode FROM admin_units", con)
        old = pd.read_sql_query(
            "SELECT wardCode, ward, district, province, provinceKey, districtKey, wardKey "
            "FROM admin_units_legacy WHERE wardCode IS NOT NULL ORDER BY wardCode", con)
    new_code = {(p, w): c for p, w, c in new.itertuples(index=False)}
    targets: dict[str, set[str]] = defaultdict(set)
    default: dict[str, str] = {}
    for prov_key, wards in data["DICT_PROVINCE_WARD_NO_DIVIDED"].items():
        for ward_key, olds in wards.items():
            for old_key in olds:
                targets[old_key].add(new_code[(prov_key, ward_key)])
    for prov_key, olds in data["DICT_PROVINCE_WARD_DIVIDED"].items():
        for old_key, choices in olds.items():
            for choice in choices:
                code = new_code[(prov_key, choice["newWardKey"])]
                targets[old_key].add(code)
                if choice["isDefaultNewWard"]:
                    default[old_key] = code
    rows = []
    for code, ward, district, province, pk, dk, wk in old.itertuples(index=False):
        key = f"{pk}_{dk}_{wk}"
        found = sorted(targets.get(key, ()))
        rows.append({
            "old_code": code, "old_name": ward, "old_district": district,
            "old_province": province, "new_codes": " ".join(found),
            "default_code": default.get(key, found[0] if len(found) == 1 else ""),
        })
    return pd.DataFrame(rows)


def build(out_dir: Path = DATA_DIR, source_dir: Path | None = None) -> dict[str, Path]:
    """Write the reference and legacy files; returns what was written."""
    src = source_dir or package_data_dir()
    db = src / "dataset.db"
    units = build_units(db)
    _check_built(units)
    out_dir.mkdir(parents=True, exist_ok=True)
    table = units.drop(columns="geometry").assign(
        wkt=shapely.to_wkt(units["geometry"].to_numpy(), rounding_precision=5, trim=True))
    ref_path = out_dir / REFERENCE_FILE.name
    _write_csv_gz(table[COLUMNS], ref_path)
    legacy_path = out_dir / LEGACY_FILE.name
    _write_csv_gz(build_legacy(db, src / "converter_2025.json"), legacy_path)
    return {"reference": ref_path, "legacy": legacy_path}


def _write_csv_gz(frame: pd.DataFrame, path: Path) -> None:
    # mtime=0 keeps the output byte-identical between builds.
    with open(path, "wb") as raw, gzip.GzipFile(fileobj=raw, mode="wb", mtime=0,
                                                 compresslevel=9) as gz:
        gz.write(frame.to_csv(index=False, lineterminator="\n").encode("utf-8"))


def _check_built(units: pd.DataFrame) -> None:
    communes = units[units["level"] == "commune"]
    pts = shapely.points(communes["lon"].to_numpy(), communes["lat"].to_numpy())
    inside = shapely.contains(communes["geometry"].to_numpy(), pts)
    if not inside.all():
        bad = communes.loc[~inside, "code"].tolist()
        raise BoundaryFileError("child_outside_parent",
                                f"centroids outside their own approximate polygon: {bad[:10]}")


def read_reference(path: Path = REFERENCE_FILE) -> Reference:
    """Read the bundled reference (or a file in its format)."""
    try:
        frame = pd.read_csv(path, dtype=_DTYPES, keep_default_na=False,
                            na_values={"area_km2": [""], "lat": [""], "lon": [""]})
    except (OSError, ValueError) as exc:
        raise BoundaryFileError("unreadable", f"cannot read reference {path}: {exc}") from exc
    missing = [c for c in COLUMNS if c not in frame.columns]
    if missing:
        raise BoundaryFileError("missing_columns", f"{path} lacks columns {missing}")
    frame["parent_code"] = frame["parent_code"].replace("", None)
    frame["approximate"] = frame["approximate"].astype(str).str.lower() == "true"
    frame["geometry"] = shapely.from_wkt(frame.pop("wkt").to_numpy())
    return Reference(units=frame)


def read_legacy(path: Path = LEGACY_FILE) -> pd.DataFrame:
    """The pre-2025 code table written by :func:`build`."""
    try:
        return pd.read_csv(path, dtype=_DTYPES, keep_default_na=False)
    except (OSError, ValueError) as exc:
        raise BoundaryFileError("unreadable", f"cannot read {path}: {exc}") from exc


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m geo.reference")
    sub = parser.add_subparsers(dest="command", required=True)
    b = sub.add_parser("build", help="regenerate geo/data from vietnamadminunits")
    b.add_argument("--out", type=Path, default=DATA_DIR)
    args = parser.parse_args(argv)
    for name, path in build(args.out).items():
        print(f"{name}: {path} ({path.stat().st_size / 1024:.0f} KiB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
