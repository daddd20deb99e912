"""The operator console in a real browser (Debian's chromium through Playwright) against
the real API, database, broker and worker: the live board, acting from two browsers,
viewer rights, the map, filters in the URL, feed health per department, accessibility.
"""

from __future__ import annotations

import json
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from iocdev.sandbox import batches, envelope
from playwright.sync_api import Browser, Page, expect

from tests.browser.conftest import (
    COMMUNE,
    Console,
    axe_serious,
    context,
    copy_to_docs,
    save,
    sign_in,
)

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def publish_pm25(console: Console, value: float, n: int = 6, commune: str = COMMUNE,
                 source: str = "aq-console-01") -> None:
    """``n`` readings 30 s apart ending now: rules follow event time, and a minute is
    evaluated once the commune's clock (its slowest source, minus 10 s) has passed it."""
    now = datetime.now(UTC)
    events = [envelope("sensor", f"{source}-{uuid.uuid4().hex[:10]}", source,
                       now - timedelta(seconds=30 * (n - 1 - i)),
                       {"metric": "pm25", "value": value, "unit": "ug/m3"},
                       commune_code=commune, department="env") for i in range(n)]
    console.pipe.produce("sensor", batches(events, 50))


def board_alert(page: Page, console: Console) -> Any:
    return page.locator(f'[data-group^="{console.rule_id}"]')


@pytest.fixture(scope="module")
def fired(console: Console, browser: Browser) -> dict[str, Any]:
    """One critical alert raised by published events, watched live by an operator's
    board that was open before the events were published."""
    # Warm the worker first (group joined, partitions assigned): a reading far below the
    # threshold in another commune, stored before the board opens.
    publish_pm25(console, 5.0, n=1, commune="00070", source="aq-console-warmup")
    console.pipe.wait_for("SELECT count(*) FROM sensor_readings", 1)
    ctx = context(browser)
    page = ctx.new_page()
    sign_in(page, console, "operator")
    expect(page.locator(".conn")).to_have_attribute("data-stream", "live", timeout=15_000)
    sent = time.monotonic()
    publish_pm25(console, 150.0)
    group = board_alert(page, console)
    group.wait_for(timeout=60_000)
    seen = time.monotonic()
    stored = console.pipe.query(
        "SELECT fingerprint, extract(epoch FROM clock_timestamp() - recorded_at)"
        " FROM alert_transitions WHERE rule_id = %s AND to_state = 'firing'",
        (console.rule_id,))
    assert stored, "the worker stored no firing transition"
    fingerprint, age_s = stored[0][0], float(stored[0][1])
    shown_after_store = age_s - (time.monotonic() - seen)
    ctx.close()
    print(f"\nconsole: published -> on the board {seen - sent:.2f} s; "
          f"stored -> on the board {shown_after_store:.2f} s")
    return {"fingerprint": fingerprint, "store_to_board_s": shown_after_store,
            "publish_to_board_s": seen - sent}


def test_alert_from_published_events_appears_live_within_2s(fired: dict[str, Any]) -> None:
    # The board was open before the events were published: it learnt of the alert from
    # the live stream, not from a reload. The console's share (stored -> on the board) is
    # asserted; published -> on the board (the worker's batching included) is printed.
    assert fired["store_to_board_s"] < 2.0, fired


def test_board_groups_and_highlights_new_critical(console: Console, browser: Browser,
                                                  fired: dict[str, Any], out_dir: Path) -> None:
    ctx = context(browser)
    page = ctx.new_page()
    sign_in(page, console, "operator")
    group = board_alert(page, console)
    expect(group).to_be_visible()
    expect(group.locator(".count")).to_have_text("1")
    expect(group.locator(".sev-critical").first).to_be_visible()
    expect(group).to_contain_text("Phường Ba Đình")
    expect(group).to_contain_text("team=so-tnmt")  # a shared label lifted to the group
    group.locator(".group-toggle").click()
    expect(group.locator(f'[data-fp="{fired["fingerprint"]}"]')).to_be_visible()
    shot = save(page, out_dir, "board")
    copy_to_docs([shot])
    page.click('.kpi-card[data-kpi="on_time_share"]')  # KPI drill-down by commune
    expect(page.locator("dialog[open]")).to_contain_text("Tỷ lệ giải quyết đúng hạn")
    page.keyboard.press("Escape")
    expect(page.locator("dialog[open]")).to_have_count(0)
    ctx.close()


