"""The console's frame in a real browser against a real API and database (no worker):
one sign-out path that runs once whatever triggers it, the icon, and commune names that
hold markup shown as text on the map (issue 24, finding 9).
"""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest
from iocdev.sandbox import fresh_database
from playwright.sync_api import Browser, Page, Request, expect

from geo.reference import SOURCE, read_reference
from geo.store import write_units
from ioc.api.auth import key_prefix, revoke_key
from ioccore.settings import Settings
from tests.browser.conftest import ApiProcess, _key, context, firing, persist, save, sign_in

pytestmark = [pytest.mark.integration, pytest.mark.slow]

HOSTILE_CODE = "00008"  # Phường Ngọc Hà, Hà Nội, renamed below
HOSTILE = 'Phường <img src=x onerror="window.__xss=1"><b>Đậm</b>'


@dataclass
class Site:
    api: ApiProcess
    keys: dict[str, str]
    conninfo: str

    @property
    def url(self) -> str:
        return self.api.url


@pytest.fixture(scope="module")
def site(stack: Settings, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    """API + fresh database with the communes loaded, one of them named with markup."""
    tmp = tmp_path_factory.mktemp("console-session")
    with fresh_database(stack, "ioc_console_session") as (name, conninfo):
        units = read_reference(stack.resolve(stack.geo.reference)).units.copy()
        assert (units["code"] == HOSTILE_CODE).sum() == 1
        units.loc[units["code"] == HOSTILE_CODE, "name"] = HOSTILE
        with psycopg.connect(conninfo) as conn:
            write_units(conn, units, source=SOURCE, valid_from=date(2025, 7, 1))
        keys = {"operator": _key(conninfo, stack, "operator", "truc-ban-ca-1"),
                "doomed": _key(conninfo, stack, "operator", "truc-ban-bi-thu-hoi")}
        api = ApiProcess({**os.environ, "IOC__DATABASE__DBNAME": name}, tmp / "api.log")
        try:
            api.start()
            yield Site(api, keys, conninfo)
        finally:
            api.stop()


def api_requests(page: Page) -> list[str]:
    """URLs of the API calls the page makes from now on."""
    seen: list[str] = []

    def on_request(request: Request) -> None:
        if "/v1/" in request.url:
            seen.append(request.url)
    page.on("request", on_request)
    return seen


def figures(page: Page) -> dict[str, Any]:
    return page.evaluate("window.__iocConsole || {}")  # type: ignore[no-any-return]


def test_favicon_is_served_and_the_page_loads_without_a_failed_request(
        site: Site, browser: Browser) -> None:
    r = httpx.get(site.url + "/favicon.ico", timeout=10)
    assert r.status_code == 200
    assert r.headers["content-type"] == "image/x-icon"
    assert r.content[:4] == b"\x00\x00\x01\x00"  # an ICO file
    assert httpx.get(site.url + "/console/favicon.ico", timeout=10).status_code == 200
    ctx = context(browser)
    page = ctx.new_page()
    failed: list[str] = []
    page.on("response", lambda resp: failed.append(f"{resp.status} {resp.url}")
            if resp.status >= 400 else None)
    sign_in(page, site, "operator")
    expect(page.locator(".conn")).to_have_attribute("data-stream", "live", timeout=15_000)
    icon = page.evaluate("document.querySelector('link[rel=icon]').href")
    assert icon.endswith("/console/favicon.ico")
    assert page.evaluate(
        "async (u) => (await fetch(u)).status", icon) == 200
    ctx.close()
    assert not failed, failed


def test_sign_out_stops_everything_and_a_second_sign_in_runs_one_session(
        site: Site, browser: Browser, out_dir: Path) -> None:
    ctx = context(browser)
    page = ctx.new_page()
    sign_in(page, site, "operator")
    expect(page.locator(".conn")).to_have_attribute("data-stream", "live", timeout=15_000)
    timers = figures(page)["timers"]
    assert timers == 4  # silences, fresh highlights, KPIs, incidents
    calls = api_requests(page)
    page.click("#signout")
    expect(page.locator("#key")).to_be_visible()
    assert page.evaluate("sessionStorage.getItem('ioc.console.key')") is None
    after = figures(page)
    assert (after["signouts"], after["timers"], after["signedIn"]) == (1, 0, False)
    assert page.locator("header.topbar").count() == 0
    calls.clear()
    time.sleep(3)  # the stream reconnects every 2 s when it was only broken, not stopped
    assert calls == [], calls
    # Signing in again in the same tab runs one session, not two
    page.fill("#key", site.keys["operator"])
    page.click("form button[type=submit]")
    expect(page.locator(".conn")).to_have_attribute("data-stream", "live", timeout=15_000)
    assert figures(page)["timers"] == timers
    ctx.close()


def test_a_revoked_key_signs_out_once(site: Site, browser: Browser) -> None:
    ctx = context(browser)
    page = ctx.new_page()
    sign_in(page, site, "doomed")
    expect(page.locator(".conn")).to_have_attribute("data-stream", "live", timeout=15_000)
    prefix = key_prefix(site.keys["doomed"])
    assert prefix
    with psycopg.connect(site.conninfo, autocommit=True) as conn:
        assert revoke_key(conn, prefix, actor="test")
    time.sleep(6)  # the API's key cache (5 s)
    page.keyboard.press("3")  # feeds and KPIs: two calls answered 401, one sign-out
    expect(page.locator("#key")).to_be_visible(timeout=10_000)
    expect(page.locator(".signin .error")).to_contain_text("thu hồi")
    time.sleep(1)
    after = figures(page)
    assert (after["signouts"], after["timers"]) == (1, 0), after
    ctx.close()


def test_a_401_behind_an_open_dialog_signs_out_and_closes_it(site: Site, browser: Browser) -> None:
    ctx = context(browser)
    page = ctx.new_page()
    sign_in(page, site, "operator")
    page.locator(".kpi-card").first.click()
    expect(page.locator("dialog[open]")).to_have_count(1)
    # what api.js does on any 401: the stream or a request finding the key revoked
    page.evaluate("document.dispatchEvent(new Event('ioc-unauthorized'))")
    expect(page.locator("#key")).to_be_visible()
    expect(page.locator("dialog[open]")).to_have_count(0)
    assert figures(page)["signouts"] == 1
    ctx.close()


def test_commune_name_with_markup_is_shown_as_text_on_the_map(
        site: Site, browser: Browser, out_dir: Path) -> None:
    # Without the page's CSP (which would block an inline handler anyway): the console's
    # own code must not turn the name into markup.
    ctx = context(browser, bypass_csp=True)
    page = ctx.new_page()
    sign_in(page, site, "operator", "?view=map&province=01")
    path = page.locator(f'path[data-commune="{HOSTILE_CODE}"]')
    path.wait_for(timeout=15_000)
    path.dispatch_event("mouseover")  # this path, whatever its neighbours cover
    tip = page.locator(".leaflet-tooltip", has_text="onerror")
    expect(tip).to_be_visible()
    expect(tip).to_contain_text(HOSTILE)  # the text itself, "(gần đúng)" after it
    assert tip.locator("img, b").count() == 0
    page.wait_for_timeout(300)
    assert page.evaluate("window.__xss") is None
    assert page.locator("img[src='x']").count() == 0
    path.dispatch_event("click")  # the drill-down names it too
    expect(page.locator("dialog[open] h2")).to_contain_text("<img src=x")
    assert page.evaluate("window.__xss") is None
    save(page, out_dir, "hostile-name")
    ctx.close()


def test_action_dialog_names_a_commune_of_a_province_the_map_has_not_loaded(
        site: Site, browser: Browser) -> None:
    # Two alerts in Hà Nội (01): the map loads Hà Nội's communes; one in Huế (46).
    rule = f"flood_{uuid.uuid4().hex[:6]}"
    persist(site.conninfo, [firing(uuid.uuid4().hex[:20], rule, code, "warning")
                            for code in ("00025", "00070")]
            + [firing(uuid.uuid4().hex[:20], rule, "19753", "warning", province="46")])
    ctx = context(browser)
    page = ctx.new_page()
    sign_in(page, site, "operator", f"?rule={rule}")
    group = page.locator(f'[data-group="{rule}\u241f46"]')
    group.locator('[data-action="ack-group"]').click()
    expect(page.locator("dialog[open] .action-alerts li")).to_have_text(
        f"{rule} · Phường Phú Xuân")
    page.keyboard.press("Escape")
    ctx.close()
