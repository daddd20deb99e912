"""Reports stored in table ``reports``, and the schedule that generates each month's
report exactly once however many processes run it (docs/reports.md).

A scheduled report is claimed by inserting its (scope, grain, period) row, committed
before the work (a partial unique index makes the second insert a no-op); the claimer
generates it and marks it done only while it still holds the claim. A claim left
``running`` or ``failed`` for longer than the lease (a process that died, a database
that refused) is taken over by one process (a conditional UPDATE). So each scheduled
(scope, grain, period) ends with exactly one ``done`` row, written once.
"""

from __future__ import annotations

import logging
import os
import socket
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any, Final

import psycopg

from ioccore.kpis import Grain, period_start, previous_period, vn_today
from ioccore.reports.content import NATION, gather
from ioccore.reports.render import to_csv, to_xlsx
from ioccore.scorecards import Source

log = logging.getLogger("ioc.reports")
LEASE: Final = timedelta(minutes=10)


def worker_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


@dataclass(frozen=True, slots=True)
class ReportInfo:
    id: int
    kind: str
    scope: str
    grain: str
    period: date
    source: str
    state: str
    cutoff: datetime | None
    finished_at: datetime | None

    def as_json(self) -> dict[str, Any]:
        return {"id": self.id, "kind": self.kind, "scope": self.scope, "grain": self.grain,
                "period": self.period.isoformat(), "source": self.source,
                "state": self.state,
                "data_cutoff": self.cutoff.isoformat() if self.cutoff else None,
                "finished_at": self.finished_at.isoformat() if self.finished_at else None,
                "files": {"xlsx": f"/v1/reports/{self.id}.xlsx",
                          "csv": f"/v1/reports/{self.id}.csv"} if self.state == "done"
                else None}


_INFO: Final = ("id, kind, scope, grain, period, source, state, cutoff, finished_at")


def _generate(conn: psycopg.Connection[Any], report_id: int, me: str, *, scope: str,
              grain: Grain, period: date, source: Source) -> bool:
    """Build and store the files of a claimed report; False when the claim was lost."""
    try:
        content = gather(conn, scope=scope, grain=grain, period=period, source=source)
        xlsx, csv = to_xlsx(content), to_csv(content)
    except psycopg.Error as exc:
        conn.execute("UPDATE reports SET state = 'failed', error = %s, finished_at = now()"
                     " WHERE id = %s AND claimed_by = %s", (str(exc)[:500], report_id, me))
        raise
    cur = conn.execute(
        "UPDATE reports SET state = 'done', xlsx = %s, csv = %s, cutoff = %s, "
        "finished_at = now(), error = NULL WHERE id = %s AND claimed_by = %s "
        "AND state = 'running'", (xlsx, csv, content.cutoff, report_id, me))
    return cur.rowcount == 1


def claim_scheduled(conn: psycopg.Connection[Any], *, scope: str, grain: Grain,
                    period: date, source: Source, me: str) -> int | None:
    """The report's id when this process now holds its claim, else ``None``
    (``conn`` in autocommit: each statement commits)."""
    row = conn.execute(
        "INSERT INTO reports (kind, scope, grain, period, source, claimed_by) "
        "VALUES ('scheduled', %s, %s, %s, %s, %s) "
        "ON CONFLICT (scope, grain, period) WHERE kind = 'scheduled' DO NOTHING "
        "RETURNING id", (scope, grain, period, source, me)).fetchone()
    if row:
        return int(row[0])
    row = conn.execute(
        "UPDATE reports SET claimed_by = %s, claimed_at = now(), state = 'running' "
        "WHERE kind = 'scheduled' AND scope = %s AND grain = %s AND period = %s "
        "AND state IN ('running', 'failed') AND claimed_at < now() - %s RETURNING id",
        (me, scope, grain, period, LEASE)).fetchone()
    return int(row[0]) if row else None


def generate_on_demand(conn: psycopg.Connection[Any], *, scope: str, grain: Grain,
                       period: date, source: Source, requested_by: str | None
                       ) -> ReportInfo:
    """A report now, stored as its own row (not the scheduled one)."""
    me = worker_id()
    row = conn.execute(
        "INSERT INTO reports (kind, scope, grain, period, source, claimed_by, requested_by)"
        " VALUES ('on_demand', %s, %s, %s, %s, %s, %s) RETURNING id",
        (scope, grain, period_start(period, grain), source, me, requested_by)).fetchone()
    assert row is not None  # INSERT ... RETURNING returns the row
    report_id = int(row[0])
    _generate(conn, report_id, me, scope=scope, grain=grain, period=period, source=source)
    info = get_info(conn, report_id)
    assert info is not None
    return info


def due_scopes(conn: psycopg.Connection[Any], source: Source, start: date, end: date
               ) -> list[str]:
    """The nation and every province with KPI rows in [start, end)."""
    rows = conn.execute(
        f"SELECT DISTINCT province_code FROM {source} WHERE day >= %s AND day < %s "
        "AND province_code ~ '^[0-9]{2}$' ORDER BY 1".encode(), (start, end)).fetchall()
    return [NATION, *(r[0] for r in rows)]


def run_schedule(conn: psycopg.Connection[Any], *, source: Source, today: date | None = None,
                 grain: Grain = "month", after_days: int = 1,
                 scopes: list[str] | None = None, me: str | None = None) -> list[int]:
    """Generate the last complete period's reports that nobody has (once ``after_days``
    of the new period have passed, so most late events are in). Returns the ids made."""
    me = me or worker_id()
    today = today or vn_today()
    current = period_start(today, grain)
    if (today - current).days < after_days:
        return []
    period = previous_period(current, grain)
    made: list[int] = []
    for scope in scopes or due_scopes(conn, source, period, current):
        report_id = claim_scheduled(conn, scope=scope, grain=grain, period=period,
                                    source=source, me=me)
        if report_id is None:
            continue
        try:
            if _generate(conn, report_id, me, scope=scope, grain=grain, period=period,
                         source=source):
                made.append(report_id)
                log.info("report %s %s %s generated (id %d)", scope, grain, period,
                         report_id)
        except psycopg.Error:
            log.exception("report %s %s %s failed; retried after the lease", scope,
                          grain, period)
    return made


def list_query() -> str:
    """Reports newest period first (params ``scope``, ``limit``)."""
    return (f"SELECT {_INFO} FROM reports WHERE (%(scope)s::text IS NULL OR "
            "scope = %(scope)s::text) ORDER BY period DESC, scope, id DESC LIMIT %(limit)s")


def get_info(conn: psycopg.Connection[Any], report_id: int) -> ReportInfo | None:
    row = conn.execute(f"SELECT {_INFO} FROM reports WHERE id = %s", (report_id,)).fetchone()
    return ReportInfo(*row) if row else None
