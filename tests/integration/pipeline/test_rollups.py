"""Stage 2 correctness on the real broker, workers and database.

A known event set must give exactly the expected one-minute rollups, and keep giving
them under replay, two workers, late events and a worker killed with SIGKILL.
"""

from __future__ import annotations

import random
import time
from collections import defaultdict
from datetime import datetime, timedelta
from typing import Any

import httpx
import pytest
from iocdev.sandbox import Pipeline, batches, envelope

from tests.support.clock import T0
from tests.support.kills import kill_mid_stream, trickle

pytestmark = [pytest.mark.integration, pytest.mark.slow, pytest.mark.partitions(3)]

ROLLUPS = ("SELECT commune_code, metric, bucket, count, sum, min, max, last "
           "FROM rollup_1m ORDER BY 1, 2, 3")


def communes(n: int) -> list[tuple[str, float, float]]:
    """(code, lat, lon) of ``n`` Hanoi communes from the bundled reference."""
    from geo.reference import read_reference

    frame = read_reference().communes
    hanoi = frame[frame["province_code"] == "01"].sort_values("code").head(n)
    return [(str(r.code), float(r.lat), float(r.lon)) for r in hanoi.itertuples()]


def sensor_events(n: int, seed: int = 7, start: datetime = T0, span_s: int = 240
                  ) -> list[dict[str, Any]]:
    """``n`` PM2.5 readings, unique timestamps, half located by code, half by point.

    Produced in no particular time order, so the span stays inside the allowed lateness
    (300 s): none of them is late, whatever order workers see them in."""
    rng = random.Random(seed)
    places = communes(4)
    offsets = rng.sample(range(span_s * 1000), n)  # distinct milliseconds: no ties for last
    out = []
    for i, off in enumerate(offsets):
        code, lat, lon = places[i % len(places)]
        at = start + timedelta(milliseconds=off)
        body = {"metric": "pm25", "value": round(rng.uniform(5, 180), 2), "unit": "µg/m³"}
        kwargs: dict[str, Any] = ({"commune_code": code} if i % 2 else {"location": (lat, lon)})
        out.append(envelope("sensor", f"e{i}", f"aq-{i % 16}", at, body, **kwargs))
    return out


def expected_rollups(events: list[dict[str, Any]]) -> list[tuple[Any, ...]]:
    places = {(lat, lon): code for code, lat, lon in communes(4)}
    windows: dict[tuple[str, str, datetime], list[tuple[datetime, float]]] = defaultdict(list)
    for e in events:
        code = e.get("commune_code") or places[(e["location"]["lat"], e["location"]["lon"])]
        at = datetime.fromisoformat(e["occurred_at"])
        minute = at.replace(second=0, microsecond=0)
        windows[(code, e["body"]["metric"], minute)].append((at, float(e["body"]["value"])))
    rows = []
    for (code, metric, minute), points in sorted(windows.items()):
        values = [v for _, v in points]
        last = max(points)[1]
        rows.append((code, metric, minute, len(values), round(sum(values), 6), min(values),
                     max(values), last))
    return rows


def rollups(pipe: Pipeline) -> list[tuple[Any, ...]]:
    return [(*r[:4], round(r[4], 6), *r[5:]) for r in pipe.query(ROLLUPS)]


def test_known_events_give_exact_rollups_and_replay_changes_nothing(pipe: Pipeline) -> None:
    events = sensor_events(2000)
    pipe.produce("sensor", batches(events, 50))
    pipe.start_worker()
    pipe.wait_for("SELECT count(*) FROM sensor_readings", len(events))
    expected = expected_rollups(events)
    pipe.wait_for("SELECT sum(count) FROM rollup_1m", len(events))
    assert rollups(pipe) == expected
    pipe.stop_workers()
    # Replay the whole topic with a new consumer group: nothing may change.
    pipe.start_worker(app_id=pipe.app_id + "-replay")
    pipe.wait_for("SELECT count(*) FROM sensor_readings", len(events))
    time.sleep(8)  # let the replaying worker chew through every message
    assert rollups(pipe) == expected
    assert pipe.query("SELECT count(*) FROM sensor_readings")[0][0] == len(events)


def test_two_workers_in_one_group_give_identical_rollups(pipe: Pipeline) -> None:
    events = sensor_events(3000, seed=11)
    pipe.start_worker()
    pipe.start_worker()
    time.sleep(6)  # both join the group
    pipe.produce("sensor", batches(events, 20))
    pipe.wait_for("SELECT sum(count) FROM rollup_1m", len(events), timeout=120)
    assert rollups(pipe) == expected_rollups(events)


