"""Areas of sources (issue 24, finding 5): which codes an area takes, which readings it
holds. The stage-1 and gateway checks are proven on the real broker and database
(tests/integration/security/test_refusals.py, test_api_review.py)."""

from __future__ import annotations

import pytest

from ioccore.events.reasons import Reason
from ioccore.events.record import UNASSIGNED
from ioccore.source_registry import Area


def test_an_area_takes_province_and_commune_codes_only() -> None:
    area = Area.of(["01", "00004", " 00007 "])
    assert area.provinces == {"01"} and area.communes == {"00004", "00007"}
    assert area.codes() == ["00004", "00007", "01"]
    for bad in (["1"], ["0004"], ["abcde"], [], ["01;DROP"]):
        with pytest.raises(ValueError):
            Area.of(bad)


def test_readings_inside_pass_and_outside_are_refused() -> None:
    area = Area.of(["00004", "79"])
    assert area.refusal("s", "00004", "01") is None
    assert area.refusal("s", "26734", "79") is None  # inside the listed province
    outside = area.refusal("s", "00008", "01")
    assert outside is not None and outside.reason == Reason.OUT_OF_AREA
    unknown = area.refusal("s", UNASSIGNED, UNASSIGNED)
    assert unknown is not None and unknown.reason == Reason.OUT_OF_AREA
