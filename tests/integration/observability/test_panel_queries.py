"""Every SQL query of every dashboard runs against the real TimescaleDB after a
simulated hour, with Grafana's macros and variables expanded for a fixed range, and
returns the columns its panel needs (``time`` for time series, ``latitude`` and
``longitude`` for geomaps, a number for stats).

The database is created per module, migrated with ``apply_migrations``, given the
bundled geo reference (``geo.store.write_units``) and one hour of rows for five
communes of Hà Nội written straight into rollup_1m, the raw hypertables and alerts.
"""

from __future__ import annotations

import json
import math
import random
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
import pytest
from iocdev.sandbox import fresh_database

from ioccore.settings import ROOT, Settings
from tests.integration.observability.grafana_expand import Expander

pytestmark = pytest.mark.integration

GRAFANA = ROOT / "config" / "grafana"
DASHBOARDS = sorted((GRAFANA / "dashboards").glob("*.json"))
PROVINCE = "01"
N_COMMUNES = 5
END = datetime.now(UTC).replace(second=0, microsecond=0)
START = END - timedelta(hours=1)
NUMERIC = {"int2", "int4", "int8", "float4", "float8", "numeric"}

SENSOR = {"pm25": (35.0, 20.0, "µg/m3"), "pm10": (60.0, 30.0, "µg/m3"),
          "water_level": (1.2, 0.5, "m"), "rainfall": (0.4, 0.4, "mm"),
          "temperature": (29.0, 3.0, "°C"), "humidity": (75.0, 10.0, "%")}
SERVICE_STATUS = ("received", "in_progress", "resolved", "returned", "paid")
SERVICE_SHARES = {"service.received.online": 0.62, "service.received.digitised": 0.9,
                  "service.resolved.on_time": 0.93, "service.resolved.online": 0.55,
                  "service.paid.online": 0.81}


@dataclass(frozen=True)
class Seeded:
    conninfo: str
    communes: list[str]
    metrics: list[str]


def _rollup_rows(communes: list[str], r: random.Random) -> list[tuple[Any, ...]]:
    rows = []
    for m in range(60):
        bucket = START + timedelta(minutes=m)
        diurnal = math.sin(m / 60 * math.pi)
        for code in communes:
            def add(metric: str, values: list[float], code: str = code,
                    bucket: datetime = bucket) -> None:
                rows.append((bucket, code, metric, PROVINCE, len(values), sum(values),
                             min(values), max(values), values[-1],
                             bucket + timedelta(seconds=50)))
            for metric, (mean, spread, _) in SENSOR.items():
                add(metric, [max(0.0, mean + spread * (diurnal + r.uniform(-0.5, 0.5)))
                             for _ in range(4)])
            add("traffic.vehicle_count", [float(r.randint(10, 60)) for _ in range(6)])
            add("traffic.avg_speed_kmh", [r.uniform(12, 45) for _ in range(6)])
            add("traffic.occupancy", [r.uniform(0.1, 0.9) for _ in range(6)])
            add("traffic.incident", [float(r.random() < 0.05) for _ in range(6)])
            for status in SERVICE_STATUS:
                add(f"service.{status}", [1.0] * r.randint(1, 4))
            for metric, p in SERVICE_SHARES.items():
                add(metric, [float(r.random() < p) for _ in range(r.randint(1, 4))])
    return rows


