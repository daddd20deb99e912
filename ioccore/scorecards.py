"""Scorecards: each unit's KPIs (a commune, an agency or a province) against its own
target, and its rank among its peers (docs/kpis.md, "Scorecards").

Peers are the communes of one province, the agencies of one province, or the provinces
of the nation. Ranks are competition ranks ("1224") on the exact fraction
numerator/denominator, so units with equal shares share a rank whatever the float
rounding; a unit with no denominator in the period has no value, no status and no rank
and is listed after the ranked ones. Counts are the same day rows as ``/v1/kpis``
(``kpi_daily``, or ``fed_kpi_daily`` at a national ioc), so a scorecard's units add up
to the province's figure, except dossiers whose commune (or province) is
``unassigned``, which belong to no unit.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date
from fractions import Fraction
from typing import Any, Final, Literal

import psycopg

from ioccore.kpis import COUNTS, KPIS, Grain, KpiValue, next_period, period_start

Level = Literal["commune", "agency", "province"]
LEVELS: Final[tuple[Level, ...]] = ("commune", "agency", "province")
Source = Literal["kpi_daily", "fed_kpi_daily"]
SOURCES: Final[tuple[Source, ...]] = ("kpi_daily", "fed_kpi_daily")
Status = Literal["met", "below", "no_target", "no_data"]


def default_source(settings: object) -> Source:
    """``fed_kpi_daily`` when this ioc is the national one (``federation.role``),
    else ``kpi_daily``."""
    federation = getattr(settings, "federation", None)
    return "fed_kpi_daily" if getattr(federation, "role", None) == "national" else "kpi_daily"


# ------------------------------------------------------------------ pure logic
def competition_ranks(shares: Mapping[str, tuple[int, int]]) -> dict[str, int | None]:
    """Rank units by numerator/denominator, highest first; equal fractions share a
    rank and the next rank skips (1, 2, 2, 4). A zero denominator gets ``None``."""
    valued = sorted(((Fraction(n, d), code) for code, (n, d) in shares.items() if d > 0),
                    key=lambda fc: (-fc[0], fc[1]))
    out: dict[str, int | None] = {code: None for code, (_, d) in shares.items() if d <= 0}
    previous: Fraction | None = None
    rank = 0
    for i, (value, code) in enumerate(valued, 1):
        if value != previous:
            rank, previous = i, value
        out[code] = rank
    return out


def status(value: KpiValue) -> Status:
    if value.denominator <= 0:
        return "no_data"
    if value.target is None:
        return "no_target"
    # Exact: numerator/denominator >= target, without float division.
    return "met" if value.numerator >= value.target * value.denominator - 1e-9 else "below"


@dataclass(slots=True)
class UnitScore:
    code: str
    name: str | None
    province_code: str | None
    tier: str | None
    kpis: dict[str, KpiValue]
    ranks: dict[str, int | None] = field(default_factory=dict)

    def met(self) -> tuple[int, int]:
        """(KPIs at or above target, KPIs with both a value and a target)."""
        states = [status(v) for v in self.kpis.values()]
        return states.count("met"), states.count("met") + states.count("below")

    def as_json(self) -> dict[str, Any]:
        met, assessed = self.met()
        return {"code": self.code, "name": self.name, "province_code": self.province_code,
                "tier": self.tier, "targets_met": met, "targets_assessed": assessed,
                "kpis": {k: {**v.as_json(), "status": status(v), "rank": self.ranks.get(k)}
                         for k, v in self.kpis.items()}}


def rank_units(units: list[UnitScore]) -> None:
    """Fill each unit's rank per KPI among ``units`` (its peers)."""
    for k in KPIS:
        ranks = competition_ranks(
            {u.code: (u.kpis[k.id].numerator, u.kpis[k.id].denominator) for u in units})
        for u in units:
            u.ranks[k.id] = ranks[u.code]


def sort_key(rank_by: str) -> Any:
    def key(u: UnitScore) -> tuple[int, int, str]:
        r = u.ranks.get(rank_by)
        return (0, r, u.code) if r is not None else (1, 0, u.code)
    return key


# ------------------------------------------------------------------ query
_UNITS: Final[dict[Level, str]] = {
    "province": "SELECT province_code AS code, province_name AS name, "
                "province_code AS province_code, NULL::text AS tier FROM current_provinces",
    "commune": "SELECT commune_code AS code, commune_name AS name, province_code, "
               "NULL::text AS tier FROM current_communes "
               "WHERE province_code = %(province)s::text",
    "agency": "SELECT DISTINCT ON (code) code, name, province_code, tier FROM agencies "
              "WHERE province_code = %(province)s::text AND valid_from <= %(t0)s::date "
              "AND (valid_to IS NULL OR valid_to > %(t0)s::date) ORDER BY code, valid_from DESC",
}
_UNIT_COLUMN: Final[dict[Level, str]] = {
    "province": "province_code", "commune": "commune_code", "agency": "agency"}


