"""KPI targets per unit, a commune, an agency or a province, with validity dates (table
``kpi_unit_targets``, docs/kpis.md "Scorecards").

File format (UTF-8 CSV, header row)::

    kpi,level,unit_code,target,valid_from,valid_to
    online_share,commune,00004,0.95,2026-01-01,
    on_time_share,agency,sxd-01,0.90,2026-01-01,2027-01-01

A row with the same (kpi, level, unit_code, valid_from) replaces the stored one. A unit
with no row valid on a period's first day is held to its province's target
(``kpi_target``; an agency: for its tier).
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

from ioccore.kpi_targets import TargetFileError
from ioccore.kpis import KPI_IDS

COLUMNS: Final = ("kpi", "level", "unit_code", "target", "valid_from")
_CODE: Final = {"province": re.compile(r"^[0-9]{2}$"), "commune": re.compile(r"^[0-9]{5}$"),
                "agency": re.compile(r"^[A-Za-z0-9._:-]{1,128}$")}
MAX_ROWS: Final = 100_000


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
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise TargetFileError(f"cannot read {path}: {exc}") from exc
    return parse_unit_targets(io.StringIO(text))


def parse_unit_targets(lines: Iterable[str]) -> list[UnitTarget]:
    reader = csv.DictReader(iter(lines))
    missing = [c for c in COLUMNS if c not in (reader.fieldnames or ())]
    if missing:
        raise TargetFileError(f"missing columns {missing}; need {list(COLUMNS)} [valid_to]")
    out: list[UnitTarget] = []
    for row in reader:
        where = f"line {reader.line_num}"
        if len(out) >= MAX_ROWS:
            raise TargetFileError(f"{where}: more than {MAX_ROWS} rows")
        kpi = (row.get("kpi") or "").strip()
        level = (row.get("level") or "").strip()
        code = (row.get("unit_code") or "").strip()
        if kpi not in KPI_IDS:
            raise TargetFileError(f"{where}: kpi {kpi!r} is not one of {list(KPI_IDS)}")
        if level not in _CODE:
            raise TargetFileError(f"{where}: level {level!r} is not one of {list(_CODE)}")
        if not _CODE[level].match(code):
            raise TargetFileError(f"{where}: unit_code {code!r} is not a {level} code")
        try:
            target = float((row.get("target") or "").strip())
            valid_from = date.fromisoformat((row.get("valid_from") or "").strip())
            end = (row.get("valid_to") or "").strip()
            valid_to = date.fromisoformat(end) if end else None
        except ValueError as exc:
            raise TargetFileError(f"{where}: {exc}") from exc
        if not 0.0 <= target <= 1.0:
            raise TargetFileError(f"{where}: target {target} is not a share in 0..1")
        if valid_to is not None and valid_to <= valid_from:
            raise TargetFileError(f"{where}: valid_to must be after valid_from")
        out.append(UnitTarget(kpi, level, code, target, valid_from, valid_to))
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