def test_ack_by_one_operator_shows_in_a_second_browser(console: Console, browser: Browser,
                                                       fired: dict[str, Any]) -> None:
    a_ctx, b_ctx = context(browser), context(browser)
    a, b = a_ctx.new_page(), b_ctx.new_page()
    sign_in(a, console, "operator")
    sign_in(b, console, "operator2")
    expect(b.locator(".conn")).to_have_attribute("data-stream", "live", timeout=15_000)
    fp = fired["fingerprint"]
    for page in (a, b):
        board_alert(page, console).locator(".group-toggle").click()
    row_b = b.locator(f'[data-fp="{fp}"]')
    expect(row_b).to_have_attribute("data-state", "firing")
    a.locator(f'[data-fp="{fp}"] [data-action="ack"]').click()
    a.fill("#action-note", "Đội môi trường đang kiểm tra trạm")
    a.click('dialog [data-action="confirm"]')
    toast = a.locator(".toast").first
    expect(toast).to_contain_text(" · acknowledge · ")  # the audit entry of the action
    expect(toast).to_contain_text("truc-ban-a")
    expect(row_b).to_have_attribute("data-state", "acknowledged", timeout=10_000)
    expect(row_b).to_contain_text("truc-ban-a")
    # the detail shows the transition with its actor and note
    row_b.get_by_role("button", name="Chi tiết").click()
    dialog = b.locator("dialog[open]")
    expect(dialog.locator("table.history")).to_contain_text("Đội môi trường đang kiểm tra trạm")
    expect(dialog.locator("table.history")).to_contain_text("truc-ban-a")
    expect(dialog.locator("svg.chart")).to_be_visible()
    expect(dialog.locator('[data-testid="value-vs"]')).to_contain_text("100")
    expect(dialog.locator('[data-action="resolve"]')).to_be_visible()  # acting from the detail
    assert dialog.locator('[data-action="ack"]').count() == 0  # already acknowledged
    a_ctx.close()
    b_ctx.close()


def test_viewer_has_no_controls_and_is_refused(console: Console, browser: Browser,
                                               fired: dict[str, Any]) -> None:
    ctx = context(browser)
    page = ctx.new_page()
    sign_in(page, console, "viewer")
    group = board_alert(page, console)
    group.locator(".group-toggle").click()
    expect(group.locator(f'[data-fp="{fired["fingerprint"]}"]')).to_be_visible()
    assert page.locator("[data-action]").count() == 0
    row = group.locator(f'[data-fp="{fired["fingerprint"]}"]')
    row.get_by_role("button", name="Chi tiết").click()
    page.locator("dialog[open] table.history").wait_for()
    assert page.locator("dialog[open] [data-action]").count() == 0
    page.keyboard.press("Escape")
    status = page.evaluate(
        """async (fp) => (await fetch(`/v1/alerts/${fp}/resolve`, {method: 'POST',
             headers: {Authorization: `Bearer ${sessionStorage.getItem('ioc.console.key')}`,
                       'Content-Type': 'application/json'}, body: '{}'})).status""",
        fired["fingerprint"])
    assert status == 403
    silence = page.evaluate(
        """async () => (await fetch('/v1/silences', {method: 'POST',
             headers: {Authorization: `Bearer ${sessionStorage.getItem('ioc.console.key')}`,
                       'Content-Type': 'application/json'},
             body: JSON.stringify({matchers: ['severity="critical"'], duration: '1h'})})).status""")
    assert silence == 403
    ctx.close()


def test_map_colours_the_commune_and_drills_down(console: Console, browser: Browser,
                                                 fired: dict[str, Any], out_dir: Path) -> None:
    ctx = context(browser)
    page = ctx.new_page()
    sign_in(page, console, "operator", "?view=map")
    path = page.locator(f'path[data-commune="{COMMUNE}"]')
    expect(path).to_have_attribute("data-level", "critical", timeout=15_000)
    assert path.get_attribute("fill") == "#b3001b"
    expect(page.locator("#approx-note")).to_contain_text("gần đúng")
    shot_map = save(page, out_dir, "map")
    page.locator(f'#alerting-communes [data-commune="{COMMUNE}"]').click()
    dialog = page.locator("dialog[open]")
    expect(dialog).to_contain_text("Phường Ba Đình")
    expect(dialog).to_contain_text("PM2.5 tại Phường Ba Đình là 150")
    expect(dialog.locator("table").first).to_contain_text("pm25")
    expect(dialog.locator('[data-kpi="online_share"]')).to_be_visible()
    shot_drill = save(page, out_dir, "drilldown")
    copy_to_docs([shot_map, shot_drill])
    ctx.close()


def test_filters_survive_a_reload(console: Console, browser: Browser,
                                  fired: dict[str, Any]) -> None:
    ctx = context(browser)
    page = ctx.new_page()
    sign_in(page, console, "viewer")
    page.check('input[name="severity"][value="critical"]')
    page.select_option("#f-commune", COMMUNE)
    page.check('input[name="state"][value="acknowledged"]')
    assert "severity=critical" in page.url and f"commune={COMMUNE}" in page.url
    page.reload()  # the key is still in this tab's sessionStorage
    page.wait_for_selector("header.topbar")
    expect(page.locator('input[name="severity"][value="critical"]')).to_be_checked()
    expect(page.locator('input[name="state"][value="acknowledged"]')).to_be_checked()
    expect(page.locator("#f-commune")).to_have_value(COMMUNE)
    expect(board_alert(page, console)).to_be_visible()
    page.uncheck('input[name="state"][value="acknowledged"]')
    page.check('input[name="state"][value="pending"]')
    expect(board_alert(page, console)).to_have_count(0)
    ctx.close()


