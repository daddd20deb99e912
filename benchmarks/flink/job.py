"""The Flink peer's job: the same one-event messages, raw rows and exact one-minute rollups.

Runs in the Flink virtualenv (PyFlink, not the project's), started by
``benchmarks.flink.peer`` with one argument: a JSON file (mode 0600, it may hold the
Kafka and database passwords) written by the parent. Prints JSON lines on stdout:
``{"phase": "running", "t": ...}`` once the job is running and ``{"phase": "done", ...}``
after every sink has flushed and the job finished; ``t`` is ``time.monotonic()``, which
is one clock for every process on the machine.

What it does, in Flink SQL:
- one Kafka source over the three raw topics (JSON, one event per message, bounded at
  the offsets the topics had when the job started, so the job ends when it has read
  the backlog); event time from ``occurred_at``, watermark 300 s behind (ioc's allowed
  lateness: a bounded source emits a final watermark, so every window closes exact);
- raw rows appended to the same hypertables ioc writes (JDBC, batched inserts);
- one-minute tumbling windows per (commune, metric), with the same metrics ioc's rollups
  carry, upserted into ``rollup_1m`` (JDBC upsert on its primary key).

No validation, no geo join (``commune_code`` is in every message), no idempotency
(plain inserts), no alert rules: what ioc does beside it is listed in BENCHMARKS.md.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Any

from pyflink.table import EnvironmentSettings, TableEnvironment

BODY = """ROW<
    metric STRING, `value` DOUBLE, unit STRING,
    segment_id STRING, vehicle_count INT, avg_speed_kmh DOUBLE, occupancy DOUBLE,
    incident STRING,
    dossier_id STRING, procedure_code STRING, agency STRING, channel STRING,
    status STRING, due_at STRING, resolved_at STRING, fee_bearing BOOLEAN,
    paid_online BOOLEAN, digitised BOOLEAN>"""


def ts(expr: str) -> str:
    """An ISO-8601 UTC string (``...T..:..:..[.ffffff]+00:00``) as TIMESTAMP(3)."""
    return (f"TO_TIMESTAMP(SUBSTRING(REPLACE({expr}, 'T', ' ') FROM 1 FOR 23), "
            f"'yyyy-MM-dd HH:mm:ss.SSS')")


def q(value: object) -> str:
    """A SQL string literal."""
    return "'" + str(value).replace("'", "''") + "'"


def source_ddl(c: dict[str, Any]) -> str:
    props = "".join(f",\n  'properties.{k}' = {q(v)}" for k, v in c["kafka"].items())
    return f"""
CREATE TABLE events (
  event_id STRING, source_id STRING, department STRING, feed STRING,
  occurred_at STRING, commune_code STRING,
  location ROW<lat DOUBLE, lon DOUBLE>,
  body {BODY},
  et AS {ts('occurred_at')},
  WATERMARK FOR et AS et - INTERVAL '5' MINUTE
) WITH (
  'connector' = 'kafka',
  'topic' = {q(";".join(c["topics"]))},
  'properties.bootstrap.servers' = {q(c["bootstrap"])},
  'properties.group.id' = {q(c["group"])}{props},
  'scan.startup.mode' = 'earliest-offset',
  'scan.bounded.mode' = 'latest-offset',
  'format' = 'json',
  'json.fail-on-missing-field' = 'false',
  'json.ignore-parse-errors' = 'false'
)"""


def jdbc(c: dict[str, Any], table: str, extra: str = "") -> str:
    db = c["jdbc"]
    url = db["url"]  # the connector wants a user and a password together, or neither
    login = (f",\n  'username' = {q(db['user'])},\n  'password' = {q(db['password'])}"
             if db.get("password") else "")
    if not login:
        url += ("&" if "?" in url else "?") + "user=" + db["user"]
    return f"""WITH (
  'connector' = 'jdbc',
  'url' = {q(url)},
  'table-name' = {q(table)}{login},
  'sink.buffer-flush.max-rows' = '{c["flush_rows"]}',
  'sink.buffer-flush.interval' = '1s'{extra}
)"""


COMMON = """`time` TIMESTAMP(3), event_id STRING, source_id STRING, department STRING,
  commune_code STRING, province_code STRING"""
TAIL = "lat DOUBLE, lon DOUBLE, geo STRING, late BOOLEAN, received_at TIMESTAMP(3)"


def sink_ddls(c: dict[str, Any]) -> list[str]:
    return [
        f"""CREATE TABLE sensor_readings ({COMMON}, metric STRING, `value` DOUBLE,
  unit STRING, {TAIL}) {jdbc(c, 'sensor_readings')}""",
        f"""CREATE TABLE traffic_observations ({COMMON}, segment_id STRING,
  vehicle_count INT, avg_speed_kmh DOUBLE, occupancy DOUBLE, incident STRING, {TAIL})
  {jdbc(c, 'traffic_observations')}""",
        f"""CREATE TABLE service_events ({COMMON}, dossier_id STRING, procedure_code STRING,
  agency STRING, channel STRING, status STRING, due_at TIMESTAMP(3),
  resolved_at TIMESTAMP(3), fee_bearing BOOLEAN, paid_online BOOLEAN, digitised BOOLEAN,
  {TAIL}) {jdbc(c, 'service_events')}""",
        f"""CREATE TABLE rollup_1m (bucket TIMESTAMP(3), commune_code STRING, metric STRING,
  province_code STRING, `count` BIGINT, `sum` DOUBLE, `min` DOUBLE, `max` DOUBLE,
  `last` DOUBLE, last_at TIMESTAMP(3),
  PRIMARY KEY (commune_code, metric, bucket) NOT ENFORCED) {jdbc(c, 'rollup_1m')}""",
    ]


HEAD = "et AS `time`, event_id, source_id, department, commune_code, '01'"
TAIL_SELECT = "location.lat, location.lon, 'code', FALSE, LOCALTIMESTAMP"
RAW_INSERTS = [
    f"""INSERT INTO sensor_readings SELECT {HEAD}, body.metric, body.`value`, body.unit,
        {TAIL_SELECT} FROM events WHERE feed = 'sensor'""",
    f"""INSERT INTO traffic_observations SELECT {HEAD}, body.segment_id, body.vehicle_count,
        body.avg_speed_kmh, body.occupancy, body.incident, {TAIL_SELECT}
        FROM events WHERE feed = 'traffic'""",
    f"""INSERT INTO service_events SELECT {HEAD}, body.dossier_id, body.procedure_code,
        body.agency, body.channel, body.status, {ts('body.due_at')},
        {ts('body.resolved_at')}, body.fee_bearing, body.paid_online, body.digitised,
        {TAIL_SELECT} FROM events WHERE feed = 'service'"""]

# The (metric, value) points ioc's rollups carry (streams/sinks/statements.py).
POINTS = """
CREATE TEMPORARY VIEW points AS
SELECT commune_code, body.metric AS metric, body.`value` AS v, et FROM events
  WHERE feed = 'sensor'
