"""Building the real parts of a worker and running it."""

from __future__ import annotations

import ctypes
import ctypes.util
import gc
import logging
from collections.abc import Callable

import faust

from alerts.alertmanager import AlertmanagerClient
from alerts.incidents.config import load as load_incident_config
from alerts.incidents.runner import IncidentRunner
from alerts.notify import generator_url
from alerts.outbox import OutboxDelivery
from alerts.ruleload import load_rules_dir
from alerts.webhook import WebhookClient
from geo.index import CommuneIndex
from ioccore.errors import ConfigError, GeoError
from ioccore.events.validate import Validator
from ioccore.settings import Settings, get_settings
from streams.alerting import commune_names
from streams.app import WorkerResources, build_app
from streams.health import quiet_libraries
from streams.ownership import DepartmentTopics, Ownership

log = logging.getLogger(__name__)


def resolvable_codes(index: CommuneIndex) -> Callable[[str], bool]:
    """Predicate for the validator: a current code, or a pre-2025 code that maps to exactly
    one current commune. Checking here (not after validation) keeps the dead letter's
    value the event's original bytes."""
    known: dict[str, bool] = {}

    def check(code: str) -> bool:
        if code not in known:
            try:
                index.check_code(code)
                known[code] = True
            except GeoError:
                known[code] = False
        return known[code]

    return check


MMAP_THRESHOLD_BYTES = 256 * 1024
"""glibc: allocations from this size are mmap'ed, so freeing them returns the memory."""
TRIM_THRESHOLD_BYTES = 4 * 1024 * 1024
"""glibc: free memory above this at the top of the heap goes back to the system."""
_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3


def _libc() -> ctypes.CDLL | None:
    name = ctypes.util.find_library("c")
    if name is None:
        return None
    try:
        libc = ctypes.CDLL(name)
        libc.mallopt  # noqa: B018  (glibc only: musl has no mallopt)
        libc.malloc_trim  # noqa: B018
    except (OSError, AttributeError):
        return None
    return libc


def tune_allocator() -> None:
    """Fix glibc's mmap threshold (it otherwise grows to 32 MB after the first large
    free, and batch-sized buffers then stay in the heap after they are freed: a draining
    worker kept its peak for good). No-op without glibc."""
    libc = _libc()
    if libc is not None:
        libc.mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD_BYTES)
        libc.mallopt(_M_TRIM_THRESHOLD, TRIM_THRESHOLD_BYTES)


def release_freed_memory() -> None:
    """Give freed heap back to the system (after start-up: building the geo index's
    raster leaves tens of MB of freed temporaries). No-op without glibc."""
    libc = _libc()
    if libc is not None:
        libc.malloc_trim(0)


def freeze_startup_objects() -> None:
    """Move every object start-up made (the geo index, the validator's tables, faust's
    and the libraries' modules: about 200,000 tracked objects) out of the collector's
    reach. Each full collection otherwise walks them all, and a one-event drain makes
    enough short-lived objects to run one every few batches: a micro-benchmark of the
    typed decode and checks at the worker's heap size went from about 9 to 6 µs a message
    (BENCHMARKS.md, session 6). Reference counting still frees them when they go; only
    cyclic garbage among them would stay, and start-up objects live as long as the
    process."""
    gc.collect()
    gc.freeze()


def webhook_client(settings: Settings) -> WebhookClient | None:
    """The signed-webhook client, or None without a URL; refuses a URL without a secret."""
    cfg = settings.alerts
    if not cfg.webhook_url:
        return None
    if cfg.webhook_secret is None or not cfg.webhook_secret.get_secret_value():
        raise ConfigError("alerts.webhook_url is set but alerts.webhook_secret is not "
                          "(IOC__ALERTS__WEBHOOK_SECRET): refusing unsigned webhooks")
    previous = None
    if cfg.webhook_previous_secret is not None and cfg.webhook_previous_key_id:
        previous = (cfg.webhook_previous_key_id,
                    cfg.webhook_previous_secret.get_secret_value().encode())
    return WebhookClient(cfg.webhook_url, cfg.webhook_secret.get_secret_value().encode(),
                         key_id=cfg.webhook_key_id, previous=previous)


def make_resources(settings: Settings, *, geo_source: str = "auto") -> WorkerResources:
    """Validator, commune index and database for a worker (refuses a bad webhook first)."""
    from geo.index import index_for

    webhook = webhook_client(settings)  # a misconfigured webhook stops the worker first

    conninfo = settings.database.conninfo()
    if geo_source == "auto":
        try:
            index = index_for(settings, source="database")
            log.info("geo: boundaries from the database (%d communes)", len(index))
        except Exception as exc:  # no units loaded yet: the bundled reference still works
            log.warning("geo: database boundaries unavailable (%s); using the reference", exc)
            index = index_for(settings, source="reference")
    else:
        index = index_for(settings, source=geo_source)
    validator = Validator(max_message_bytes=settings.kafka.max_message_bytes,
                          max_future_skew_s=settings.stream.max_future_skew_s,
                          known_commune=resolvable_codes(index))
    rules = load_rules_dir(settings.resolve(settings.alerts.rules_dir))
    names = commune_names(conninfo)
    outbox = OutboxDelivery(conninfo, alertmanager=AlertmanagerClient(settings.alertmanager.url),
                            webhook=webhook, retry_max_s=settings.alerts.outbox_retry_max_s,
                            generator_url=generator_url(settings))
    topics = DepartmentTopics(settings.kafka.department_topic_pattern)
    return WorkerResources(validator=validator, index=index, conninfo=conninfo, rules=rules,
                           communes=names, outbox=outbox, ownership=Ownership(conninfo, topics),
                           department_topics=department_topics(settings, topics),
                           incidents=incident_runner(settings, conninfo))


def incident_runner(settings: Settings, conninfo: str) -> IncidentRunner | None:
    """The incident loop, when ``incidents.in_worker`` (else run ``ioc incidents run``);
    invalid SOPs or rota stop the worker here, before it reads anything."""
    if not settings.incidents.in_worker:
        return None
    return IncidentRunner(conninfo, load_incident_config(settings),
                          poll_interval_s=settings.incidents.poll_interval_s)


def department_topics(settings: Settings, topics: DepartmentTopics) -> tuple[str, ...]:
    """The department topics that exist at start (logged); ones created later are read too,
    through the stage-1 reader's topic pattern (streams/raw_reader.py)."""
    from ioccore.topics import admin_client

    admin = admin_client(settings.kafka)
    try:
        found = tuple(sorted(t for t in admin.list_topics() if topics.parse(t)))
    finally:
        admin.close()
    log.info("department topics: %s", ", ".join(found) or "none")
    return found


def run_worker(*, index: int = 0, geo_source: str = "auto", stages: str | None = None
               ) -> None:
    """Run one worker process until SIGTERM/SIGINT; ``stages`` overrides
    ``stream.stages``."""
    tune_allocator()
    settings = get_settings()
    if stages is not None:
        settings = settings.model_copy(update={
            "stream": settings.stream.model_copy(update={"stages": stages})})
    resources = make_resources(settings, geo_source=geo_source)
    prefix = settings.stream.group_instance_prefix
    app = build_app(settings, resources, web_port=settings.stream.worker_web_port + index,
                    instance_id=f"{prefix}-{index}" if prefix else None)
    quiet_libraries()
    freeze_startup_objects()
    release_freed_memory()
    faust.Worker(app, loglevel="info", logging_config=None,
                 override_logging=False).execute_from_commandline()
