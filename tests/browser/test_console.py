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


def test_action_dialog_names_the_commune(console: Console, browser: Browser,
                                         fired: dict[str, Any]) -> None:
    ctx = context(browser)
    page = ctx.new_page()
    sign_in(page, console, "operator")
    expect(page.locator(".kpi-card").first).to_be_visible(timeout=15_000)  # names loaded
    board_alert(page, console).locator('[data-action="ack-group"]').click()
    item = page.locator(f'dialog[open] .action-alerts [data-fp="{fired["fingerprint"]}"]')
    expect(item).to_have_text(f"{console.rule_id} · Phường Ba Đình")
    page.locator("dialog[open]").get_by_role("button", name="Hủy").click()
    expect(page.locator("dialog[open]")).to_have_count(0)
    ctx.close()


def test_every_kpi_card_drills_down(console: Console, browser: Browser,
                                    fired: dict[str, Any]) -> None:
    ctx = context(browser)
    page = ctx.new_page()
    sign_in(page, console, "viewer")
    cards = page.locator(".kpi-strip .kpi-card")
    expect(cards).to_have_count(6, timeout=15_000)
    kpis = [cards.nth(i).get_attribute("data-kpi") for i in range(6)]
    assert kpis[0] == "dossiers_received", kpis
    titles = {"dossiers_received": "Hồ sơ tiếp nhận", "online_share": "Tỷ lệ hồ sơ trực tuyến"}
    for i, kpi in enumerate(kpis):
        card = cards.nth(i)
        assert card.evaluate("e => e.tagName") == "BUTTON", kpi
        card.click()
        dialog = page.locator("dialog[open]")
        expect(dialog.locator(f'.kpi-drill-body[data-kpi="{kpi}"]')).to_be_attached()
        if kpi in titles:
            expect(dialog.locator("h2")).to_contain_text(titles[kpi])
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


LONG_ID = "aq-console-01-" + "9f3b2c7d" * 8  # 77 characters, no place to break


@pytest.fixture(scope="module")
def dead_letters(console: Console, fired: dict[str, Any]) -> dict[str, Any]:
    """Two refused events of the env department: a unit nobody knows, and one with an
    event id long enough to widen a table that does not wrap it."""
    now = datetime.now(UTC)
    bad = envelope("sensor", f"bad-{uuid.uuid4().hex[:8]}", "aq-console-01", now,
                   {"metric": "pm25", "value": 10, "unit": "furlongs"},
                   commune_code=COMMUNE, department="env")
    long = envelope("sensor", LONG_ID, "aq-console-01", now,
                    {"metric": "pm25", "value": 10, "unit": "furlongs-per-fortnight" * 4},
                    commune_code=COMMUNE, department="env")
    console.pipe.produce("sensor", [(b"aq-console-01", json.dumps([bad]).encode()),
                                    (b"aq-console-01", json.dumps([long]).encode())])
    deadline = time.monotonic() + 60
    ids: set[str] = set()
    while time.monotonic() < deadline:
        feeds = console.get("/v1/console/feeds", "env")
        ids = {d["event_id"] for d in feeds["departments"][0]["dead_letters"]}
        if {bad["event_id"], LONG_ID} <= ids:
            break
        time.sleep(2)
    assert {bad["event_id"], LONG_ID} <= ids, feeds
    return {"bad": bad, "feeds": feeds}


def test_department_key_sees_only_its_own_feeds_and_rejections(
        console: Console, browser: Browser, dead_letters: dict[str, Any], out_dir: Path) -> None:
    bad, feeds = dead_letters["bad"], dead_letters["feeds"]
    assert [d["code"] for d in feeds["departments"]] == ["env"]
    env = feeds["departments"][0]
    assert env["rejections"].get("unknown_unit", 0) >= 1, feeds
    assert bad["event_id"] in {d["event_id"] for d in env["dead_letters"]}
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


OVERFLOW_JS = """() => [...document.querySelectorAll('.dept')].map((card) => {
  const box = card.getBoundingClientRect();
  const worst = [...card.querySelectorAll('table, td, th, pre')].reduce((m, el) => {
    const r = el.getBoundingClientRect();
    return Math.max(m, r.right - box.right, box.left - r.left);
  }, -Infinity);
  return {dept: card.dataset.department, width: box.width, worst,
          scroll: card.scrollWidth - card.clientWidth,
          page: document.documentElement.scrollWidth - document.documentElement.clientWidth};
})"""


@pytest.mark.parametrize(("width", "height"), [(1920, 1080), (390, 844)])
def test_dead_letter_tables_fit_their_cards(console: Console, browser: Browser,
                                            dead_letters: dict[str, Any], out_dir: Path,
                                            width: int, height: int) -> None:
    """Every table of every department card stays inside the card (measured boxes, raw
    events opened) at 1920 px and on a phone; the page never scrolls sideways."""
    ctx = context(browser, width=width, height=height)
    page = ctx.new_page()
    sign_in(page, console, "operator", "?view=health")
    table = page.locator('[data-department="env"] table.deadletters')
    expect(table).to_contain_text(LONG_ID[:20], timeout=15_000)
    # the sources table and every raw event, open (set, not clicked: an overflowing card
    # lies under its neighbour, which would take the click)
    page.evaluate("document.querySelectorAll('.dept details').forEach((d) => { d.open = true; })")
    boxes = page.evaluate(OVERFLOW_JS)
    assert len(boxes) >= 2, boxes
    for b in boxes:
        assert b["worst"] <= 0.5 and b["scroll"] <= 0, b
        assert b["page"] <= 0, b
    shot = save(page, out_dir, f"feeds-{width}", full_page=width < 1000)
    if width == 1920:
        copy_to_docs([shot])
    ctx.close()


@pytest.mark.parametrize(("width", "height"), [(1920, 1080), (390, 844)])
def test_board_and_map_never_scroll_sideways(console: Console, browser: Browser,
                                             fired: dict[str, Any], out_dir: Path,
                                             width: int, height: int) -> None:
    ctx = context(browser, width=width, height=height)
    page = ctx.new_page()
    sign_in(page, console, "operator")
    board_alert(page, console).locator(".group-toggle").click()
    expect(page.locator(f'[data-fp="{fired["fingerprint"]}"]')).to_be_visible()
    sideways = "document.documentElement.scrollWidth - document.documentElement.clientWidth"
    assert page.evaluate(sideways) <= 0
    save(page, out_dir, f"board-{width}", full_page=width < 1000)
    page.keyboard.press("2")
    expect(page.locator(f'path[data-commune="{COMMUNE}"]')).to_have_attribute(
        "data-level", "critical", timeout=15_000)
    assert page.evaluate(sideways) <= 0
    save(page, out_dir, f"map-{width}", full_page=width < 1000)
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
