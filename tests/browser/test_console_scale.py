"""The console at scale and across an API restart, in a real browser against a real API
and database: the live stream resumes with Last-Event-ID after the API went away (what
happened meanwhile shows without a reload), and 5,000 active alerts render grouped
(figures printed, no timed assertion).
"""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, replace
from datetime import date
from pathlib import Path
from typing import Any

import psycopg
import pytest
from iocdev.sandbox import fresh_database
from playwright.sync_api import Browser, expect

from alerts import store
from geo.reference import SOURCE, read_reference
from geo.store import write_units
from ioccore.settings import Settings
from tests.browser.conftest import (
    ApiProcess,
    _key,
    context,
    copy_to_docs,
    firing,
    in_thread,
    persist,
    save,
    sign_in,
)

pytestmark = [pytest.mark.integration, pytest.mark.slow]

RULES = ["pm25_1h_unhealthy", "water_level_alarm_2", "traffic_congestion", "service_overdue",
         "noise_night", "source_silent", "pm10_1h_high", "temperature_heat"]


@dataclass
class Quiet:
    api: ApiProcess
    keys: dict[str, str]
    conninfo: str
    codes: list[str]

    @property
    def url(self) -> str:
        return self.api.url


@pytest.fixture(scope="module")
def quiet(stack: Settings, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Quiet]:
    """API + database with the communes loaded and no worker: alerts are stored directly
    through the alerts store, so the only writer is the test."""
    tmp = tmp_path_factory.mktemp("console-scale")
    with fresh_database(stack, "ioc_console") as (name, conninfo):
        units = read_reference(stack.resolve(stack.geo.reference)).units
        with psycopg.connect(conninfo) as conn:
            write_units(conn, units, source=SOURCE, valid_from=date(2025, 7, 1))
            codes = [r[0] for r in conn.execute(
                "SELECT commune_code FROM current_communes WHERE province_code = '01'"
                " ORDER BY commune_code").fetchall()]
        keys = {"operator": _key(conninfo, stack, "operator", "truc-ban-dem"),
                "viewer": _key(conninfo, stack, "viewer", "man-hinh-tuong")}
        api = ApiProcess({**os.environ, "IOC__DATABASE__DBNAME": name}, tmp / "api.log")
        try:
            api.start()
            yield Quiet(api, keys, conninfo, codes)
        finally:
            api.stop()


def acknowledge(conninfo: str, fp: str, actor: str, note: str) -> None:
    async def go() -> None:
        async with await psycopg.AsyncConnection.connect(conninfo, autocommit=True) as conn:
            await store.acknowledge(conn, fp, actor, note, receivers=[])
    in_thread(go())


def test_stream_resumes_with_last_event_id_after_the_api_restarts(
        quiet: Quiet, browser: Browser) -> None:
    conninfo = quiet.conninfo
    fp = uuid.uuid4().hex[:20]
    persist(conninfo, [firing(fp, "pm25_1h_unhealthy", "00004", "critical")])
    ctx = context(browser)
    page = ctx.new_page()
    sign_in(page, quiet, "viewer", "?group=rule_id,commune_code")
    expect(page.locator(".conn")).to_have_attribute("data-stream", "live", timeout=15_000)
    page.evaluate("window.__notReloaded = true")
    page.locator(".group-toggle").first.click()
    row = page.locator(f'[data-fp="{fp}"]')
    expect(row).to_have_attribute("data-state", "firing")

    api = quiet.api
    api.stop()
    expect(page.locator(".conn")).to_have_attribute("data-stream", "reconnecting",
                                                    timeout=15_000)
    acknowledge(conninfo, fp, "truc-ban-dem", "đã gọi đội ứng cứu")  # while the API is down
    api.start()
    expect(page.locator(".conn")).to_have_attribute("data-stream", "live", timeout=30_000)
    expect(row).to_have_attribute("data-state", "acknowledged", timeout=15_000)
    expect(row).to_contain_text("truc-ban-dem")
    assert page.evaluate("window.__notReloaded === true")
    ctx.close()


def test_backfilled_alerts_are_history_not_new_emergencies(
        quiet: Quiet, browser: Browser) -> None:
    ctx = context(browser)
    page = ctx.new_page()
    sign_in(page, quiet, "operator")
    expect(page.locator(".conn")).to_have_attribute("data-stream", "live", timeout=15_000)
    old, new = uuid.uuid4().hex[:20], uuid.uuid4().hex[:20]
    back = firing(old, "water_level_alarm_2", "00007", "critical")
    back = replace(back, backfilled=True)  # the event-time work's flag, stored as such
    persist(quiet.conninfo, [back])
    history = page.locator(".history-section")
    expect(history.locator(f'[data-fp="{old}"]')).to_be_visible(timeout=10_000)
    expect(history).to_contain_text("Dữ liệu bổ sung")
    assert page.locator(".banner.critical").count() == 0
    assert page.locator(f'section.group [data-fp="{old}"]').count() == 0
    persist(quiet.conninfo, [firing(new, "water_level_alarm_2", "00007", "critical")])
    expect(page.locator(".banner.critical")).to_contain_text("1 cảnh báo nghiêm trọng mới")
    ctx.close()


def test_5000_active_alerts_render_grouped(quiet: Quiet, browser: Browser, out_dir: Path,
                                           record_property: Any) -> None:
    conninfo, codes = quiet.conninfo, quiet.codes
    n = 5000
    severities = ["critical", "warning", "warning", "info"]
    transitions = [firing(uuid.uuid4().hex[:20], RULES[i % len(RULES)],
                          codes[(i // len(RULES)) % len(codes)], severities[i % 4])
                   for i in range(n)]
    persist(conninfo, transitions)
    with psycopg.connect(conninfo) as conn:
        active = conn.execute("SELECT count(*) FROM alerts WHERE state IN"
                              " ('firing', 'acknowledged')").fetchone()
    assert active is not None and active[0] >= n

    ctx = context(browser)
    page = ctx.new_page()
    t0 = time.monotonic()
    sign_in(page, quiet, "viewer")
    title = page.locator("#board-title")
    expect(title).to_contain_text("nhóm", timeout=60_000)
    loaded_s = time.monotonic() - t0
    figures = page.evaluate("window.__iocConsole")
    assert figures["visible"] >= n
    groups = page.locator("section.group").count()
    assert groups == figures["groups"] and groups <= len(RULES) * 2, groups
    # Regroup by commune (hundreds of groups) and expand the largest group
    page.check('.group-by input[value="commune_code"]')
    expect(page.locator("section.group").first).to_be_visible()
    by_commune = page.evaluate("window.__iocConsole")
    page.uncheck('.group-by input[value="commune_code"]')
    page.locator(".group-toggle").first.click()
    expect(page.locator(".members li.alert").first).to_be_visible()
    expanded = page.evaluate("window.__iocConsole")
    save(page, out_dir, "board-5000")
    copy_to_docs([out_dir / "board-5000.png"])
    ctx.close()
    print(f"\nconsole bench: {figures['visible']} active alerts -> {figures['groups']} groups;"
          f" sign-in to grouped board {loaded_s:.2f} s;"
          f" group+render {figures['lastRenderMs']:.0f} ms;"
          f" by rule+province+commune {by_commune['groups']} groups in"
          f" {by_commune['lastRenderMs']:.0f} ms; one group expanded (100 rows shown)"
          f" {expanded['lastRenderMs']:.0f} ms")
    record_property("stack.console_5000_render_ms", round(figures["lastRenderMs"]))
    record_property("stack.console_5000_signin_to_board_s", round(loaded_s, 2))
