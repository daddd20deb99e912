"""The pandas-free reader gives a worker the same communes, names and legacy codes."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import shapely

from geo.bundled import communes_for_index, legacy_targets, read_units
from geo.reference import read_legacy, read_reference


def test_communes_match_the_pandas_reader() -> None:
    codes, provinces, geoms = communes_for_index()
    ref = read_reference().communes
    assert codes == ref["code"].tolist()
    assert provinces == ref["province_code"].tolist()
    assert shapely.equals_exact(np.asarray(geoms), ref["geometry"].to_numpy(), 0).all()
    names = {u.code: u.name for u in read_units()}
    assert names == dict(zip(read_reference().units["code"], read_reference().units["name"],
                             strict=True))


def test_legacy_targets_match_the_pandas_reader() -> None:
    frame = read_legacy()
    expected = {old: tuple(new.split()) for old, new in
                zip(frame["old_code"], frame["new_codes"], strict=True) if new}
    assert legacy_targets() == expected


def test_a_worker_does_not_import_pandas() -> None:
    code = ("import sys, ioc.worker, geo.index, geo.legacy, streams.alerting; "
            "print(sorted(m for m in ('pandas', 'geopandas') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True)
    assert out.stdout.strip() == "[]"
