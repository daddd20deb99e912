"""Public-service KPIs: the catalogue, Vietnam-time periods, and the one query that
counts them (docs/kpis.md has the definitions).

Counts come from the ``kpi_daily`` view over ``kpi_counts_daily`` (each dossier's
contribution per Vietnam-time day, moved by the trigger that folds raw service events
into ``dossiers``), never from the one-minute rollups: a late, re-sent or replayed event
changes a dossier the same way whenever it arrives, so every figure here is exact.
The HTTP API (:mod:`ioc.api.kpis`) and the KPI target alerts read through
:func:`fetch_counts`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any, Final, Literal
from zoneinfo import ZoneInfo

import psycopg

VN_TZ: Final = ZoneInfo("Asia/Ho_Chi_Minh")
Grain = Literal["day", "week", "month"]
GRAINS: Final[tuple[Grain, ...]] = ("day", "week", "month")
TIER_ORDER: Final = ("all", "province", "commune", "unassigned")


@dataclass(frozen=True, slots=True)
class Kpi:
    id: str
    numerator: str
    denominator: str
    title: str


KPIS: Final[tuple[Kpi, ...]] = (
    Kpi("online_share", "received_online", "received", "Dossiers submitted online"),
    Kpi("resolved_online_share", "resolved_online", "resolved", "Dossiers resolved online"),
    Kpi("on_time_share", "resolved_on_time", "resolved_with_due", "Dossiers resolved on time"),
    Kpi("paid_online_share", "paid_online", "paid_fee_bearing",
        "Fee-bearing dossiers paid online"),
    Kpi("digitised_share", "received_digitised", "received", "Dossier records digitised"),
)
KPI_IDS: Final = tuple(k.id for k in KPIS)
COUNTS: Final = ("received", "received_online", "received_digitised", "resolved",
                 "resolved_online", "resolved_with_due", "resolved_on_time",
                 "paid_fee_bearing", "paid_online")


# ------------------------------------------------------------------ periods
def period_start(day: date, grain: Grain) -> date:
    """First day of the period holding ``day`` (weeks start on Monday)."""
    if grain == "day":
        return day
    if grain == "week":
        return day - timedelta(days=day.weekday())
    return day.replace(day=1)


def next_period(start: date, grain: Grain) -> date:
    if grain == "day":
        return start + timedelta(days=1)
    if grain == "week":
        return start + timedelta(days=7)
    return (start.replace(day=28) + timedelta(days=4)).replace(day=1)


def previous_period(start: date, grain: Grain) -> date:
    return period_start(start - timedelta(days=1), grain)


def vn_today(now: datetime | None = None) -> date:
    return (now or datetime.now(VN_TZ)).astimezone(VN_TZ).date()


# ------------------------------------------------------------------ values
@dataclass(slots=True)
class KpiValue:
    numerator: int
    denominator: int
    target: float | None
    previous: float | None = None

    @property
    def value(self) -> float | None:
        return self.numerator / self.denominator if self.denominator else None

    def as_json(self) -> dict[str, Any]:
        return {"numerator": self.numerator, "denominator": self.denominator,
                "value": self.value, "target": self.target, "previous": self.previous}


@dataclass(slots=True)
class CountRow:
    """Counts of one period, province (``None``: every province in scope) and tier
    (``"all"``: every tier), with the targets in effect on the period's first day."""

    period: date
    province_code: str | None
    tier: str
    counts: dict[str, int]
    targets: dict[str, float | None] = field(default_factory=dict)

    def kpi(self, k: Kpi) -> KpiValue:
        return KpiValue(self.counts[k.numerator], self.counts[k.denominator],
                        self.targets.get(k.id))

    def kpis(self) -> dict[str, KpiValue]:
        return {k.id: self.kpi(k) for k in KPIS}


_COUNT_SQL: Final = ",\n".join(f"sum({c})::bigint AS {c}" for c in COUNTS)
_TARGET_SQL: Final = ",\n".join(
    f"kpi_target('{k.id}', coalesce(g.province_code, %(province)s::text), "
    f"nullif(g.tier, 'all'), g.period) AS target_{k.id}" for k in KPIS)


