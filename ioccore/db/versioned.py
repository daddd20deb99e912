"""Validity-dated reference tables: load a new version of a file without rewriting history.

Boundaries (``admin_units``) and the agency registry (``agencies``) are both loaded this
way, so the rule lives here once. The caller stages the file's rows in a temporary
table, then :func:`apply_versions`, in the caller's transaction:

* refuses the load when an open version starts after ``valid_from`` (the file is older
  than what is loaded);
* leaves rows whose compared columns are identical alone (``unchanged``);
* closes a changed row's open version on ``valid_from`` and inserts the new version
  (``changed``); an open version starting that same day is replaced instead (a same-day
  correction);
* closes rows missing from the file when the file covers their part of the country
  (loading one province's file leaves the other provinces alone);
* inserts new codes (``inserted``).

Table and column names come from code (:class:`Versioned`), never from input.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from typing import Any

import psycopg


@dataclass(frozen=True, slots=True)
class Versioned:
    """How one validity-dated table is compared and replaced."""

    table: str
    staged: str
    compared: tuple[str, ...]
    """Columns whose change makes a new version."""
    covers: str
    """SQL expression over a row (of either table) naming the part of the country it
    belongs to: a file covers the parts of the rows it holds."""
    insert: str
    """Column list of the INSERT into ``table``."""
    select: str
    """The matching select list over the staged rows (alias ``s``); ``%(source)s`` and
    ``%(valid_from)s`` are bound."""


@dataclass(frozen=True, slots=True)
class LoadReport:
    inserted: int
    changed: int
    unchanged: int
    closed: int
    valid_from: date

    def __str__(self) -> str:
        return (f"{self.inserted} new, {self.changed} changed, {self.unchanged} unchanged, "
                f"{self.closed} closed (valid from {self.valid_from})")


def apply_versions(conn: psycopg.Connection[Any], spec: Versioned, *, rows: int, source: str,
                   valid_from: date, refuse: Callable[[list[tuple[Any, ...]]], Exception]
                   ) -> LoadReport:
    """Replace ``spec.table``'s open versions by the ``rows`` staged in ``spec.staged``.

    Runs inside the caller's transaction (which should hold ``SHARE ROW EXCLUSIVE`` on the
    table); raises ``refuse(examples)`` when newer versions exist.
    """
    t, s = spec.table, spec.staged
    later = conn.execute(
        f"SELECT a.code, a.valid_from FROM {t} a JOIN {s} s USING (code) "
        "WHERE a.valid_to IS NULL AND a.valid_from > %s LIMIT 5", (valid_from,)).fetchall()
    if later:
        raise refuse(list(later))
    differs = " OR ".join(f"a.{c} IS DISTINCT FROM s.{c}" for c in spec.compared)
    changed = [r[0] for r in conn.execute(
        f"SELECT a.code FROM {t} a JOIN {s} s USING (code) "
        f"WHERE a.valid_to IS NULL AND ({differs})").fetchall()]
    covers_a = spec.covers.format(row="a")
    covers_s = spec.covers.format(row="s")
    gone = [r[0] for r in conn.execute(
        f"SELECT a.code FROM {t} a WHERE a.valid_to IS NULL "
        f"AND NOT EXISTS (SELECT 1 FROM {s} s WHERE s.code = a.code) "
        f"AND {covers_a} IN (SELECT {covers_s} FROM {s} s)").fetchall()]
    ends = changed + gone
    conn.execute(f"DELETE FROM {t} WHERE code = ANY(%s) AND valid_to IS NULL "
                 "AND valid_from = %s", (ends, valid_from))
    conn.execute(f"UPDATE {t} SET valid_to = %s WHERE code = ANY(%s) AND valid_to IS NULL",
                 (valid_from, ends))
    inserted = conn.execute(
        f"INSERT INTO {t} ({spec.insert}) SELECT {spec.select} FROM {s} s "
        f"WHERE NOT EXISTS (SELECT 1 FROM {t} a WHERE a.code = s.code AND a.valid_to IS NULL)",
        {"source": source, "valid_from": valid_from}).rowcount
    return LoadReport(inserted=inserted - len(changed), changed=len(changed),
                      unchanged=rows - inserted, closed=len(gone), valid_from=valid_from)
