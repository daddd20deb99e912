"""The nation's copy of what provinces published: newest ``as_of`` per key wins.

Every write is an upsert guarded by (``as_of``, :func:`digest`): a record not newer than
the stored one changes nothing, so duplicates, MirrorMaker replays and reordering leave the
same rows as one in-order delivery (tests/unit/federation: property test). Within one
batch the newest record per key is kept first (an upsert cannot touch a row twice).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any, Final

import msgspec
import psycopg

from ioccore.federation import AlertSummaryRecord, FeedHealthRecord, KpiDayRecord, Record
from ioccore.kpis import COUNTS

_KPI_COLS: Final = ("origin", "day", "agency", "applicant_province", "applicant_commune",
                    "province_code", "commune_code", "tier", *COUNTS, "as_of", "digest")
_KPI_UPSERT: Final = f"""
INSERT INTO fed_kpi_counts AS f ({", ".join(_KPI_COLS)})
SELECT * FROM unnest({", ".join(f"%({c})s::{t}[]" for c, t in (
    ("origin", "text"), ("day", "date"), ("agency", "text"), ("applicant_province", "text"),
    ("applicant_commune", "text"), ("province_code", "text"), ("commune_code", "text"),
    ("tier", "text"), *((c, "bigint") for c in COUNTS), ("as_of", "timestamptz"),
    ("digest", "bytea")))})
ON CONFLICT (origin, day, agency, applicant_province, applicant_commune) DO UPDATE SET
    {", ".join(f"{c} = EXCLUDED.{c}" for c in _KPI_COLS[5:])}, stored_at = now()
WHERE (f.as_of, f.digest) < (EXCLUDED.as_of, EXCLUDED.digest)
"""
_SNAPSHOT_UPSERT: Final = """
INSERT INTO fed_snapshots AS s (origin, kind, body, as_of, digest)
VALUES (%s, %s, %s, %s, %s)
ON CONFLICT (origin, kind) DO UPDATE SET body = EXCLUDED.body, as_of = EXCLUDED.as_of,
    digest = EXCLUDED.digest, stored_at = now()
WHERE (s.as_of, s.digest) < (EXCLUDED.as_of, EXCLUDED.digest)
"""
_ORIGIN: Final = """
INSERT INTO fed_origins AS o (origin, last_as_of, last_stored, records)
VALUES (%s, %s, now(), %s)
ON CONFLICT (origin) DO UPDATE SET last_as_of = greatest(o.last_as_of, EXCLUDED.last_as_of),
    last_stored = now(), records = o.records + EXCLUDED.records
"""


def digest(r: Record) -> bytes:
    """Orders two records of one key with the same ``as_of`` (the database compares the
    same bytes the same way)."""
    return hashlib.sha256(msgspec.json.encode(r.values)).digest()


def newest_per_key(records: Iterable[Record]) -> list[Record]:
    """The newest record of each (province, key), by (``as_of``, :func:`digest`)."""
    best: dict[tuple[Any, ...], tuple[tuple[datetime, bytes], Record]] = {}
    for r in records:
        k = _key(r)
        rank = (r.as_of, digest(r))
        have = best.get(k)
        if have is None or have[0] < rank:
            best[k] = (rank, r)
    return [r for _, r in best.values()]


def _key(r: Record) -> tuple[Any, ...]:
    if isinstance(r, KpiDayRecord):
        return (r.province_code, "kpi_day", r.key.day, r.key.agency, r.key.applicant_province,
                r.key.applicant_commune)
    return (r.province_code, type(r).__name__)


async def apply(conn: psycopg.AsyncConnection[Any], records: Sequence[Record]) -> None:
    """Store a batch (in the caller's transaction)."""
    kept = newest_per_key(records)
    kpis = [r for r in kept if isinstance(r, KpiDayRecord)]
    if kpis:
        cols: dict[str, list[Any]] = {c: [] for c in _KPI_COLS}
        for r in kpis:
            cols["origin"].append(r.province_code)
            cols["day"].append(r.key.day)
            cols["agency"].append(r.key.agency)
            cols["applicant_province"].append(r.key.applicant_province)
            cols["applicant_commune"].append(r.key.applicant_commune)
            cols["province_code"].append(r.values.province_code)
            cols["commune_code"].append(r.values.commune_code)
            cols["tier"].append(r.values.tier)
            for c in COUNTS:
                cols[c].append(getattr(r.values, c))
            cols["as_of"].append(r.as_of)
            cols["digest"].append(digest(r))
        await conn.execute(_KPI_UPSERT, cols)
    for snap in kept:
        if isinstance(snap, AlertSummaryRecord | FeedHealthRecord):
            kind = "alert_summary" if isinstance(snap, AlertSummaryRecord) else "feed_health"
            body = msgspec.json.encode(snap.values).decode()
            await conn.execute(_SNAPSHOT_UPSERT, (snap.province_code, kind, body, snap.as_of,
                                                  digest(snap)))
    newest: dict[str, tuple[datetime, int]] = {}
    for rec in records:
        at, n = newest.get(rec.province_code, (rec.as_of, 0))
        newest[rec.province_code] = (max(at, rec.as_of), n + 1)
    for origin, (at, n) in sorted(newest.items()):
        await conn.execute(_ORIGIN, (origin, at, n))
