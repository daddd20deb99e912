"""Fixtures of the API integration tests: a migrated database per module with departments."""

from __future__ import annotations

from collections.abc import Iterator

import psycopg
import pytest
from iocdev.sandbox import fresh_database

from ioc.api.auth import ensure_department
from ioccore.settings import Settings
from tests.integration.api.apihelpers import ApiDb


@pytest.fixture(scope="module")
def api_db(stack: Settings, pg_conninfo: str) -> Iterator[ApiDb]:
    """A uniquely named, migrated database with departments ``env`` (sensor),
    ``transport`` (traffic) and ``pscc`` (service); dropped afterwards."""
    with fresh_database(stack, "ioc_api") as (name, conninfo):
        with psycopg.connect(conninfo, autocommit=True) as conn:
            ensure_department(conn, "env", ["sensor"], "Sở Tài nguyên và Môi trường")
            ensure_department(conn, "transport", ["traffic"], "Sở Giao thông")
            ensure_department(conn, "pscc", ["service"], "Trung tâm Phục vụ hành chính công")
        # no worker consumes these tests' topics: admission control would see their lag
        # grow without end and refuse ingest (test_api_backpressure.py tests it)
        api = stack.api.model_copy(update={"backpressure": stack.api.backpressure.model_copy(
            update={"enabled": False})})
        settings = stack.model_copy(update={
            "api": api,
            "database": stack.database.model_copy(update={"dbname": name, "pool_max": 4})})
        yield ApiDb(name, conninfo, settings)


