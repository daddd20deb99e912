"""The console's citizen reports in a real browser against a real API and database, with
reports from the simulator (``ioc simulate-reports``) and two more through the store's
write path: an operator sees every department's reports, the overdue filter, the map's
points and the response KPIs (in the reports view and beside the public-service KPIs); a
department user sees only the reports routed to it, on the list and on the map, and the
reporter's contact of its own report. A commune name holding markup stays text."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import httpx
import psycopg
import pytest
from iocdev.sandbox import fresh_database
from playwright.sync_api import Browser, expect

from geo.reference import SOURCE, read_reference
from geo.store import write_units
from ioc.api.auth import ensure_department
from ioccore.feedback import catalogue, store
from ioccore.feedback.contract import FeedbackReportV1, FeedbackStatusV1
from ioccore.settings import Settings
from tests.browser.conftest import (
    ApiProcess,
    _key,
    axe_serious,
    context,
    copy_to_docs,
    in_thread,
    save,
    sign_in,
)

pytestmark = [pytest.mark.integration, pytest.mark.slow]

IOC = str(Path(sys.executable).with_name("ioc"))
EMAIL = "lan.nguyen@example.vn"
MARKUP = '<img id="injected" src=x>Phường Thử'


@dataclass
class Site:
    api: ApiProcess
    keys: dict[str, str]
    overdue: str   # a construction report, overdue, with the reporter's contact
    env: str       # an env report in the commune whose name holds markup
    commune: str

    @property
    def url(self) -> str:
        return self.api.url

    def ids(self, role: str, **params: str) -> list[str]:
        """The report ids the API gives ``role``'s key (every page)."""
        out: list[str] = []
        after: str | None = None
        while True:
            q = {"limit": "200", **params} | ({"after": after} if after else {})
            r = httpx.get(f"{self.url}/v1/feedback/console/reports", params=q, timeout=30,
                          headers={"Authorization": f"Bearer {self.keys[role]}"})
            r.raise_for_status()
            out += [x["report_id"] for x in r.json()["reports"]]
            after = r.json()["next"]
            if after is None:
                return out


def _store(conninfo: str, commune: str) -> tuple[str, str]:
    ids: list[str] = []

    async def go() -> None:
        cat = catalogue.default()
        now = datetime.now(UTC)
        async with await psycopg.AsyncConnection.connect(conninfo, autocommit=True) as conn:
            for name, code, where, contact in (
                    ("t-flood", "flooding", {"lat": 21.0287, "lon": 105.8524},
                     store.Contact(email=EMAIL)),
                    ("t-dump", "illegal_dumping", {"commune_code": commune}, store.Contact())):
                svc = cat.service(code)
                assert svc is not None
                report = FeedbackReportV1(event_id=name, source_id="test-app",
                                          occurred_at=now - timedelta(hours=6),
                                          service_code=code,
                                          description="Ngập sâu <script>x</script>", **where)
                rid, _ = await store.store_report(conn, report, svc, contact,
                                                  nearest_max_m=2000)
                await store.store_status(conn, FeedbackStatusV1(
                    event_id=f"{name}-1", source_id="desk", department=svc.department,
                    report_id=rid, occurred_at=now - timedelta(hours=5), status="assigned"))
                ids.append(rid)
    in_thread(go())
    return ids[0], ids[1]


