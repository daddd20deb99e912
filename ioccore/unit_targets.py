"""KPI targets per unit, a commune, an agency or a province, with validity dates (table
``kpi_unit_targets``, docs/kpis.md "Scorecards").

File format (UTF-8 CSV, header row)::

    kpi,level,unit_code,target,valid_from,valid_to
    online_share,commune,00004,0.95,2026-01-01,
    on_time_share,agency,sxd-01,0.90,2026-01-01,2027-01-01

The rows are read as the province targets' are (:func:`ioccore.kpi_targets.target_rows`,
``kpi_of``, ``validity``). A row with the same (kpi, level, unit_code, valid_from)
replaces the stored one. A unit with no row valid on a period's first day is held to its
province's target (``kpi_target``; an agency: for its tier).
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any, Final

import psycopg

from ioccore.kpi_targets import TargetFileError, kpi_of, read_text, target_rows, validity

COLUMNS: Final = ("kpi", "level", "unit_code", "target", "valid_from")
_CODE: Final = {"province": re.compile(r"^[0-9]{2}$"), "commune": re.compile(r"^[0-9]{5}$"),
                "agency": re.compile(r"^[A-Za-z0-9._:-]{1,128}$")}


@dataclass(frozen=True, slots=True)
class UnitTarget:
    kpi: str
    level: str
    unit_code: str
    target: float
    valid_from: date
    valid_to: date | None = None


def is_unit_file(path: Path) -> bool:
    """True when the file's header names a ``level`` column (a unit targets file)."""
    try:
        with path.open(encoding="utf-8-sig") as f:
            header = next(csv.reader(f), [])
    except (OSError, UnicodeDecodeError) as exc:
        raise TargetFileError(f"cannot read {path}: {exc}") from exc
    return "level" in [h.strip() for h in header]


def read_unit_targets(path: Path) -> list[UnitTarget]:
    return parse_unit_targets(io.StringIO(read_text(path)))


def parse_unit_targets(lines: Iterable[str]) -> list[UnitTarget]:
    out: list[UnitTarget] = []
    for where, row in target_rows(lines, COLUMNS):
        kpi = kpi_of(row, where)
        level = row.get("level", "")
        code = row.get("unit_code", "")
        if level not in _CODE:
            raise TargetFileError(f"{where}: level {level!r} is not one of {list(_CODE)}")
        if not _CODE[level].match(code):
            raise TargetFileError(f"{where}: unit_code {code!r} is not a {level} code")
        out.append(UnitTarget(kpi, level, code, *validity(row, where)))
    return out


def write_unit_targets(conn: psycopg.Connection[Any], targets: list[UnitTarget], *,
                       source: str) -> int:
    """Upsert the rows in one transaction (commits); returns the number written."""
    with conn.transaction(), conn.cursor() as cur:
        cur.executemany(
            "INSERT INTO kpi_unit_targets (kpi, level, unit_code, target, valid_from, "
            "valid_to, source) VALUES (%s, %s, %s, %s, %s, %s, %s) "
            "ON CONFLICT (kpi, level, unit_code, valid_from) DO UPDATE SET "
            "target = EXCLUDED.target, valid_to = EXCLUDED.valid_to, "
            "source = EXCLUDED.source, loaded_at = now()",
            [(t.kpi, t.level, t.unit_code, t.target, t.valid_from, t.valid_to, source)
             for t in targets])
    return len(targets)


def list_unit_targets(conn: psycopg.Connection[Any], level: str | None = None
                      ) -> list[UnitTarget]:
    rows = conn.execute(
        "SELECT kpi, level, unit_code, target, valid_from, valid_to FROM kpi_unit_targets"
        " WHERE %(l)s::text IS NULL OR level = %(l)s::text"
        " ORDER BY level, unit_code, kpi, valid_from", {"l": level}).fetchall()
    return [UnitTarget(*r) for r in rows]