KpiSource = Literal["kpi_daily", "fed_kpi_daily"]
"""Where day rows come from: a province's own (``kpi_daily``) or, at the nation, what the
provinces published (``fed_kpi_daily``, the same columns; docs/federation.md)."""


def counts_query(by_province: bool, source: KpiSource = "kpi_daily") -> str:
    """Counts per period and tier (and per province with ``by_province``), with the
    rolled-up rows (tier ``all``; province ``NULL``) from GROUPING SETS."""
    sets = ("(period, province_code, tier), (period, province_code), (period, tier), (period)"
            if by_province else "(period, tier), (period)")
    province = ("CASE WHEN grouping(province_code) = 1 THEN NULL ELSE province_code END"
                if by_province else "NULL::text")
    return f"""
WITH f AS (
    SELECT date_trunc(%(grain)s, day::timestamp)::date AS period, province_code, tier,
           {", ".join(COUNTS)}
    FROM {source}
    WHERE day >= %(t0)s::date AND day < %(t1)s::date
      AND received + resolved + paid_fee_bearing > 0  -- rows a dossier moved away from
      AND (%(province)s::text IS NULL OR province_code = %(province)s::text)
      AND (%(commune)s::text IS NULL OR commune_code = %(commune)s::text)
      -- the same, on the stored columns (indexed); 'unassigned' may map to the agency's
      AND (%(province)s::text IS NULL
           OR applicant_province IN (%(province)s::text, 'unassigned'))
      AND (%(commune)s::text IS NULL
           OR applicant_commune IN (%(commune)s::text, 'unassigned'))
), g AS (
    SELECT period, {province} AS province_code,
           CASE WHEN grouping(tier) = 1 THEN 'all' ELSE tier END AS tier,
           {_COUNT_SQL}
    FROM f GROUP BY GROUPING SETS ({sets})
)
SELECT g.*, {_TARGET_SQL}
FROM g ORDER BY g.period, g.province_code NULLS FIRST, g.tier
"""


async def fetch_counts(conn: psycopg.AsyncConnection[Any], *, grain: Grain, start: date,
                       end: date, province: str | None = None, commune: str | None = None,
                       by_province: bool = False, source: KpiSource = "kpi_daily"
                       ) -> list[CountRow]:
    """Counts for the periods starting in [start, end) (whole periods: ``start`` and
    ``end`` must be period starts). Filters: ``province``, ``commune``."""
    cur = await conn.execute(counts_query(by_province, source).encode(), {
        "grain": grain, "t0": start, "t1": end, "province": province, "commune": commune})
    names = [d.name for d in cur.description or ()]
    rows: list[CountRow] = []
    for raw in await cur.fetchall():
        rec = dict(zip(names, raw, strict=True))
        rows.append(CountRow(
            period=rec["period"], province_code=rec["province_code"], tier=rec["tier"],
            counts={c: int(rec[c]) for c in COUNTS},
            targets={k.id: rec[f"target_{k.id}"] for k in KPIS}))
    return rows


def with_previous(rows: Sequence[CountRow], grain: Grain
                  ) -> dict[tuple[date, str | None, str], dict[str, KpiValue]]:
    """KPI values keyed by (period, province, tier), each with the previous period's
    value of the same province and tier (``None`` when that period had no base)."""
    by_key = {(r.period, r.province_code, r.tier): r.kpis() for r in rows}
    for (period, province, tier), values in by_key.items():
        before = by_key.get((previous_period(period, grain), province, tier))
        if before is None:
            continue
        for kid, v in values.items():
            v.previous = before[kid].value
    return by_key


def tier_sort_key(tier: str) -> int:
    return TIER_ORDER.index(tier) if tier in TIER_ORDER else len(TIER_ORDER)


def tier_gap(values: Mapping[str, KpiValue]) -> float | None:
    """Commune-tier value minus province-tier value (``None`` unless both exist)."""
    c, p = values.get("commune"), values.get("province")
    if c is None or p is None or c.value is None or p.value is None:
        return None
    return c.value - p.value
