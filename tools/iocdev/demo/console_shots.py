"""Screenshots of the console over a running demo (`ioc demo --keep-running`), for
docs/console.md: ``python -m iocdev.demo.console_shots URL KEY OUTDIR``.

Drives Debian's chromium through Playwright (a dev dependency) like the browser tests.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

from playwright.sync_api import Browser, Page, sync_playwright

ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run"]


def _page(browser: Browser, url: str, key: str, query: str = "", width: int = 1920,
          height: int = 1080) -> Page:
    ctx = browser.new_context(viewport={"width": width, "height": height}, locale="vi-VN",
                              timezone_id="Asia/Ho_Chi_Minh")
    page = ctx.new_page()
    page.goto(f"{url}/console/{query}")
    page.fill("#key", key)
    page.click("form button[type=submit]")
    page.wait_for_selector("header.topbar")
    return page


def shoot(url: str, key: str, out: Path) -> list[Path]:
    out.mkdir(parents=True, exist_ok=True)
    shots: list[Path] = []

    def save(page: Page, name: str) -> None:
        time.sleep(0.5)
        path = out / f"demo-{name}.png"
        page.screenshot(path=str(path))
        shots.append(path)

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=ARGS)
        page = _page(browser, url, key)
        page.wait_for_selector("section.group")
        toggles = page.locator(".group-toggle")
        toggles.nth(min(1, toggles.count() - 1)).click()
        save(page, "board")
        page.locator("li.alert button").first.click()
        page.wait_for_selector("dialog[open] table.history")
        save(page, "detail")
        page.keyboard.press("Escape")
        page.keyboard.press("2")
        page.wait_for_selector("path[data-commune]")
        time.sleep(1.5)
        save(page, "map")
        page.locator("#alerting-communes button").first.click()
        page.wait_for_selector("dialog[open] table.kpis")
        save(page, "drilldown")
        page.keyboard.press("Escape")
        page.keyboard.press("3")
        page.wait_for_selector(".depts section")
        save(page, "feeds")
        wall = _page(browser, url, key, "?wall=1", 3840, 2160)
        wall.wait_for_selector("section.group")
        save(wall, "wall-4k")
        browser.close()
    return shots


if __name__ == "__main__":
    for path in shoot(sys.argv[1], sys.argv[2], Path(sys.argv[3])):
        print(path)