def _seed(conn: psycopg.Connection[Any], communes: list[str]) -> None:
    r = random.Random(7)
    with conn.cursor() as cur:
        with cur.copy("COPY rollup_1m (bucket, commune_code, metric, province_code, count, "
                      "sum, min, max, last, last_at) FROM STDIN") as copy:
            for row in _rollup_rows(communes, r):
                copy.write_row(row)
        received = END
        for i in range(120):
            t = START + timedelta(seconds=30 * i)
            code = communes[i % len(communes)]
            metric, (mean, _, unit) = list(SENSOR.items())[i % len(SENSOR)]
            cur.execute(
                "INSERT INTO sensor_readings (time, event_id, source_id, department, "
                "commune_code, province_code, metric, value, unit, lat, lon, geo, "
                "received_at) VALUES (%s, %s, %s, 'env', %s, %s, %s, %s, %s, 21.03, "
                "105.85, 'contains', %s)",
                (t, f"s-{i}", f"sensor-{i % 7}", code, PROVINCE, metric, mean, unit, received))
            cur.execute(
                "INSERT INTO traffic_observations (time, event_id, source_id, department, "
                "commune_code, province_code, segment_id, vehicle_count, avg_speed_kmh, "
                "occupancy, incident, geo, received_at) VALUES (%s, %s, %s, 'transport', "
                "%s, %s, %s, %s, %s, %s, %s, 'contains', %s)",
                (t, f"t-{i}", f"cam-{i % 5}", code, PROVINCE, f"seg-{i % 9}", 20 + i % 30,
                 30.0, 0.4, "crash" if i % 17 == 0 else None, received))
            cur.execute(
                "INSERT INTO service_events (time, event_id, source_id, department, "
                "commune_code, province_code, dossier_id, procedure_code, agency, channel, "
                "status, geo, received_at, due_at) VALUES (%s, %s, 'desk-1', 'public-service', "
                "%s, %s, %s, '1.001', 'UBND', %s, 'received', 'code', %s, %s)",
                (t, f"d-{i}", code, PROVINCE, f"HS-{i}", "online" if i % 3 else "offline",
                 received, t + timedelta(minutes=30)))  # some overdue by END
        alerts = [("firing", "critical"), ("pending", "warning"), ("acknowledged", "info"),
                  ("firing", "warning"), ("resolved", "warning")]
        for i, (state, severity) in enumerate(alerts):
            code = communes[i % 2]
            started = START + timedelta(minutes=10 * i)
            cur.execute(
                "INSERT INTO alerts (fingerprint, rule_id, state, severity, labels, "
                "commune_code, province_code, seq, started_at, firing_at, resolved_at, "
                "acknowledged_by, last_value, updated_at) "
                "VALUES (%s, %s, %s, %s, %s, %s, %s, 1, %s, %s, %s, %s, 80.5, %s)",
                (f"fp-{i}", f"pm25_high_{i}", state, severity,
                 json.dumps({"commune_code": code}), code, PROVINCE, started, started,
                 END - timedelta(minutes=5) if state == "resolved" else None,
                 "operator-1" if state == "acknowledged" else None, END))
        _seed_incidents(cur)
        _seed_feedback(cur, communes)


def _seed_feedback(cur: psycopg.Cursor[Any], communes: list[str]) -> None:
    """Citizen reports for the feedback dashboard: received in the hour, some resolved in
    and out of SLA and rated, one rejected, some overdue now; their rollup rows; one
    active surge alert."""
    m = timedelta(minutes=1)
    for i in range(12):
        at = START + 5 * i * m
        code, service = communes[i % 2], ("flooding", "streetlight")[i % 2]
        report = f"fb-{i}"
        cur.execute(
            "INSERT INTO feedback_reports (report_id, source_id, event_id, service_code,"
            " description, commune_code, province_code, department, received_at, due_at)"
            " VALUES (%s, 'citizen-app', %s, %s, 'ngập', %s, %s, 'construction', %s, %s)",
            (report, report, service, code, PROVINCE, at, at + (10 if i % 3 else 240) * m))
        cur.execute(
            "INSERT INTO rollup_1m (bucket, commune_code, metric, province_code, count, sum,"
            " min, max, last, last_at) VALUES (%s, %s, %s, %s, 1, 1, 1, 1, 1, %s)",
            (at, code, f"feedback.received.{service}", PROVINCE, at))
        if i % 4 == 3:
            continue  # still open
        status, reason = ("rejected", "duplicate") if i == 4 else ("resolved", None)
        cur.execute(
            "INSERT INTO feedback_status_events (source_id, event_id, report_id, department,"
            " status, reason, occurred_at) VALUES ('xd-desk', %s, %s, 'construction', %s, %s,"
            " %s)", (f"st-{i}", report, status, reason, at + (3 + i) * m))
        if status == "resolved":
            cur.execute("INSERT INTO feedback_ratings (report_id, rating, occurred_at)"
                        " VALUES (%s, %s, %s)", (report, 2 + i % 4, at + 30 * m))
    cur.execute(
        "INSERT INTO alerts (fingerprint, rule_id, state, severity, labels, commune_code,"
        " province_code, seq, started_at, firing_at, last_value, updated_at)"
        " VALUES ('fp-surge', 'flooding_reports_surge', 'firing', 'warning', %s, %s, %s, 1,"
        " %s, %s, 5, %s)",
        (json.dumps({"commune_code": communes[0], "feed": "feedback",
                     "department": "construction"}), communes[0], PROVINCE, START, START, END))