UNION ALL SELECT commune_code, 'traffic.vehicle_count', CAST(body.vehicle_count AS DOUBLE), et
  FROM events WHERE feed = 'traffic'
UNION ALL SELECT commune_code, 'traffic.avg_speed_kmh', body.avg_speed_kmh, et
  FROM events WHERE feed = 'traffic'
UNION ALL SELECT commune_code, 'traffic.occupancy', body.occupancy, et
  FROM events WHERE feed = 'traffic'
UNION ALL SELECT commune_code, 'traffic.incident',
  CASE WHEN body.incident IS NULL THEN 0.0 ELSE 1.0 END, et FROM events WHERE feed = 'traffic'
UNION ALL SELECT commune_code, CONCAT('service.', body.status), 1.0, et
  FROM events WHERE feed = 'service'
UNION ALL SELECT commune_code, 'service.received.online',
  CASE WHEN body.channel = 'online' THEN 1.0 ELSE 0.0 END, et
  FROM events WHERE feed = 'service' AND body.status = 'received'
UNION ALL SELECT commune_code, 'service.received.digitised',
  CASE WHEN body.digitised THEN 1.0 ELSE 0.0 END, et
  FROM events WHERE feed = 'service' AND body.status = 'received'
  AND body.digitised IS NOT NULL
UNION ALL SELECT commune_code, 'service.resolved.on_time',
  CASE WHEN body.resolved_at <= body.due_at THEN 1.0 ELSE 0.0 END, et
  FROM events WHERE feed = 'service' AND body.status = 'resolved'
  AND body.due_at IS NOT NULL AND body.resolved_at IS NOT NULL
UNION ALL SELECT commune_code, 'service.resolved.online',
  CASE WHEN body.channel = 'online' THEN 1.0 ELSE 0.0 END, et
  FROM events WHERE feed = 'service' AND body.status = 'resolved'
UNION ALL SELECT commune_code, 'service.paid.online',
  CASE WHEN body.paid_online THEN 1.0 ELSE 0.0 END, et
  FROM events WHERE feed = 'service' AND body.status = 'paid' AND body.fee_bearing
"""

ROLLUP_INSERT = """
INSERT INTO rollup_1m
SELECT window_start, commune_code, metric, '01', COUNT(*), SUM(v), MIN(v), MAX(v),
       LAST_VALUE(v), MAX(et)
FROM TABLE(TUMBLE(TABLE points, DESCRIPTOR(et), INTERVAL '1' MINUTES))
GROUP BY window_start, window_end, commune_code, metric
"""


def status(client: Any) -> str:
    """The job's status name (``RUNNING``, ``FINISHED``, ...)."""
    return str(client.get_job_status().result()).rsplit(".", 1)[-1]


def say(phase: str, **extra: Any) -> None:
    print(json.dumps({"phase": phase, "t": time.monotonic(), **extra}), flush=True)


def main(config_path: str) -> int:
    c = json.loads(Path(config_path).read_text())
    say("start")
    env = TableEnvironment.create(EnvironmentSettings.in_streaming_mode())
    conf = env.get_config()
    conf.set("parallelism.default", str(c["parallelism"]))
    conf.set("pipeline.jars", ";".join(f"file://{j}" for j in c["jars"]))
    conf.set("pipeline.name", c["name"])
    conf.set("table.local-time-zone", "UTC")
    conf.set("table.exec.source.idle-timeout", "5 s")
    env.execute_sql(source_ddl(c))
    for ddl in sink_ddls(c):
        env.execute_sql(ddl)
    env.execute_sql(POINTS)
    statements = env.create_statement_set()
    if c["raw"]:
        for insert in RAW_INSERTS:
            statements.add_insert_sql(insert)
    statements.add_insert_sql(ROLLUP_INSERT)
    result = statements.execute()
    client = result.get_job_client()
    while status(client) not in ("RUNNING", "FINISHED", "FAILED", "CANCELED"):
        time.sleep(0.05)
    say("running")
    result.wait()  # raises if the job failed; the mini-cluster is gone afterwards
    say("done", status="FINISHED")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1]))
