"""What a report says, read from the database in ONE repeatable-read snapshot, so every
sheet agrees with every other and with the cut-off it states (the snapshot's time)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any, Final

import psycopg

from ioccore import scorecards
from ioccore.kpis import COUNTS, KPIS, Grain, KpiValue, next_period, period_start, previous_period
from ioccore.scorecards import Scorecard, Source

NATION: Final = "nation"
VN_AT: Final = "(%(d)s::date::timestamp AT TIME ZONE 'Asia/Ho_Chi_Minh')"


@dataclass(slots=True)
class TierRow:
    tier: str  # 'all', 'province', 'commune', 'unassigned'
    kpis: dict[str, KpiValue]


@dataclass(slots=True)
class ReportContent:
    scope: str                      # 'nation' or a two-digit province code
    scope_name: str | None
    grain: Grain
    start: date
    end: date                       # exclusive
    source: Source
    cutoff: datetime                # the snapshot: everything stored by then counts
    tiers: list[TierRow]
    scorecards: list[Scorecard]     # provinces (nation's peers), then communes, agencies
    alerts: list[tuple[Any, ...]]   # (province, rule_id, severity, state, count)
    fired: list[tuple[Any, ...]]    # (rule_id, severity, times fired in the period)
    responses: list[tuple[Any, ...]] | None  # per department, when incidents exist
    notes: list[str] = field(default_factory=list)

    @property
    def last_day(self) -> date:
        return date.fromordinal(self.end.toordinal() - 1)


def _tier_rows(conn: psycopg.Connection[Any], source: Source, province: str | None,
               start: date, end: date) -> list[TierRow]:
    if source not in scorecards.SOURCES:
        raise ValueError(source)
    sums = ", ".join(f"sum({c})::bigint AS {c}" for c in COUNTS)
    targets = ", ".join(f"kpi_target('{k.id}', %(p)s::text, nullif(g.tier, 'all'), "
                        f"%(t0)s::date) AS target_{k.id}" for k in KPIS)
    cur = conn.execute(f"""
        WITH g AS (
            SELECT CASE WHEN grouping(tier) = 1 THEN 'all' ELSE tier END AS tier, {sums}
            FROM {source}
            WHERE day >= %(t0)s::date AND day < %(t1)s::date
              AND received + resolved + paid_fee_bearing > 0
              AND (%(p)s::text IS NULL OR province_code = %(p)s::text)
              AND (%(p)s::text IS NULL OR applicant_province IN (%(p)s::text, 'unassigned'))
            GROUP BY GROUPING SETS ((tier), ()))
        SELECT g.*, {targets} FROM g""".encode(), {"p": province, "t0": start, "t1": end})
    names = [d.name for d in cur.description or ()]
    out: list[TierRow] = []
    for raw in cur.fetchall():
        rec = dict(zip(names, raw, strict=True))
        if rec["received"] is None:  # the empty grand total of no rows
            continue
        counts = {c: int(rec[c]) for c in COUNTS}
        out.append(TierRow(rec["tier"], {
            k.id: KpiValue(counts[k.numerator], counts[k.denominator], rec[f"target_{k.id}"])
            for k in KPIS}))
    order = ("all", "province", "commune", "unassigned")
    out.sort(key=lambda r: order.index(r.tier) if r.tier in order else len(order))
    return out


def _alerts(conn: psycopg.Connection[Any], province: str | None, start: date, end: date
            ) -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]]]:
    """Alerts whose episode overlaps the period (by rule, severity, state now), and how
    many times each rule fired in the period."""
    t0, t1 = VN_AT.replace("%(d)s", "%(t0)s"), VN_AT.replace("%(d)s", "%(t1)s")
    params = {"p": province, "t0": start, "t1": end}
    held = conn.execute(f"""
        SELECT coalesce(province_code, '-'), rule_id, severity, state, count(*)
        FROM alerts
        WHERE state <> 'inactive' AND started_at < {t1}
          AND (resolved_at IS NULL OR resolved_at >= {t0})
          AND (%(p)s::text IS NULL OR province_code = %(p)s::text)
        GROUP BY 1, 2, 3, 4 ORDER BY 1, 2, 3, 4""".encode(), params).fetchall()
    fired = conn.execute(f"""
        SELECT t.rule_id, t.severity, count(*)
        FROM alert_transitions t LEFT JOIN alerts a ON a.fingerprint = t.fingerprint
        WHERE t.kind = 'state' AND t.to_state = 'firing' AND t.at >= {t0} AND t.at < {t1}
          AND (%(p)s::text IS NULL OR a.province_code = %(p)s::text)
        GROUP BY 1, 2 ORDER BY 3 DESC, 1, 2""".encode(), params).fetchall()
    return list(held), list(fired)


def _federated_alerts(conn: psycopg.Connection[Any]) -> list[tuple[Any, ...]]:
    """At the nation: each province's latest published alert summary (a snapshot)."""
    return list(conn.execute("""
        SELECT s.origin, a->>'rule_id', a->>'severity', a->>'state', (a->>'count')::bigint
        FROM fed_snapshots s, jsonb_array_elements(s.body->'alerts') a
        WHERE s.kind = 'alert_summary' ORDER BY 1, 2, 3, 4""").fetchall())


