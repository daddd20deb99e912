"""The simulator: deterministic, realistic in shape, malformed at the asked share."""

from __future__ import annotations

import statistics
import time
from collections import defaultdict
from datetime import datetime
from pathlib import Path

import msgspec
import pytest
from iocdev.simulate.communes import all_commune_codes, load_communes
from iocdev.simulate.generator import events, generate
from iocdev.simulate.physics import local_hour
from typer.testing import CliRunner

from ioc.cli import app
from ioccore.events.dedupe import SeenKeys
from ioccore.events.validate import Validator

WINTER = datetime.fromisoformat("2025-12-01T00:00:00+07:00")
SUMMER = datetime.fromisoformat("2025-07-01T00:00:00+07:00")


def test_hanoi_has_126_communes() -> None:
    assert len(load_communes("01")) == 126


def test_same_seed_same_events() -> None:
    a = [msgspec.json.encode(p) if isinstance(p, dict) else p
         for _, _, p in generate("01", WINTER, 600, 20, seed=3, bad_share=0.05)]
    b = [msgspec.json.encode(p) if isinstance(p, dict) else p
         for _, _, p in generate("01", WINTER, 600, 20, seed=3, bad_share=0.05)]
    c = [msgspec.json.encode(p) if isinstance(p, dict) else p
         for _, _, p in generate("01", WINTER, 600, 20, seed=4, bad_share=0.05)]
    assert a == b and a != c
    assert abs(len(a) - 12_000) < 600


def test_file_target_is_byte_identical(tmp_path: Path) -> None:
    runner = CliRunner()
    args = ["simulate", "--target", "file", "--duration", "5m", "--rate", "20",
            "--seed", "11", "--bad-share", "0.02"]
    r1 = runner.invoke(app, [*args, "--out", str(tmp_path / "a.ndjson")])
    r2 = runner.invoke(app, [*args, "--out", str(tmp_path / "b.ndjson")])
    assert r1.exit_code == 0 and r2.exit_code == 0, r1.output
    a = (tmp_path / "a.ndjson").read_bytes()
    assert a == (tmp_path / "b.ndjson").read_bytes() and a.count(b"\n") > 5000


@pytest.mark.slow  # simulated days: `make unit` leaves it to `make test`
def test_every_event_gets_its_ground_truth_from_the_validator() -> None:
    """The validator, then stage 1's duplicate memory (which names re-sent events)."""
    v = Validator(max_message_bytes=1 << 20, max_future_skew_s=300,
                  known_commune=all_commune_codes())
    seen = SeenKeys(1 << 20)
    now = time.time()
    n = bad = 0
    for ev in events("01", WINTER, 1800, 20, seed=5, bad_share=0.1):
        raw = ev.payload if isinstance(ev.payload, bytes) else msgspec.json.encode(ev.payload)
        ok, rej = v.validate(raw, now=now, expected_feed=ev.feed if ev.truth.valid else None)
        got = rej[0].reason if rej else None
        if ok and not seen.add(ok[0].source_id, ok[0].event_id):
            ok, got = [], "duplicate_event_id"
        assert got == ev.truth.expected_reason, (raw, rej)
        if ok and ev.truth.metric is not None and ev.truth.value is not None:
            assert ok[0].value == pytest.approx(ev.truth.value, rel=0.02, abs=0.01)
        n += 1
        bad += not ev.truth.valid
    assert abs(bad / n - 0.1) < 0.01


@pytest.mark.slow  # simulated days: `make unit` leaves it to `make test`
def test_pm25_rush_hour_above_night_in_hanoi_winter() -> None:
    by_hour: dict[int, list[float]] = defaultdict(list)
    for ev in events("01", WINTER, 2 * 86400, 1, seed=1):
        if ev.truth.metric == "pm25" and ev.truth.value is not None:
            by_hour[int(local_hour(ev.t))].append(ev.truth.value)
    mean = {h: statistics.fmean(v) for h, v in by_hour.items()}
    assert mean[8] > mean[3] * 1.2
    overall = statistics.fmean(v for vs in by_hour.values() for v in vs)
    assert 40 <= overall <= 150
    assert max(mean.values()) > 55.5  # the unhealthy band is reached


@pytest.mark.slow  # simulated days: `make unit` leaves it to `make test`
def test_summer_rain_can_flood_gauges() -> None:
    levels = [ev.truth.value for ev in events("01", SUMMER, 20 * 86400, 0.1, seed=2)
              if ev.truth.metric == "water_level" and ev.truth.value is not None]
    assert levels and min(levels) < 1.0 and max(levels) >= 1.5


@pytest.mark.slow  # simulated days: `make unit` leaves it to `make test`
def test_traffic_rush_hour_and_incidents() -> None:
    counts: dict[int, list[int]] = defaultdict(list)
    incidents = set()
    for ev in events("01", WINTER, 86400, 1, seed=1):
        if ev.feed == "traffic" and isinstance(ev.payload, dict):
            body = ev.payload["body"]
            counts[int(local_hour(ev.t))].append(body["vehicle_count"])
            if body["incident"]:
                incidents.add(body["incident"])
    assert statistics.fmean(counts[8]) > 3 * statistics.fmean(counts[3])
    assert "congestion" in incidents and len(incidents) >= 2


@pytest.mark.slow  # simulated days: `make unit` leaves it to `make test`
def test_service_shares_near_the_seed_figures() -> None:
    online: dict[str, list[bool]] = defaultdict(list)
    on_time: list[bool] = []
    paid: list[bool] = []
    for ev in events("01", WINTER, 2 * 86400, 1, seed=1):
        if ev.feed != "service":
            continue
        x = ev.truth.extra
        if x["status"] == "received":
            online[x["agency_level"]].append(x["online"])
        if "on_time" in x:
            on_time.append(x["on_time"])
        if "paid_online" in x:
            paid.append(x["paid_online"])
    assert statistics.fmean(online["commune"]) == pytest.approx(0.9939, abs=0.01)
    assert statistics.fmean(online["province"]) == pytest.approx(0.6048, abs=0.1)
    assert 0.88 <= statistics.fmean(on_time) <= 0.97
    assert 0.75 <= statistics.fmean(paid) <= 0.92
