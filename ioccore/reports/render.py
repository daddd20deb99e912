"""A report as XLSX (openpyxl) and CSV. Both start with the period and the data cut-off:
a figure read from a file without its cut-off would be taken for final while late
events still move it (docs/reports.md)."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from typing import Any, Final

from openpyxl import Workbook
from openpyxl.styles import Font

from ioccore.kpis import KPIS
from ioccore.reports.content import ReportContent
from ioccore.scorecards import sort_key, status

KPI_TITLES: Final = {k.id: k.title for k in KPIS}
KPI_HEADER: Final = ("kpi", "title", "numerator", "denominator", "value", "target",
                     "status", "previous")
UNIT_HEADER: Final = ("level", "code", "name", "tier", "kpi", "numerator", "denominator",
                      "value", "target", "status", "rank", "ranked_peers")
CSV_HEADER: Final = ("section", "level", "code", "name", "tier", "kpi", "numerator",
                     "denominator", "value", "target", "status", "rank", "extra")


def header_rows(c: ReportContent) -> list[tuple[str, str]]:
    return [
        ("report", f"Public-service KPIs and alerts: {c.scope_name or c.scope}"),
        ("scope", c.scope),
        ("grain", c.grain),
        ("period_from", c.start.isoformat()),
        ("period_to", c.last_day.isoformat()),
        ("timezone", "Asia/Ho_Chi_Minh (days are Vietnam days)"),
        ("data_cutoff", c.cutoff.isoformat()),
        ("cutoff_meaning", "every event stored by the cut-off is counted; events "
                           "stored later (late dossiers) can still change these figures"),
        ("source", c.source),
        *[("note", n) for n in c.notes],
    ]


def tier_rows(c: ReportContent) -> Iterator[tuple[Any, ...]]:
    for row in c.tiers:
        for kid, v in row.kpis.items():
            yield (row.tier, kid, KPI_TITLES[kid], v.numerator, v.denominator, v.value,
                   v.target, status(v), v.previous)


def unit_rows(c: ReportContent) -> Iterator[tuple[Any, ...]]:
    for card in c.scorecards:
        for kid in KPI_TITLES:
            ranked = sum(1 for u in card.units if u.ranks.get(kid) is not None)
            for u in sorted(card.units, key=sort_key(kid)):
                v = u.kpis[kid]
                yield (card.level, u.code, u.name, u.tier, kid, v.numerator, v.denominator,
                       v.value, v.target, status(v), u.ranks.get(kid), ranked)


def to_xlsx(c: ReportContent) -> bytes:
    wb = Workbook()
    bold = Font(bold=True)
    ws = wb.active
    assert ws is not None  # a new workbook has one sheet
    ws.title = "Report"
    for key, value in header_rows(c):
        ws.append([key, value])
    for cell in ws["A"]:
        cell.font = bold

    def sheet(title: str, header: tuple[str, ...], rows: Iterator[tuple[Any, ...]]
              | list[tuple[Any, ...]]) -> None:
        s = wb.create_sheet(title)
        s.append(list(header))
        for cell in s[1]:
            cell.font = bold
        for r in rows:
            s.append(list(r))
        s.freeze_panes = "A2"

    sheet("KPIs by tier", ("tier", *KPI_HEADER), tier_rows(c))
    sheet("Scorecards", UNIT_HEADER, unit_rows(c))
    sheet("Alerts", ("province", "rule_id", "severity", "state", "alerts"), c.alerts)
    sheet("Alerts fired", ("rule_id", "severity", "times_fired"), c.fired)
    if c.responses is not None:
        sheet("Responses", ("department", "responses", "acknowledged", "resolved",
                            "tta_median_s", "ttr_median_s", "ack_within_sla",
                            "resolve_within_sla"), c.responses)
    out = io.BytesIO()
    wb.save(out)
    return out.getvalue()


def to_csv(c: ReportContent) -> bytes:
    """One table, one row per figure; ``section`` says what a row is (docs/reports.md)."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\r\n")
    w.writerow(CSV_HEADER)
    for key, value in header_rows(c):
        w.writerow(("report", "", key, value, "", "", "", "", "", "", "", "", ""))
    for t, kid, _title, num, den, val, tgt, st, prev in tier_rows(c):
        w.writerow(("kpi", c.scope, c.scope, c.scope_name or "", t, kid, num, den,
                    _num(val), _num(tgt), st, "", _num(prev)))
    for level, code, name, tier, kid, num, den, val, tgt, st, rank, peers in unit_rows(c):
        w.writerow(("scorecard", level, code, name or "", tier or "", kid, num, den,
                    _num(val), _num(tgt), st, "" if rank is None else rank, peers))
    for prov, rule, sev, state, n in c.alerts:
        w.writerow(("alerts", "province", prov, "", "", rule, n, "", "", "", state, "", sev))
    for rule, sev, n in c.fired:
        w.writerow(("alerts_fired", "", "", "", "", rule, n, "", "", "", "", "", sev))
    for dept, responses, acked, resolved, tta, ttr, ack_sla, res_sla in c.responses or ():
        w.writerow(("responses", "department", dept, "", "", "", responses, "", "", "",
                    "", "", f"acknowledged={acked};resolved={resolved};tta_median_s={tta};"
                            f"ttr_median_s={ttr};ack_within_sla={ack_sla};"
                            f"resolve_within_sla={res_sla}"))
    return ("\ufeff" + buf.getvalue()).encode()  # BOM: Excel reads UTF-8 (Vietnamese names)


def _num(v: float | None) -> str:
    return "" if v is None else repr(float(v))
