"""`ioc sources area` binds a department, or some of its sources, to an area and unbinds
it; bad codes change nothing (issue 24, finding 5)."""

from __future__ import annotations

import psycopg
import pytest
from iocdev.sandbox import fresh_database
from typer.testing import CliRunner

from ioc.api.auth import ensure_department
from ioc.cli.sources import app
from ioccore.settings import Settings, get_settings
from ioccore.source_registry import register


def test_area_binds_and_unbinds(stack: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    with fresh_database(stack, "ioc_area") as (name, conninfo):
        with psycopg.connect(conninfo, autocommit=True) as conn:
            ensure_department(conn, "water", ["sensor"], "Thuỷ lợi")
            register(conn, "water", "sensor", ["gauge-1", "gauge-2"], actor="test")
        monkeypatch.setenv("IOC__DATABASE__DBNAME", name)
        get_settings.cache_clear()
        try:
            run = CliRunner().invoke
            assert run(app, ["area", "--department", "water", "01"]).exit_code == 0
            assert run(app, ["area", "--department", "water", "--source", "gauge-1",
                             "00004", "00007"]).exit_code == 0
            bad = run(app, ["area", "--department", "water", "1; DROP"])
            assert bad.exit_code == 2
            assert run(app, ["area", "--department", "nobody", "01"]).exit_code == 1
            with psycopg.connect(conninfo) as conn:
                dept = conn.execute("SELECT area FROM departments WHERE code = 'water'"
                                    ).fetchone()
                src: dict[str, list[str] | None] = dict(
                    conn.execute("SELECT source_id, area FROM sources").fetchall())
            assert dept == (["01"],)
            assert src == {"gauge-1": ["00004", "00007"], "gauge-2": None}
            assert run(app, ["area", "--department", "water", "--clear"]).exit_code == 0
            with psycopg.connect(conninfo) as conn:
                assert conn.execute("SELECT area FROM departments WHERE code = 'water'"
                                    ).fetchone() == (None,)
        finally:
            get_settings.cache_clear()