def test_silence_group_with_preview_then_expire(console: Console, browser: Browser,
                                                fired: dict[str, Any]) -> None:
    ctx = context(browser)
    page = ctx.new_page()
    sign_in(page, console, "operator")
    board_alert(page, console).locator('[data-action="silence-group"]').click()
    dialog = page.locator("dialog[open]")
    expect(dialog.locator("[data-preview-count]")).to_have_attribute("data-preview-count", "1")
    page.fill("#silence-comment", "bảo trì trạm quan trắc")
    dialog.locator('[data-action="confirm"]').click()
    expect(page.locator(".toast").first).to_contain_text("silence.create")
    row = page.locator(".silences [data-silence]")
    expect(row).to_have_count(1)
    expect(row).to_contain_text("bảo trì trạm quan trắc")
    row.locator('[data-action="expire"]').click()
    expect(page.locator(".toast", has_text="silence.expire")).to_be_visible()
    expect(page.locator(".silences [data-silence]")).to_have_count(0, timeout=10_000)
    ctx.close()


def test_department_key_sees_only_its_own_feeds_and_rejections(
        console: Console, browser: Browser, fired: dict[str, Any], out_dir: Path) -> None:
    bad = envelope("sensor", f"bad-{uuid.uuid4().hex[:8]}", "aq-console-01",
                   datetime.now(UTC), {"metric": "pm25", "value": 10, "unit": "furlongs"},
                   commune_code=COMMUNE, department="env")
    console.pipe.produce("sensor", [(b"aq-console-01", json.dumps([bad]).encode())])
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        feeds = console.get("/v1/console/feeds", "env")
        if feeds["departments"][0]["rejections"]:
            break
        time.sleep(2)
    assert [d["code"] for d in feeds["departments"]] == ["env"]
    env = feeds["departments"][0]
    assert env["rejections"].get("unknown_unit", 0) >= 1, feeds
    assert env["dead_letters"][0]["event_id"] == bad["event_id"]
    others = console.get("/v1/console/feeds", "transport")
    assert [d["code"] for d in others["departments"]] == ["transport"]
    assert not others["departments"][0]["dead_letters"]
    r = httpx.get(console.url + "/v1/console/board", timeout=10,
                  headers={"Authorization": f"Bearer {console.keys['env']}"})
    assert r.status_code == 403

    ctx = context(browser)
    page = ctx.new_page()
    sign_in(page, console, "env")
    expect(page.locator('[data-department="env"]')).to_be_visible()
    assert page.locator('[data-department="transport"]').count() == 0
    expect(page.locator('[data-reason="unknown_unit"]')).to_be_visible()
    expect(page.locator("table.deadletters")).to_contain_text(bad["event_id"])
    copy_to_docs([save(page, out_dir, "feeds-department")])
    ctx.close()


def test_english_toggle_wall_mode_and_keyboard(console: Console, browser: Browser,
                                               fired: dict[str, Any], out_dir: Path) -> None:
    ctx = context(browser, width=3840, height=2160)
    page = ctx.new_page()
    sign_in(page, console, "viewer", "?wall=1")
    assert page.evaluate("document.body.classList.contains('wall')")
    assert page.evaluate("getComputedStyle(document.body).fontSize") == "32px"
    page.keyboard.press("l")
    expect(page.locator("html")).to_have_attribute("lang", "en")
    expect(page.locator(".tabs")).to_contain_text("Alerts")
    assert "lang=en" in page.url
    page.keyboard.press("j")
    focused = page.evaluate("document.activeElement.className")
    assert focused == "group-toggle"
    page.keyboard.press("Enter")
    expect(page.locator(".group-toggle").first).to_have_attribute("aria-expanded", "true")
    page.keyboard.press("2")
    expect(page.locator("#map")).to_be_visible()
    copy_to_docs([save(page, out_dir, "wall-4k")])
    ctx.close()


def test_no_serious_accessibility_violations(console: Console, browser: Browser,
                                             fired: dict[str, Any]) -> None:
    ctx = context(browser, bypass_csp=True)  # axe-core is injected by the test
    page = ctx.new_page()
    sign_in(page, console, "operator")
    board_alert(page, console).locator(".group-toggle").click()
    found: dict[str, list[dict[str, Any]]] = {"board": axe_serious(page)}
    page.locator(f'[data-fp="{fired["fingerprint"]}"]').get_by_role("button").first.click()
    page.locator("dialog[open] table.history").wait_for()
    found["detail"] = axe_serious(page)
    page.keyboard.press("Escape")
    page.keyboard.press("2")
    page.locator(f'path[data-commune="{COMMUNE}"]').wait_for()
    found["map"] = axe_serious(page)
    page.keyboard.press("3")
    page.locator(".depts").wait_for()
    found["health"] = axe_serious(page)
    ctx.close()
    assert not any(found.values()), json.dumps(found, ensure_ascii=False, indent=1)
