"""Fixtures of the citizen-report tests: a migrated database with communes and the
departments of config/feedback.yaml, and ``ioc api`` as a real process on it."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import psycopg
import pytest
from iocdev.sandbox import fresh_database

from geo.reference import read_reference
from geo.store import write_units
from ioc.api.auth import create_key, ensure_department, settings_pepper
from ioccore.settings import Settings

IOC = str(Path(sys.executable).with_name("ioc"))
DEPARTMENTS = {"citizen-app": "Ứng dụng công dân", "construction": "Sở Xây dựng",
               "env": "Sở Nông nghiệp và Môi trường", "transport": "Sở Xây dựng (giao thông)"}


@dataclass(frozen=True)
class FeedbackDb:
    name: str
    conninfo: str
    settings: Settings

    def key(self, role: str, department: str | None = None) -> str:
        with psycopg.connect(self.conninfo, autocommit=True) as conn:
            _, key = create_key(conn, role=role,  # type: ignore[arg-type]
                                department=department,
                                name=f"{role}-{department}-{uuid.uuid4().hex[:6]}",
                                pepper=settings_pepper(self.settings.api))
        return key


@pytest.fixture(scope="module")
def feedback_db(stack: Settings) -> Iterator[FeedbackDb]:
    with fresh_database(stack, "ioc_fb") as (name, conninfo):
        units = read_reference(stack.resolve(stack.geo.reference)).units
        with psycopg.connect(conninfo, autocommit=True) as conn:
            write_units(conn, units, source="bundled", valid_from=date(2025, 7, 1))
            for code, label in DEPARTMENTS.items():
                ensure_department(conn, code, ["feedback"], label)
            ensure_department(conn, "pscc", ["service"], "Trung tâm Phục vụ hành chính công")
        settings = stack.model_copy(update={
            "database": stack.database.model_copy(update={"dbname": name})})
        yield FeedbackDb(name, conninfo, settings)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def api_url(feedback_db: FeedbackDb, tmp_path_factory: pytest.TempPathFactory
            ) -> Iterator[str]:
    """``ioc api`` as a process on the test database: its base URL (its log in the
    test's temporary folder, printed when the test fails)."""
    port = _free_port()
    log_path = tmp_path_factory.mktemp("api") / "api.log"
    log = log_path.open("wb")
    env = dict(os.environ, IOC__DATABASE__DBNAME=feedback_db.name,
               IOC__API__BACKPRESSURE__ENABLED="false")
    proc = subprocess.Popen([IOC, "api", "--port", str(port), "--log-level", "warning"],
                            env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
                break
            except OSError:
                assert proc.poll() is None, log_path.read_text()
                time.sleep(0.2)
        else:
            raise AssertionError("ioc api did not listen within 60 s")
        yield f"http://127.0.0.1:{port}"
    finally:
        proc.terminate()
        proc.wait(15)
        log.close()
        sys.stderr.write(log_path.read_text(errors="replace")[-4000:])