@pytest.fixture(scope="module")
def site(stack: Settings, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    tmp = tmp_path_factory.mktemp("console-feedback")
    with fresh_database(stack, "ioc_console_fb") as (name, conninfo):
        with psycopg.connect(conninfo, autocommit=True) as conn:
            write_units(conn, read_reference(stack.resolve(stack.geo.reference)).units,
                        source=SOURCE, valid_from=date(2025, 7, 1))
            for code, label in (("construction", "Sở Xây dựng"),
                                ("env", "Sở Nông nghiệp và Môi trường"),
                                ("transport", "Sở Xây dựng (giao thông)")):
                ensure_department(conn, code, ["feedback"], label)
            row = conn.execute("SELECT commune_code FROM current_communes"
                               " WHERE province_code = '01' ORDER BY commune_code DESC"
                               " LIMIT 1").fetchone()
            assert row is not None
            commune = str(row[0])
            conn.execute("UPDATE admin_units SET name = %s WHERE code = %s AND level ="
                         " 'commune'", (MARKUP, commune))
        env = {**os.environ, "IOC__DATABASE__DBNAME": name}
        subprocess.run([IOC, "simulate-reports", "--province", "01", "--hours", "24",
                        "--rain", "10:8"], env=env, check=True, capture_output=True,
                       timeout=300)
        overdue, env_report = _store(conninfo, commune)
        keys = {"operator": _key(conninfo, stack, "operator", "truc-ban-phan-anh"),
                "construction": _key(conninfo, stack, "department", "so-xay-dung",
                                     "construction"),
                "env": _key(conninfo, stack, "department", "so-nnmt", "env")}
        api = ApiProcess(env, tmp / "api.log")
        try:
            api.start()
            yield Site(api, keys, overdue, env_report, commune)
        finally:
            api.stop()


def test_an_operator_sees_every_report_the_map_and_the_kpis(
        site: Site, browser: Browser, out_dir: Path) -> None:
    ctx = context(browser)
    page = ctx.new_page()
    sign_in(page, site, "operator", "?view=feedback&province=01")
    expect(page.locator("nav .tabs a")).to_have_count(6)
    rows = page.locator("table.reports-list tbody tr")
    expect(rows.first).to_be_visible(timeout=15_000)
    open_ids = site.ids("operator", status="open", province="01")
    expect(rows).to_have_count(min(100, len(open_ids)))  # the first page
    departments = set(rows.evaluate_all("rs => rs.map(r => r.dataset.department)"))
    assert {"construction", "env"} <= departments
    flood = page.locator(f'tr[data-report="{site.overdue}"]')
    expect(flood).to_have_attribute("data-overdue", "true")
    expect(flood).to_contain_text("Quá hạn")
    # markup in a commune name stays text, in the list and on the map
    expect(page.locator(f'tr[data-report="{site.env}"]')).to_contain_text(MARKUP)
    assert page.locator("#injected").count() == 0
    # the map: a point per open report (overdue ringed), the communes with their counts
    points = page.locator("#fb-map path[data-report]")
    expect(points.first).to_be_attached(timeout=15_000)
    assert points.count() == min(500, len(open_ids))
    expect(page.locator(f'#fb-map path[data-report="{site.overdue}"]')).to_have_attribute(
        "data-overdue", "true")
    expect(page.locator(f'#fb-communes li[data-commune="{site.commune}"]')).to_contain_text(
        MARKUP)
    page.locator(f'#fb-map path[data-report="{site.env}"]').hover()
    expect(page.locator(".report-tip")).to_contain_text(MARKUP)
    assert page.locator("#injected").count() == 0
    # the KPIs of the month
    kpis = page.locator(".fb-kpis")
    expect(kpis.locator('[data-kpi="received"] .kpi-value')).not_to_have_text("—")
    expect(kpis.locator('[data-kpi="overdue_now"] .kpi-value')).not_to_have_text("0")
    expect(kpis.locator('[data-kpi="share_resolved_in_sla"] .kpi-value')).to_contain_text("%")
    assert axe_serious(page) == []
    shots = [save(page, out_dir, "feedback-operator")]
    # overdue only: every row overdue, the count the API gives
    page.check("#fb-overdue")
    expect(page).to_have_url(re.compile(r"foverdue=1"))
    overdue_ids = site.ids("operator", status="open", overdue="true", province="01")
    expect(rows).to_have_count(min(100, len(overdue_ids)), timeout=15_000)
    assert set(rows.evaluate_all("rs => rs.map(r => r.dataset.overdue)")) == {"true"}
    # an operator has no contact button (only the report's department and admins)
    page.locator(f'tr[data-report="{site.overdue}"] button').click()
    expect(page.locator(".fb-detail")).to_contain_text("<script>x</script>")
    assert page.get_by_role("button", name="Thông tin người phản ánh").count() == 0
    page.keyboard.press("Escape")
    # the KPIs beside the public-service ones
    page.click("nav .tabs a:has-text('KPI')")
    expect(page.locator(".health .fb-kpis [data-kpi='received']")).to_be_visible(timeout=15_000)
    shots.append(save(page, out_dir, "feedback-kpis"))
    copy_to_docs(shots)
    ctx.close()


def test_a_department_sees_only_its_reports(
        site: Site, browser: Browser, out_dir: Path) -> None:
    mine = site.ids("construction", status="open")
    others = set(site.ids("operator", status="open")) - set(mine)
    assert mine and others and site.env in others
    ctx = context(browser)
    page = ctx.new_page()
    sign_in(page, site, "construction", "?view=feedback")
    tabs = page.locator("nav .tabs a")
    expect(tabs).to_have_count(2)
    expect(tabs.nth(1)).to_have_text("Phản ánh")
    rows = page.locator("table.reports-list tbody tr")
    expect(rows.first).to_be_visible(timeout=15_000)
    expect(rows).to_have_count(min(100, len(mine)))
    assert set(rows.evaluate_all("rs => rs.map(r => r.dataset.department)")) == {
        "construction"}
    assert page.locator(f'tr[data-report="{site.env}"]').count() == 0
    points = page.locator("#fb-map path[data-report]")
    expect(points.first).to_be_attached(timeout=15_000)
    shown = set(points.evaluate_all("ps => ps.map(p => p.dataset.report)"))
    assert shown == set(mine[:500]) or (len(mine) > 500 and shown <= set(mine))
    assert not shown & others
    kpis = page.locator(".fb-kpis")
    expect(kpis).to_have_attribute("data-code", "construction")
    expect(kpis.locator('[data-kpi="received"] .kpi-value')).not_to_have_text("—")
    # its own report's reporter, through the contact route
    page.locator(f'tr[data-report="{site.overdue}"] button').click()
    page.get_by_role("button", name="Thông tin người phản ánh").click()
    expect(page.locator(".fb-contact")).to_contain_text(EMAIL)
    page.keyboard.press("Escape")
    copy_to_docs([save(page, out_dir, "feedback-department")])
    # the same view in English, language toggled
    page.keyboard.press("l")
    expect(tabs.nth(1)).to_have_text("Citizen reports")
    ctx.close()
