"""Province commit -> national row, at a province's rate of dossier events (issue 25).

A federation of one province (the local stack's broker) and the nation (a broker of its
own), real MirrorMaker and ``ioc federation`` processes (``iocdev.federation.running``).
Dossier events are committed to the province's database at ``rate`` events/s, in
transactions of ``batch`` events as the sink commits them (the dossier fold runs in
each). Every transaction also opens one probe dossier at an agency of its own, so it
creates exactly one new KPI key; its latency is the national row's ``stored_at`` minus
the province's clock just before that transaction committed (one PostgreSQL server, so
one clock). Also printed: what the nation spent per record (CPU of the ingest process)
and the bytes per stored row, the inputs of the 34-province sizing in BENCHMARKS.md.

    python -m benchmarks.bench_federation --rate 5000 --seconds 60
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
from iocdev.settings import get_dev_settings

INSERT = """
INSERT INTO service_events (time, event_id, source_id, department, commune_code,
    province_code, dossier_id, procedure_code, agency, channel, status, due_at, resolved_at,
    fee_bearing, paid_online, digitised, geo, received_at)
SELECT t, e, s, 'pscc', c, '01', d, '1.0001', a, ch, st, due, res, fee, po, dg, 'code', now()
FROM unnest(%s::timestamptz[], %s::text[], %s::text[], %s::text[], %s::text[], %s::text[],
            %s::text[], %s::text[], %s::timestamptz[], %s::timestamptz[], %s::boolean[],
            %s::boolean[], %s::boolean[]) AS v(t, e, s, c, d, a, ch, st, due, res, fee, po, dg)
ON CONFLICT DO NOTHING
"""
"""One statement per transaction, as the sink writes a batch: the dossier fold (statement
triggers) runs once per batch."""
STATUSES = ("received", "in_progress", "resolved", "paid")


def _events(n: int, start: int, rng: random.Random, t0: datetime) -> list[tuple[Any, ...]]:
    rows = []
    for i in range(start, start + n):
        dossier = f"d{rng.randrange(max(1, i // 3 + 1))}"
        status = rng.choice(STATUSES)
        at = t0 + timedelta(seconds=rng.randrange(7 * 86400))
        rows.append((at, f"e{i}", f"desk-{i % 50}", f"{rng.randrange(1, 400):05d}", dossier,
                     f"agency-{rng.randrange(40)}", rng.choice(("online", "offline")),
                     status, at + timedelta(days=5),
                     at + timedelta(days=1) if status == "resolved" else None,
                     rng.random() < 0.4, rng.random() < 0.5, rng.random() < 0.7))
    return rows


def _cpu_s(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def run(rate: int = 5000, seconds: int = 60, batch: int = 500) -> dict[str, Any]:
    from iocdev.federation.running import federation

    settings = get_dev_settings()
    rng = random.Random(7)
    t0 = datetime(2026, 11, 1, tzinfo=UTC)
    with tempfile.TemporaryDirectory() as tmp, \
            federation(settings, ["01"], Path(tmp), publish_every_s=0.1) as fed:
        province = fed.provinces["01"]
        ingest = fed.processes[-1]
        probes: dict[str, datetime] = {}
        sent = 0
        with psycopg.connect(province.conninfo) as conn:
            interval = batch / rate
            start = time.monotonic()
            cpu0 = _cpu_s(ingest.pid)
            i = 0
            while time.monotonic() - start < seconds:
                rows = _events(batch - 1, sent, rng, t0)
                probe = f"probe-{i}"
                rows.append((t0, f"p{i}", "desk-probe", "00004", f"p{i}", probe, "online",
                             "received", t0 + timedelta(days=5), None, False, True, True))
                with conn.transaction(), conn.cursor() as cur:
                    cur.execute(INSERT, [list(col) for col in zip(*rows, strict=True)])
                    row = cur.execute("SELECT clock_timestamp()").fetchone()
                assert row is not None
                probes[probe] = row[0]
                sent += len(rows)
                i += 1
                time.sleep(max(0.0, start + i * interval - time.monotonic()))
            elapsed = time.monotonic() - start
        deadline = time.monotonic() + 120
        got: dict[str, datetime] = {}
        with psycopg.connect(fed.nation_conninfo) as nat:
            while time.monotonic() < deadline:
                got = dict(nat.execute(
                    "SELECT agency, stored_at FROM fed_kpi_counts WHERE agency LIKE 'probe-%'"
                ).fetchall())
                if len(got) >= len(probes):
                    break
                time.sleep(0.5)
            cpu = _cpu_s(ingest.pid) - cpu0
            stats = nat.execute("SELECT count(*), pg_total_relation_size('fed_kpi_counts') "
                                "FROM fed_kpi_counts").fetchone()
            total = nat.execute("SELECT coalesce(sum(records), 0) FROM fed_origins").fetchone()
    lat = sorted((got[k] - probes[k]).total_seconds() for k in probes if k in got)
    rows_n, size = stats if stats else (0, 0)
    records = int(total[0]) if total else 0
    q = statistics.quantiles(lat, n=100) if len(lat) >= 2 else [float("nan")] * 99
    return {"rate_offered": rate, "events": sent, "events_per_s": round(sent / elapsed),
            "probes": len(probes), "probes_arrived": len(lat),
            "latency_p50_s": round(q[49], 3), "latency_p99_s": round(q[98], 3),
            "latency_max_s": round(lat[-1], 3) if lat else None,
            "national_rows": rows_n, "bytes_per_row": round(size / rows_n) if rows_n else None,
            "records_received": int(records or 0),
            "ingest_cpu_s_per_1000_records": round(1000 * cpu / records, 4) if records else None,
            "loadavg": os.getloadavg()}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    ap.add_argument("--rate", type=int, default=5000)
    ap.add_argument("--seconds", type=int, default=60)
    ap.add_argument("--batch", type=int, default=500)
    args = ap.parse_args()
    print(json.dumps(run(args.rate, args.seconds, args.batch), indent=2, default=str))


if __name__ == "__main__":
    main()
