"""The bundled agency registry (``ioccore/data/agencies_2025.csv.gz``), generated from
the geo reference for the simulator's agencies in all 34 provinces.

    python -m iocdev.simulate.registry           # write the file
    python -m iocdev.simulate.registry --check   # exit 1 when it is stale

Commune tier: one one-stop shop per commune (``ubnd-<commune>``, seated in it).
Province tier: the departments of :data:`iocdev.simulate.dossiers.PROVINCE_DEPARTMENTS`
(``<dept>-<province>``), seated in the province's lowest-coded commune: a placeholder,
the reference has no seat of government (docs/kpis.md).
"""

from __future__ import annotations

import argparse
import csv
import gzip
import io
import sys
from pathlib import Path

from ioccore.agencies import BUNDLED, Agency, format_registry
from iocdev.simulate.communes import DEFAULT_REFERENCE
from iocdev.simulate.dossiers import PROVINCE_DEPARTMENTS, agency_name, commune_agency


def registry_rows(reference: Path = DEFAULT_REFERENCE) -> list[Agency]:
    provinces: dict[str, str] = {}
    communes: dict[str, list[tuple[str, str]]] = {}
    with gzip.open(reference, "rb") as fh:
        csv.field_size_limit(1 << 30)
        for row in csv.DictReader(io.TextIOWrapper(fh, encoding="utf-8", newline="")):
            if row["level"] == "province":
                provinces[row["code"]] = row["name"]
            else:
                communes.setdefault(row["province_code"], []).append((row["code"], row["name"]))
    out: list[Agency] = []
    for province in sorted(provinces):
        members = sorted(communes.get(province, []))
        for code, name in members:
            out.append(Agency(commune_agency(code), f"Bộ phận Một cửa {name}", "commune",
                              code, province))
        seat = members[0][0] if members else None
        for d in PROVINCE_DEPARTMENTS:
            out.append(Agency(f"{d}-{province}", f"{agency_name(d)} {provinces[province]}",
                              "province", seat, province))
    return out


def render() -> bytes:
    # mtime=0: the same rows give the same bytes (the --check compares them)
    return gzip.compress(format_registry(registry_rows()).encode(), mtime=0)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--check", action="store_true")
    args = ap.parse_args(argv)
    data = render()
    if args.check:
        stale = not BUNDLED.exists() or gzip.decompress(BUNDLED.read_bytes()) != \
            gzip.decompress(data)
        print(f"{BUNDLED}: {'stale' if stale else 'up to date'}")
        return 1 if stale else 0
    BUNDLED.parent.mkdir(parents=True, exist_ok=True)
    BUNDLED.write_bytes(data)
    print(f"wrote {BUNDLED}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
