"""The simulator's dossiers follow the seed figures by tier (commune one-stop shops near
99 % online, provincial departments near 60 %) and a configured month-on-month rise
(Hà Nội: under 1 % to over 25 % within one month), by the month of receipt in Vietnam time;
every agency it uses is in the bundled registry."""

from __future__ import annotations

import gzip
from collections import Counter
from datetime import datetime

import pytest
from iocdev.simulate.dossiers import OnlineRise
from iocdev.simulate.generator import events
from iocdev.simulate.physics import VN_TZ

from ioccore.agencies import BUNDLED, parse_registry

START = datetime(2026, 10, 18, tzinfo=VN_TZ)
SPAN = 28 * 86400.0


def _received_shares(rise: OnlineRise | None) -> dict[tuple[str, str], tuple[int, int]]:
    """(tier, VN month) -> (online, all) over received events."""
    online: Counter[tuple[str, str]] = Counter()
    total: Counter[tuple[str, str]] = Counter()
    for ev in events("01", START, SPAN, rate=0.03, seed=3, online_rise=rise):
        payload = ev.payload
        if ev.feed != "service" or not isinstance(payload, dict) \
                or payload["body"]["status"] != "received":
            continue
        month = datetime.fromisoformat(payload["occurred_at"]).astimezone(VN_TZ)
        key = (ev.truth.extra["agency_level"], month.strftime("%Y-%m"))
        total[key] += 1
        online[key] += payload["body"]["channel"] == "online"
    return {k: (online[k], total[k]) for k in total}


@pytest.mark.slow  # simulated days: `make unit` leaves it to `make test`
def test_tiers_follow_the_seed_figures() -> None:
    shares = _received_shares(None)
    for month in ("2026-10", "2026-11"):
        c_on, c_all = shares[("commune", month)]
        p_on, p_all = shares[("province", month)]
        assert c_all > 300 and p_all > 150, shares
        assert c_on / c_all == pytest.approx(0.99, abs=0.015)
        assert p_on / p_all == pytest.approx(0.60, abs=0.08)


def test_a_configured_rise_month_on_month() -> None:
    shares = _received_shares(OnlineRise.parse("2026-11:0.008:0.26"))
    before = [shares[(t, "2026-10")] for t in ("commune", "province")]
    after = [shares[(t, "2026-11")] for t in ("commune", "province")]
    assert sum(n for n, _ in before) / sum(d for _, d in before) < 0.01
    assert sum(n for n, _ in after) / sum(d for _, d in after) > 0.22
    with pytest.raises(ValueError):
        OnlineRise.parse("2026-11:1.5:0.2")


def test_every_simulated_agency_is_in_the_bundled_registry() -> None:
    from iocdev.simulate import registry

    known = {a.code: a.tier for a in parse_registry(
        gzip.decompress(BUNDLED.read_bytes()).decode().splitlines())}
    assert len(known) == 3321 + 34 * 8
    seen = set()
    for ev in events("79", START, 3600.0, rate=5.0, seed=1):
        if ev.feed == "service" and isinstance(ev.payload, dict):
            body = ev.payload["body"]
            seen.add(body["agency"])
            assert known[body["agency"]] == ev.truth.extra["agency_level"]
    assert seen
    assert registry.main(["--check"]) == 0, "run python -m iocdev.simulate.registry"
