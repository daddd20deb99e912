"""KPI targets per province and tier with validity dates (table ``kpi_target_values``).

File format (UTF-8 CSV, header row)::

    kpi,province_code,tier,target,valid_from,valid_to
    online_share,01,province,0.60,2026-11-01,
    online_share,*,commune,0.99,2025-07-01,

``*`` means any province / any tier; ``target`` is a share (0..1); ``valid_to`` may be
empty (open). A row with the same (kpi, province, tier, valid_from) replaces the stored
one. Which row applies is the SQL function ``kpi_target`` (docs/kpis.md).
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any, Final

import psycopg

from ioccore.errors import ConfigError
from ioccore.kpis import KPI_IDS

TIERS: Final = ("*", "province", "commune", "unassigned")
_PROVINCE = re.compile(r"^([0-9]{2}|\*)$")
_COLUMNS: Final = ("kpi", "province_code", "tier", "target", "valid_from")
MAX_ROWS: Final = 100_000


class TargetFileError(ConfigError):
    """A targets file cannot be used."""


@dataclass(frozen=True, slots=True)
class Target:
    kpi: str
    province_code: str
    tier: str
    target: float
    valid_from: date
    valid_to: date | None = None


def read_text(path: Path) -> str:
    """A targets file's text (UTF-8, with or without a byte order mark)."""
    try:
        return path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise TargetFileError(f"cannot read {path}: {exc}") from exc


def target_rows(lines: Iterable[str], columns: Sequence[str]
                ) -> Iterator[tuple[str, dict[str, str]]]:
    """The rows of a targets CSV, each with where it stands (``line N``) and its cells
    stripped; the header must name ``columns`` (``valid_to`` is optional) and there are
    at most :data:`MAX_ROWS` rows. Both target files are read by this."""
    reader = csv.DictReader(iter(lines))
    missing = [c for c in columns if c not in (reader.fieldnames or ())]
    if missing:
        raise TargetFileError(f"missing columns {missing}; need {list(columns)} [valid_to]")
    for n, row in enumerate(reader):
        where = f"line {reader.line_num}"
        if n >= MAX_ROWS:
            raise TargetFileError(f"{where}: more than {MAX_ROWS} rows")
        yield where, {k: (v or "").strip() for k, v in row.items() if isinstance(k, str)
                      and isinstance(v, str | None)}


def kpi_of(row: dict[str, str], where: str) -> str:
    kpi = row.get("kpi", "")
    if kpi not in KPI_IDS:
        raise TargetFileError(f"{where}: kpi {kpi!r} is not one of {list(KPI_IDS)}")
    return kpi


def validity(row: dict[str, str], where: str) -> tuple[float, date, date | None]:
    """A row's target (a share in 0..1) and the dates it is valid from and to."""
    try:
        target = float(row.get("target", ""))
        valid_from = date.fromisoformat(row.get("valid_from", ""))
        end = row.get("valid_to", "")
        valid_to = date.fromisoformat(end) if end else None
    except ValueError as exc:
        raise TargetFileError(f"{where}: {exc}") from exc
    if not 0.0 <= target <= 1.0:
        raise TargetFileError(f"{where}: target {target} is not a share in 0..1")
    if valid_to is not None and valid_to <= valid_from:
        raise TargetFileError(f"{where}: valid_to must be after valid_from")
    return target, valid_from, valid_to


def read_targets(path: Path) -> list[Target]:
    return parse_targets(io.StringIO(read_text(path)))


def parse_targets(lines: Iterable[str]) -> list[Target]:
    out: list[Target] = []
    for where, row in target_rows(lines, _COLUMNS):
        kpi = kpi_of(row, where)
        province = row.get("province_code") or "*"
        tier = row.get("tier") or "*"
        if not _PROVINCE.match(province):
            raise TargetFileError(f"{where}: province_code {province!r}: two digits or *")
        if tier not in TIERS:
            raise TargetFileError(f"{where}: tier {tier!r} is not one of {list(TIERS)}")
        out.append(Target(kpi, province, tier, *validity(row, where)))
    return out


def write_targets(conn: psycopg.Connection[Any], targets: list[Target], *, source: str
                  ) -> int:
    """Upsert the rows in one transaction (commits); returns the number written."""
    with conn.transaction(), conn.cursor() as cur:
        cur.executemany(
            "INSERT INTO kpi_target_values (kpi, province_code, tier, target, valid_from, "
            "valid_to, source) VALUES (%s, %s, %s, %s, %s, %s, %s) "
            "ON CONFLICT (kpi, province_code, tier, valid_from) DO UPDATE SET "
            "target = EXCLUDED.target, valid_to = EXCLUDED.valid_to, "
            "source = EXCLUDED.source, loaded_at = now()",
            [(t.kpi, t.province_code, t.tier, t.target, t.valid_from, t.valid_to, source)
             for t in targets])
    return len(targets)


def list_targets(conn: psycopg.Connection[Any], province: str | None = None
                 ) -> list[Target]:
    rows = conn.execute(
        "SELECT kpi, province_code, tier, target, valid_from, valid_to FROM kpi_target_values"
        " WHERE %(p)s::text IS NULL OR province_code IN (%(p)s::text, '*')"
        " ORDER BY kpi, province_code, tier, valid_from", {"p": province}).fetchall()
    return [Target(*r) for r in rows]
