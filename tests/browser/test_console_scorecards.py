"""The console's scorecards view in a real browser against a real API and database: the
communes of a province ranked on a KPI against their targets (last month, the view's
default), a report made from the page by an operator and its XLSX downloaded through
the key-carrying fetch (the key never in a link), opened with openpyxl."""

from __future__ import annotations

import io
import os
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path

import psycopg
import pytest
from iocdev.sandbox import fresh_database
from openpyxl import load_workbook
from playwright.sync_api import Browser, expect

from geo.reference import SOURCE, read_reference
from geo.store import write_units
from ioccore.kpis import VN_TZ
from ioccore.settings import Settings
from tests.browser.conftest import ApiProcess, _key, context, sign_in

pytestmark = [pytest.mark.integration, pytest.mark.slow]


@dataclass
class Site:
    api: ApiProcess
    keys: dict[str, str]
    best: str      # the commune ranked first
    month: date

    @property
    def url(self) -> str:
        return self.api.url


@pytest.fixture(scope="module")
def site(stack: Settings, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    tmp = tmp_path_factory.mktemp("console-scorecards")
    first = datetime.now(VN_TZ).date().replace(day=1)
    month = (first - timedelta(days=1)).replace(day=1)  # last month, Vietnam time
    with fresh_database(stack, "ioc_console_sc") as (name, conninfo):
        with psycopg.connect(conninfo) as conn:
            write_units(conn, read_reference(stack.resolve(stack.geo.reference)).units,
                        source=SOURCE, valid_from=date(2025, 7, 1))
            a, b = [r[0] for r in conn.execute(
                "SELECT commune_code FROM current_communes WHERE province_code = '01'"
                " ORDER BY commune_code LIMIT 2").fetchall()]
            for commune, received, online in ((a, 10, 5), (b, 4, 4)):
                conn.execute("INSERT INTO kpi_counts_daily (day, agency, province_code, "
                             "commune_code, received, received_online) VALUES "
                             "(%s, %s, '01', %s, %s, %s)",
                             (month + timedelta(days=3), f"ubnd-{commune}", commune,
                              received, online))
            conn.commit()
        keys = {"operator": _key(conninfo, stack, "operator", "lanh-dao-so")}
        api = ApiProcess({**os.environ, "IOC__DATABASE__DBNAME": name}, tmp / "api.log")
        try:
            api.start()
            yield Site(api, keys, b, month)
        finally:
            api.stop()


def test_scorecard_ranks_and_report_download(site: Site, browser: Browser,
                                             tmp_path: Path) -> None:
    ctx = context(browser)
    page = ctx.new_page()
    sign_in(page, site, "operator", "?view=scorecards&province=01")
    rows = page.locator("table.scorecard tbody tr")
    expect(rows.first).to_have_attribute("data-unit", site.best, timeout=15000)
    expect(rows.first.locator("td").first).to_have_text("1")
    page.get_by_role("button", name="Lập báo cáo ngay").click()
    item = page.locator("ul.reports li").first
    expect(item).to_contain_text(site.month.isoformat(), timeout=15000)
    with page.expect_download() as dl:
        item.get_by_role("button", name="XLSX").click()
    path = tmp_path / "r.xlsx"
    dl.value.save_as(path)
    assert dl.value.url.startswith("blob:")  # fetched with the header, not a keyed link
    wb = load_workbook(io.BytesIO(path.read_bytes()), read_only=True)
    head = {r[0]: r[1] for r in wb["Report"].iter_rows(values_only=True)}
    assert (head["scope"], head["period_from"]) == ("01", site.month.isoformat())
    ctx.close()
