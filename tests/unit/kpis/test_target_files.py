"""Both KPI target files (province/tier: ioccore/kpi_targets.py; unit: unit_targets.py)
are read by one reader: the same header, row limit and checks of kpi, target and dates,
so a cell that one file refuses the other refuses with the same words."""

from __future__ import annotations

import io
from datetime import date
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ioccore import kpi_targets
from ioccore.kpi_targets import TargetFileError, parse_targets, read_targets
from ioccore.kpis import KPI_IDS
from ioccore.unit_targets import parse_unit_targets, read_unit_targets

PROVINCE = "kpi,province_code,tier,target,valid_from,valid_to\n{kpi},01,province,{rest}\n"
UNIT = "kpi,level,unit_code,target,valid_from,valid_to\n{kpi},commune,00004,{rest}\n"


def _outcome(parse: object, text: str) -> tuple[str, object]:
    assert callable(parse)
    try:
        got = parse(io.StringIO(text))
    except TargetFileError as exc:
        return "error", str(exc)
    return "ok", [(t.kpi, t.target, t.valid_from, t.valid_to) for t in got]


CELLS = st.sampled_from(["0.6", "1", "0", "1.5", "-0.1", "x", "", "nan"])
DATES = st.sampled_from(["2026-01-01", "2026-02-01", "", "2026-13-01", "soon"])


@given(kpi=st.sampled_from([*KPI_IDS[:3], "nope", ""]), target=CELLS, start=DATES,
       end=DATES)
def test_the_shared_cells_are_judged_alike_in_both_files(kpi: str, target: str, start: str,
                                                         end: str) -> None:
    rest = f"{target},{start},{end}"
    a = _outcome(parse_targets, PROVINCE.format(kpi=kpi, rest=rest))
    b = _outcome(parse_unit_targets, UNIT.format(kpi=kpi, rest=rest))
    assert a == b


def test_header_bom_and_row_limit(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    p = tmp_path / "t.csv"
    p.write_text("\ufeff" + PROVINCE.format(kpi=KPI_IDS[0], rest="0.6,2026-01-01,"),
                 encoding="utf-8")
    [t] = read_targets(p)
    assert (t.province_code, t.tier, t.valid_from, t.valid_to) == (
        "01", "province", date(2026, 1, 1), None)
    with pytest.raises(TargetFileError, match=r"missing columns \['level', 'unit_code'\]"):
        read_unit_targets(p)
    with pytest.raises(TargetFileError, match="cannot read"):
        read_targets(tmp_path / "absent.csv")
    monkeypatch.setattr(kpi_targets, "MAX_ROWS", 2)
    three = "kpi,level,unit_code,target,valid_from\n" + "".join(
        f"{KPI_IDS[0]},commune,0000{i},0.5,2026-01-01\n" for i in range(3))
    with pytest.raises(TargetFileError, match="line 4: more than 2 rows"):
        parse_unit_targets(io.StringIO(three))
    assert len(parse_unit_targets(io.StringIO(three.rsplit("\n", 2)[0] + "\n"))) == 2


def test_each_file_keeps_its_own_keys() -> None:
    with pytest.raises(TargetFileError, match="province_code '1'"):
        parse_targets(io.StringIO(PROVINCE.replace(",01,", ",1,").format(
            kpi=KPI_IDS[0], rest="0.5,2026-01-01,")))
    with pytest.raises(TargetFileError, match="tier 'district'"):
        parse_targets(io.StringIO(PROVINCE.replace("province,{rest}", "district,{rest}").format(
            kpi=KPI_IDS[0], rest="0.5,2026-01-01,")))
    # empty province and tier mean any
    [t] = parse_targets(io.StringIO(PROVINCE.replace(",01,province,", ",,,").format(
        kpi=KPI_IDS[0], rest="0.5,2026-01-01,")))
    assert (t.province_code, t.tier) == ("*", "*")
