"""Fixtures every test may use, and the markers every test gets from its directory.

Where test support lives (one place per kind, never copied into a test module):

* here: ``settings``, ``stack`` (Kafka, PostgreSQL with TimescaleDB and PostGIS,
  Prometheus and Alertmanager answering, started with ``iocdev.stack`` when they do not;
  never stopped here: the next run reuses them, ``make test`` stops them only when
  CI=true), ``kafka_bootstrap``, ``pg_conninfo``, ``new_topic`` (a topic factory),
  ``migrated_db`` (a fresh migrated database) and ``pipe`` (an isolated pipeline);
* ``tests/<area>/conftest.py``: fixtures of one area only (``integration/api``: a
  database with departments; ``browser``: the console's API process and chromium);
* ``tests/support/``: plain helpers shared across areas (killing workers, metric names,
  rule files);
* beside the tests of one area, helpers only they use (``integration/api/apihelpers.py``,
  ``unit/alerts/alerts_helpers.py``, ``integration/observability/grafana_expand.py``);
* ``iocdev.sandbox`` (tools/): the pipeline harness behind ``pipe``, shared with the
  benchmarks and the chaos suite.

Markers by directory (:func:`pytest_collection_modifyitems`): ``tests/unit`` is
``unit`` (no services, no network: ``make unit``), ``tests/integration`` is
``integration``, ``tests/browser`` is ``browser`` and ``tests/chaos`` is ``chaos`` (both
also ``integration``: they need the local stack).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from iocdev.sandbox import Pipeline, fresh_database, pipeline
from iocdev.settings import DevSettings, get_dev_settings

from ioccore.settings import Settings

TESTS = Path(__file__).resolve().parent
MARKERS_BY_DIRECTORY: dict[str, tuple[str, ...]] = {
    "unit": ("unit",),
    "integration": ("integration",),
    "browser": ("browser", "integration"),
    "chaos": ("chaos", "integration"),
}
"""The first folder under tests/ -> the markers each of its tests gets."""


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Mark every test by its directory, so ``-m unit`` selects exactly tests/unit."""
    for item in items:
        try:
            area = item.path.resolve().relative_to(TESTS).parts[0]
        except ValueError:
            continue
        for name in MARKERS_BY_DIRECTORY.get(area, ()):
            item.add_marker(name)


@pytest.fixture(scope="session")
def settings() -> DevSettings:
    """The development settings (deployed ones plus the local stack's keys)."""
    return get_dev_settings()


@pytest.fixture(scope="session")
def stack(settings: DevSettings) -> DevSettings:
    """The local services, answering (started here if needed, never stopped here)."""
    from iocdev.stack import manager

    if not all(row.answers for row in manager.status(settings)):
        manager.up(settings, echo=print)
    return settings


@pytest.fixture(scope="session")
def kafka_bootstrap(stack: Settings) -> str:
    return stack.kafka.bootstrap_servers


@pytest.fixture(scope="session")
def pg_conninfo(stack: Settings) -> str:
    """libpq conninfo of the maintenance database ``postgres`` as the local stack's
    superuser (trust on loopback): for tests that need superuser powers (terminating
    every backend, injecting faults). Databases for the application are made with
    ``iocdev.sandbox.fresh_database`` (owner role) instead."""
    from iocdev.stack.postgres import BOOTSTRAP_USER

    return stack.database.model_copy(update={"owner_user": BOOTSTRAP_USER,
                                              "owner_password": None}
                                     ).owner_conninfo(dbname="postgres")


@pytest.fixture
def new_topic(kafka_bootstrap: str, settings: Settings) -> Iterator[Callable[..., str]]:
    """Factory: ``new_topic(partitions=1, prefix="test")`` creates a uniquely named
    topic and returns its name; every topic it created is deleted afterwards."""
    from kafka.admin import KafkaAdminClient, NewTopic

    admin = KafkaAdminClient(bootstrap_servers=kafka_bootstrap, client_id="ioc-tests",
                             **settings.kafka.client_options())
    created: list[str] = []

    def make(partitions: int = 1, prefix: str = "test", **configs: Any) -> str:
        name = f"{prefix}-{uuid.uuid4().hex[:12]}"
        admin.create_topics(
            [NewTopic(name, partitions, 1, topic_configs={k.replace("_", "."): str(v)
                                                          for k, v in configs.items()})],
            timeout_ms=30_000, wait_for_metadata=True,
        )
        created.append(name)
        return name

    try:
        yield make
    finally:
        if created:
            admin.delete_topics(created, timeout_ms=30_000, raise_errors=False)
        admin.close()


@pytest.fixture
def migrated_db(stack: Settings) -> Iterator[tuple[str, str]]:
    """A uniquely named database with every migration applied, ``(name, conninfo)`` as
    the configured role; dropped (sessions forced off) afterwards."""
    with fresh_database(stack) as db:
        yield db


@pytest.fixture
def pipe(stack: Settings, tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[Pipeline]:
    """An isolated pipeline (fresh topics, consumer group and migrated database; workers
    started with ``pipe.start_worker()``), torn down afterwards. One partition per topic
    unless the test is marked ``@pytest.mark.partitions(n)``."""
    marker = request.node.get_closest_marker("partitions")
    partitions = int(marker.args[0]) if marker is not None else 1
    with pipeline(stack, tmp_path, partitions=partitions) as p:
        yield p


def pytest_terminal_summary(terminalreporter: Any) -> None:
    """Print the facts tests recorded with ``record_property("stack.<name>", value)``."""
    facts: dict[str, object] = {}
    for reports in terminalreporter.stats.values():
        for report in reports:
            for key, value in getattr(report, "user_properties", ()):
                if str(key).startswith("stack."):
                    facts[str(key)] = value
    if facts:
        terminalreporter.write_sep("-", "local stack")
        for key, value in sorted(facts.items()):
            terminalreporter.write_line(f"{key}: {value}")