def test_late_events_are_marked_late_and_still_counted_in_their_window(pipe: Pipeline) -> None:
    code, _, _ = communes(1)[0]

    def body(v: float) -> dict[str, Any]:
        return {"metric": "pm25", "value": v, "unit": "ug/m3"}

    first = [envelope("sensor", "a1", "s1", T0 + timedelta(seconds=5), body(10.0),
                      commune_code=code),
             envelope("sensor", "a2", "s1", T0 + timedelta(minutes=10), body(20.0),
                      commune_code=code)]
    pipe.start_worker()
    pipe.produce("sensor", batches(first, 10))
    pipe.wait_for("SELECT count(*) FROM sensor_readings", 2)
    # Watermark is now T0+10min; allowed lateness 5 min.
    late = [envelope("sensor", "b1", "s1", T0 + timedelta(minutes=6, seconds=30), body(30.0),
                     commune_code=code),  # within lateness: corrects its window
            envelope("sensor", "b2", "s1", T0 + timedelta(minutes=1), body(40.0),
                     commune_code=code)]  # beyond the lateness: marked late, counted all the same
    pipe.produce("sensor", batches(late, 10))
    pipe.wait_for("SELECT count(*) FROM sensor_readings", 4)
    rows = pipe.query("SELECT bucket, count, sum FROM rollup_1m ORDER BY bucket")
    assert rows == [(T0, 1, 10.0), (T0 + timedelta(minutes=1), 1, 40.0),
                    (T0 + timedelta(minutes=6), 1, 30.0), (T0 + timedelta(minutes=10), 1, 20.0)]
    assert pipe.query("SELECT event_id FROM sensor_readings WHERE late") == [("b2",)]


def test_a_worker_joining_mid_stream_loses_and_doubles_nothing(pipe: Pipeline) -> None:
    """The rebalance re-delivers unacknowledged messages to their new (or old) owner:
    none may be rejected as a duplicate of itself, none counted twice."""
    events = sensor_events(6000, seed=13)
    messages = list(batches(events, 20))
    # Commit rarely, so the rebalance re-delivers processed-but-uncommitted messages.
    slow_commits = {"IOC__STREAM__COMMIT_INTERVAL_S": "30"}
    pipe.start_worker(extra_env=slow_commits)
    pipe.produce("sensor", messages[: len(messages) // 2])
    pipe.wait_for("SELECT count(*) > 0 FROM sensor_readings", True)
    pipe.start_worker(extra_env=slow_commits)  # joins after the first one made progress
    pipe.produce("sensor", messages[len(messages) // 2:])
    pipe.wait_for("SELECT sum(count) FROM rollup_1m", len(events), timeout=120)
    assert rollups(pipe) == expected_rollups(events)
    assert pipe.query("SELECT count(*) FROM sensor_readings")[0][0] == len(events)


def test_worker_killed_mid_stream_loses_nothing_and_counts_nothing_twice(
        pipe: Pipeline) -> None:
    events = sensor_events(20000, seed=3)
    worker = pipe.start_worker()
    time.sleep(5)
    producing = trickle(pipe, "sensor", list(batches(events, 20)))
    try:
        kill_mid_stream(pipe, worker, after_rows=2000, total=len(events))
    finally:
        producing.join()
    pipe.start_worker()
    pipe.wait_for("SELECT count(*) FROM sensor_readings", len(events), timeout=180)
    pipe.wait_for("SELECT sum(count) FROM rollup_1m", len(events), timeout=60)
    assert rollups(pipe) == expected_rollups(events)


def _received(port: int) -> float:
    """``ioc_ingest_events_received_total`` of one worker (0 before its first batch, or
    while it starts: nothing listens yet)."""
    try:
        text = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=5).text
    except httpx.TransportError:
        return 0.0
    return sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines()
               if line.startswith("ioc_ingest_events_received_total{"))


def test_one_stage_per_process_stores_the_same_rollups(pipe: Pipeline) -> None:
    """``stream.stages``: a stage-1 process alone enriches everything and stores nothing;
    a stage-2 process started later stores what it enriched, exactly, and killed
    mid-stream, its successor loses and doubles nothing."""
    events = sensor_events(6000, seed=17)
    pipe.start_worker(extra_env={"IOC__STREAM__STAGES": "stage1"})
    pipe.produce("sensor", batches(events, 20))
    port = pipe.web_ports[0]
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline and _received(port) < len(events):
        time.sleep(0.5)
    assert _received(port) == len(events)
    time.sleep(2)  # a stage 2 in this process would have stored its first batch by now
    assert pipe.query("SELECT count(*) FROM sensor_readings")[0][0] == 0
    # small transactions, commits rare: the kill lands between stored and committed
    store = pipe.start_worker(extra_env={"IOC__STREAM__STAGES": "stage2",
                                         "IOC__STREAM__STAGE2_BATCH_BYTES": "20000",
                                         "IOC__STREAM__COMMIT_INTERVAL_S": "30"})
    kill_mid_stream(pipe, store, after_rows=1000, total=len(events))
    pipe.start_worker(extra_env={"IOC__STREAM__STAGES": "stage2"})
    pipe.wait_for("SELECT sum(count) FROM rollup_1m", len(events), timeout=120)
    assert rollups(pipe) == expected_rollups(events)
    assert pipe.query("SELECT count(*) FROM sensor_readings")[0][0] == len(events)