def _responses(conn: psycopg.Connection[Any], province: str | None, grain: Grain,
               start: date, end: date) -> list[tuple[Any, ...]] | None:
    """Response figures per department when this database runs incidents
    (``incident_kpis``), else ``None``."""
    row = conn.execute("SELECT to_regprocedure("
                       "'incident_kpis(text, timestamptz, timestamptz)') IS NOT NULL"
                       ).fetchone()
    if not row or not row[0]:
        return None
    t0, t1 = VN_AT.replace("%(d)s", "%(t0)s"), VN_AT.replace("%(d)s", "%(t1)s")
    return list(conn.execute(f"""
        SELECT department, sum(responses)::bigint, sum(acknowledged)::bigint,
               sum(resolved)::bigint, max(tta_median_s), max(ttr_median_s),
               avg(ack_within_sla), avg(resolve_within_sla)
        FROM incident_kpis('month', {t0}, {t1})
        WHERE %(p)s::text IS NULL OR province_code = %(p)s::text
        GROUP BY department ORDER BY department""".encode(),
        {"p": province, "t0": start, "t1": end}).fetchall())


def gather(conn: psycopg.Connection[Any], *, scope: str, grain: Grain, period: date,
           source: Source = "kpi_daily") -> ReportContent:
    """Everything the report of ``scope`` for the period holding ``period`` says.
    Runs its own read-only repeatable-read transaction on ``conn`` (not in one)."""
    province = None if scope == NATION else scope
    start = period_start(period, grain)
    end = next_period(start, grain)
    conn.read_only = True
    conn.isolation_level = psycopg.IsolationLevel.REPEATABLE_READ
    try:
        with conn.transaction():
            row = conn.execute("SELECT now()").fetchone()
            cutoff: datetime = row[0] if row else datetime.now().astimezone()
            name_row = conn.execute(
                "SELECT province_name FROM current_provinces WHERE province_code = %s",
                (province,)).fetchone() if province else None
            tiers = _tier_rows(conn, source, province, start, end)
            before = {r.tier: r for r in _tier_rows(
                conn, source, province, previous_period(start, grain), start)}
            for r in tiers:
                prev = before.get(r.tier)
                for kid, v in r.kpis.items():
                    v.previous = prev.kpis[kid].value if prev else None
            cards = [scorecards.fetch_scorecard_sync(
                conn, level="province", province=None, grain=grain, period=start,
                source=source)]
            if province:
                for level in ("commune", "agency"):
                    cards.append(scorecards.fetch_scorecard_sync(
                        conn, level=level, province=province, grain=grain,
                        period=start, source=source))
            notes: list[str] = []
            fired: list[tuple[Any, ...]] = []
            if source == "fed_kpi_daily":
                held = _federated_alerts(conn)
                notes.append("Alerts: each province's latest published summary (state "
                             "now), not the period's.")
            else:
                held, fired = _alerts(conn, province, start, end)
            responses = _responses(conn, province, grain, start, end)
    finally:
        conn.read_only = False
        conn.isolation_level = None
    return ReportContent(
        scope=scope, scope_name=(name_row[0] if name_row else None) if province
        else "Việt Nam", grain=grain, start=start, end=end, source=source, cutoff=cutoff,
        tiers=tiers, scorecards=cards, alerts=held, fired=fired, responses=responses,
        notes=notes)