def scorecard_query(level: Level, source: Source) -> str:
    if source not in SOURCES or level not in LEVELS:  # never user text in SQL
        raise ValueError(f"bad level/source {level!r}/{source!r}")
    sums = ", ".join(f"sum({c})::bigint AS {c}" for c in COUNTS)
    counts = ", ".join(f"coalesce(c.{c}, 0) AS {c}" for c in COUNTS)
    targets = ", ".join(
        f"kpi_unit_target('{k.id}', %(level)s::text, coalesce(u.code, c.unit), "
        f"coalesce(u.province_code, c.province_code), "
        f"CASE WHEN %(level)s::text = 'agency' THEN coalesce(u.tier, c.tier) END, "
        f"%(t0)s::date) AS target_{k.id}" for k in KPIS)
    unit = _UNIT_COLUMN[level]
    return f"""
WITH u AS ({_UNITS[level]}),
c AS (
    SELECT {unit} AS unit, min(province_code) AS province_code, min(tier) AS tier, {sums}
    FROM {source}
    WHERE day >= %(t0)s::date AND day < %(t1)s::date
      AND received + resolved + paid_fee_bearing > 0
      AND {unit} <> 'unassigned'
      AND (%(province)s::text IS NULL OR province_code = %(province)s::text)
      AND (%(province)s::text IS NULL
           OR applicant_province IN (%(province)s::text, 'unassigned'))
    GROUP BY {unit}
)
SELECT coalesce(u.code, c.unit) AS code, u.name,
       coalesce(u.province_code, c.province_code) AS province_code,
       CASE WHEN %(level)s::text = 'agency' THEN coalesce(u.tier, c.tier, 'unassigned') END AS tier,
       {counts}, {targets}
FROM u FULL JOIN c ON c.unit = u.code
ORDER BY 1
"""


@dataclass(slots=True)
class Scorecard:
    level: Level
    province_code: str | None
    grain: Grain
    start: date
    end: date
    source: Source
    units: list[UnitScore]

    def as_json(self, rank_by: str) -> dict[str, Any]:
        ranked = sum(1 for u in self.units if u.ranks.get(rank_by) is not None)
        return {"level": self.level, "province_code": self.province_code,
                "grain": self.grain, "period": self.start.isoformat(),
                "from": self.start.isoformat(),
                "to": date.fromordinal(self.end.toordinal() - 1).isoformat(),
                "source": self.source, "timezone": "Asia/Ho_Chi_Minh",
                "rank_by": rank_by, "peers": len(self.units), "ranked": ranked,
                "units": [u.as_json() for u in sorted(self.units, key=sort_key(rank_by))]}


def _build(level: Level, province: str | None, grain: Grain, start: date, end: date,
           source: Source, names: list[str], rows: list[tuple[Any, ...]]) -> Scorecard:
    units: list[UnitScore] = []
    for raw in rows:
        rec = dict(zip(names, raw, strict=True))
        counts = {c: int(rec[c]) for c in COUNTS}
        units.append(UnitScore(
            code=rec["code"], name=rec["name"], province_code=rec["province_code"],
            tier=rec["tier"],
            kpis={k.id: KpiValue(counts[k.numerator], counts[k.denominator],
                                 rec[f"target_{k.id}"]) for k in KPIS}))
    rank_units(units)
    return Scorecard(level, province, grain, start, end, source, units)


def _params(level: Level, province: str | None, grain: Grain, period: date
            ) -> tuple[date, date, dict[str, Any]]:
    if level != "province" and province is None:
        raise ValueError(f"level {level} needs a province")
    start = period_start(period, grain)
    end = next_period(start, grain)
    return start, end, {"level": level, "province": province if level != "province" else None,
                        "t0": start, "t1": end}


async def fetch_scorecard(conn: psycopg.AsyncConnection[Any], *, level: Level,
                          province: str | None, grain: Grain, period: date,
                          source: Source = "kpi_daily") -> Scorecard:
    """The scorecard of ``level`` units for the period holding ``period``."""
    start, end, params = _params(level, province, grain, period)
    cur = await conn.execute(scorecard_query(level, source).encode(), params)
    names = [d.name for d in cur.description or ()]
    rows = await cur.fetchall()
    return _build(level, province if level != "province" else None, grain, start, end,
                  source, names, rows)


def fetch_scorecard_sync(conn: psycopg.Connection[Any], *, level: Level,
                         province: str | None, grain: Grain, period: date,
                         source: Source = "kpi_daily") -> Scorecard:
    """:func:`fetch_scorecard` on a blocking connection (reports, CLI)."""
    start, end, params = _params(level, province, grain, period)
    cur = conn.execute(scorecard_query(level, source).encode(), params)
    names = [d.name for d in cur.description or ()]
    rows = cur.fetchall()
    return _build(level, province if level != "province" else None, grain, start, end,
                  source, names, rows)