def _seed_incidents(cur: psycopg.Cursor[Any]) -> None:
    """Responses for the incident dashboard: one in SLA, one reopened, one overdue now."""
    m = timedelta(minutes=1)
    for i, (dept, state, ack, res, cycle) in enumerate([
            ("snnmt", "closed", 5, 40, 1), ("pctt", "resolved", 20, 300, 2),
            ("pctt", "open", None, None, 1)]):
        opened = START + 10 * i * m
        acked = opened + ack * m if ack is not None else None
        resolved = opened + res * m if res is not None else None
        cur.execute(
            "INSERT INTO incidents (title, rule_id, province_code, department, severity, state,"
            " cycle, created_at, created_by, opened_at, acknowledged_at, resolved_at,"
            " ack_due_at, resolve_due_at, updated_at) VALUES (%s, 'water_level_alarm_3', %s,"
            " %s, 'critical', %s, %s, %s, 'test', %s, %s, %s, %s, %s, %s) RETURNING id",
            (f"incident {i}", PROVINCE, dept, state, cycle, opened, opened, acked, resolved,
             opened + 15 * m, opened + 240 * m, END))
        row = cur.fetchone()
        assert row is not None
        for c in range(1, cycle + 1):
            cur.execute(
                "INSERT INTO incident_responses (incident_id, cycle, opened_at, acknowledged_at,"
                " resolved_at, ack_due_at, resolve_due_at) VALUES (%s, %s, %s, %s, %s, %s, %s)",
                (row[0], c, opened, acked, resolved, opened + 15 * m, opened + 240 * m))


def _seed_federation(conn: psycopg.Connection[Any]) -> None:
    """Two provinces' published summaries, as the national ioc stores them (tables of
    migration 0080; ``conn``: the owner's, the application role only reads them)."""
    day = (END + timedelta(hours=7)).date()  # Vietnam day of the range's end
    for origin, online in (("01", 7), ("79", 9)):
        conn.execute(
            "INSERT INTO fed_kpi_counts (origin, day, agency, applicant_province, "
            "applicant_commune, province_code, commune_code, tier, received, "
            "received_online, received_digitised, resolved, resolved_online, "
            "resolved_with_due, resolved_on_time, paid_fee_bearing, paid_online, as_of, digest) "
            "VALUES (%s, %s, 'ubnd-x', %s, 'unassigned', %s, 'unassigned', 'commune', "
            "10, %s, 9, 8, 6, 8, 7, 4, 3, %s, %s)",
            (origin, day, origin, origin, online, END, origin.encode()))
        conn.execute("INSERT INTO fed_origins (origin, last_as_of, last_stored, records) "
                     "VALUES (%s, %s, %s, 12)", (origin, END, END))
        conn.execute(
            "INSERT INTO fed_snapshots (origin, kind, body, as_of, digest) VALUES "
            "(%s, 'alert_summary', %s, %s, %s)",
            (origin, json.dumps({"alerts": [
                {"rule_id": "pm25_high", "severity": "critical", "state": "firing",
                 "count": 2},
                {"rule_id": "flood", "severity": "warning", "state": "acknowledged",
                 "count": 1}], "incidents_open": 3, "incidents_open_past_sla": 1}), END,
             origin.encode()))


@pytest.fixture(scope="module")
def seeded(pg_conninfo: str, stack: Settings) -> Iterator[Seeded]:
    from geo.reference import SOURCE, read_reference
    from geo.store import write_units

    with fresh_database(stack, "ioc_obs") as (name, conninfo):
        with psycopg.connect(conninfo) as conn:
            write_units(conn, read_reference().units, source=SOURCE,
                        valid_from=date(2025, 7, 1))
            communes = [r[0] for r in conn.execute(
                "SELECT commune_code FROM current_communes WHERE province_code = %s "
                "ORDER BY commune_code LIMIT %s", (PROVINCE, N_COMMUNES))]
            _seed(conn, communes)
            conn.commit()
        with psycopg.connect(stack.database.owner_conninfo(dbname=name)) as owner:
            _seed_federation(owner)
            owner.commit()
        metrics = sorted({row[2] for row in _rollup_rows(communes[:1], random.Random(1))})
        yield Seeded(conninfo, communes, metrics)


