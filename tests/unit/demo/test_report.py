"""The report on small synthetic data: images inline, approximate note, PNG written."""

from __future__ import annotations

import base64
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

from iocdev.demo.queries import AlertRow, CommuneKpi, TrafficHour
from iocdev.demo.report import (
    APPROXIMATE_NOTE,
    CommuneShape,
    Named,
    ReportData,
    build_report,
)
from shapely.geometry import box

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
T0 = datetime(2026, 1, 5, 1, 0, tzinfo=UTC)


def _data(*, approximate: bool = True, empty: bool = False) -> ReportData:
    shapes = [CommuneShape(f"0000{i}", f"Phường {i}",
                           box(105.8 + 0.01 * i, 21.0, 105.81 + 0.01 * i, 21.01), approximate)
              for i in range(4)]
    minutes = [T0 + timedelta(minutes=m) for m in range(30)]
    data = ReportData(province="01", province_name="Thành phố Hà Nội", sim_start=T0,
                      sim_end=T0 + timedelta(minutes=30), generated_at=T0,
                      facts={"raw rows stored": "sensor 10, traffic 5, service 2"},
                      shapes=shapes)
    if empty:
        return data
    data.alerts = [
        AlertRow("00000", "Phường 0", "pm25_1h", "warning", "firing", 61.0),
        AlertRow("00000", "Phường 0", "water_level_3", "critical", "firing", 5.2),
        AlertRow("00001", "Phường 1", "pm25_24h", "info", "pending", None),
        AlertRow(None, None, "pm25_province", "warning", "firing", 56.0),
    ]
    data.pm25_average = [(t, 40.0 + i % 7) for i, t in enumerate(minutes)]
    data.pm25_worst = [Named("Phường 0 (00000)", [(t, 60.0 + i % 5)
                                                  for i, t in enumerate(minutes)])]
    data.water_average = [(t, 1.0 + 0.01 * i) for i, t in enumerate(minutes)]
    data.water_worst = [Named("Phường 2 (00002)", [(t, 4.0 + 0.05 * i)
                                                   for i, t in enumerate(minutes)])]
    data.traffic = [TrafficHour(datetime(2026, 1, 5, 8), 1200.0, 31.5, 2.0),
                    TrafficHour(datetime(2026, 1, 5, 9), 900.0, 38.0, 0.0)]
    data.kpis = [CommuneKpi(s.code, s.name, 10, {
        "online_share": 0.9 - 0.2 * i, "on_time_share": 0.97, "paid_online_share": None,
        "digitised_share": 1.0}) for i, s in enumerate(shapes)]
    data.kpi_targets = {"online_share": 0.8, "on_time_share": 0.95,
                        "paid_online_share": 0.8, "digitised_share": 1.0}
    data.province_kpis = {"online_share": 0.6, "on_time_share": 0.97,
                          "paid_online_share": None, "digitised_share": 1.0}
    data.tier_kpis = {
        "commune": {"online_share": 0.9939, "on_time_share": 0.95, "paid_online_share": None,
                    "digitised_share": 1.0},
        "province": {"online_share": 0.6048, "on_time_share": 0.93, "paid_online_share": 0.8,
                     "digitised_share": 0.9}}
    return data


def test_worst_severity_per_commune() -> None:
    assert _data().worst_severity() == {"00000": "critical", "00001": "info"}


def test_report_is_self_contained_with_images_and_approximate_note(tmp_path: Path) -> None:
    files = build_report(_data(), tmp_path / "out")
    page = files.html.read_text(encoding="utf-8")
    images = re.findall(r'src="data:image/png;base64,([A-Za-z0-9+/=]+)"', page)
    assert len(images) == 5  # map, PM2.5, water level, traffic, KPIs
    assert all(base64.b64decode(img).startswith(PNG_MAGIC) for img in images)
    assert APPROXIMATE_NOTE in page
    assert "Thành phố Hà Nội" in page
    assert "water_level_3" in page and "critical" in page
    assert "60.0%" in page  # province online share
    assert "tier gap (commune − province)" in page and "+38.9 pts" in page
    assert "http://" not in page and "https://" not in page  # no CDN, no remote asset
    assert "<script" not in page
    assert files.map_png.read_bytes().startswith(PNG_MAGIC)
    assert files.map_png.stat().st_size > 5_000


def test_official_boundaries_carry_no_approximate_note(tmp_path: Path) -> None:
    page = build_report(_data(approximate=False), tmp_path).html.read_text(encoding="utf-8")
    assert APPROXIMATE_NOTE not in page


def test_report_without_data_still_renders(tmp_path: Path) -> None:
    data = _data(empty=True)
    data.problems = ["api: exited with code 1"]
    files = build_report(data, tmp_path)
    page = files.html.read_text(encoding="utf-8")
    assert "No alert is active." in page
    assert "Failed: api: exited with code 1" in page
    assert len(re.findall(r"data:image/png;base64,", page)) == 5
    assert files.map_png.exists()