def _builder() -> Any:
    from iocdev import dashboards

    return dashboards


def _sql_targets() -> list[Any]:
    params = []
    for path in DASHBOARDS:
        model = json.loads(path.read_text(encoding="utf-8"))
        for p in _builder().iter_panels(model):
            for t in p["targets"]:
                if "rawSql" in t:
                    params.append(pytest.param(model, p, t,
                                               id=f"{model['uid']}:{p['title']}:{t['refId']}"))
    return params


def _run(conninfo: str, query: str) -> tuple[list[tuple[str, str]], list[tuple[Any, ...]]]:
    """(column name, type name) pairs and rows."""
    with psycopg.connect(conninfo) as conn:
        conn.execute("SET statement_timeout = '20s'")
        cur = conn.execute(query.encode())
        assert cur.description is not None
        types = {oid: name for oid, name in conn.execute(
            "SELECT oid, typname FROM pg_type WHERE oid = ANY(%s)",
            ([d.type_code for d in cur.description],))}
        columns = [(d.name, types[d.type_code]) for d in cur.description]
        return columns, cur.fetchall()


def _expander(model: dict[str, Any], seeded: Seeded) -> Expander:
    """Variable values as a user would pick them: province 01, the seeded communes
    (every one where the variable is multi-valued), all their metrics."""
    multi = frozenset(v["name"] for v in model["templating"]["list"] if v.get("multi"))
    values: dict[str, str | list[str]] = {"province": PROVINCE, "metric": seeded.metrics,
                                          "kpi": "online_share"}
    values["commune"] = seeded.communes if "commune" in multi else seeded.communes[0]
    return Expander(START, END, interval="1m", variables=values, multi=multi)


@pytest.mark.parametrize("path", DASHBOARDS, ids=lambda p: p.stem)
def test_variable_queries_offer_the_seeded_values(path: Path, seeded: Seeded) -> None:
    model = json.loads(path.read_text(encoding="utf-8"))
    exp = _expander(model, seeded)
    for var in model["templating"]["list"]:
        if var["type"] == "custom":  # a fixed list, no query: the value used is offered
            assert exp.variables[var["name"]] in var["query"].split(","), var["name"]
            continue
        columns, rows = _run(seeded.conninfo, exp.expand(var["query"]))
        values = {r[0] for r in rows}
        expected = {"province": {PROVINCE}, "commune": set(seeded.communes),
                    "metric": set(seeded.metrics)}[var["name"]]
        assert expected <= values, (var["name"], sorted(values)[:10])
        if len(columns) > 1:
            assert [c for c, _ in columns] == ["__value", "__text"]


@pytest.mark.parametrize(("model", "panel", "target"), _sql_targets())
def test_panel_query_returns_what_the_panel_needs(
        model: dict[str, Any], panel: dict[str, Any], target: dict[str, Any],
        seeded: Seeded) -> None:
    query = _expander(model, seeded).expand(target["rawSql"])
    columns, rows = _run(seeded.conninfo, query)
    names = [c for c, _ in columns]
    types = dict(columns)
    assert rows, f"no rows after a simulated hour:\n{query}"
    if target["format"] == "time_series":
        assert "time" in names, names
        assert types["time"] in {"timestamptz", "timestamp"}, types["time"]
        value_columns = [c for c, t in columns if c != "time" and t in NUMERIC]
        assert value_columns, columns
        assert all(t in NUMERIC or c in ("time", "metric") for c, t in columns), columns
        times = [r[names.index("time")] for r in rows]
        assert times == sorted(times), "time series must be ordered by time"
    if panel["type"] == "geomap":
        for col in ("latitude", "longitude"):
            assert types.get(col) == "float8", columns
        lat, lon = names.index("latitude"), names.index("longitude")
        assert all(8 <= r[lat] <= 24 and 102 <= r[lon] <= 110 for r in rows)
        assert "approximate" in names
    if panel["type"] == "stat":
        assert any(t in NUMERIC for _, t in columns), columns
