"""Building the real parts of a worker and running it."""

from __future__ import annotations

import logging
from collections.abc import Callable

import faust

from alerts.alertmanager import AlertmanagerClient
from alerts.notify import generator_url
from alerts.outbox import OutboxDelivery
from alerts.ruleload import load_rules_dir
from alerts.webhook import WebhookClient
from geo.index import CommuneIndex
from ioc.core.errors import GeoError
from ioc.core.events.validate import Validator
from ioc.core.settings import Settings, get_settings
from streams.alerting import commune_names
from streams.app import Parts, build_app
from streams.degraded import quiet_libraries

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


def make_parts(settings: Settings, *, geo_source: str = "auto") -> Parts:
    """Validator, commune index and database for a worker."""
    from geo.index import index_for

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
    webhook = None
    if settings.alerts.webhook_url:
        secret = settings.alerts.webhook_secret
        webhook = WebhookClient(settings.alerts.webhook_url,
                                secret.get_secret_value().encode() if secret else b"")
    outbox = OutboxDelivery(conninfo, alertmanager=AlertmanagerClient(settings.alertmanager.url),
                            webhook=webhook, retry_max_s=settings.alerts.outbox_retry_max_s,
                            generator_url=generator_url(settings))
    return Parts(validator=validator, index=index, conninfo=conninfo, rules=rules,
                 communes=names, outbox=outbox)


def run_worker(*, index: int = 0, geo_source: str = "auto") -> None:
    """Run one worker process until SIGTERM/SIGINT."""
    settings = get_settings()
    parts = make_parts(settings, geo_source=geo_source)
    prefix = settings.stream.group_instance_prefix
    app = build_app(settings, parts, web_port=settings.stream.worker_web_port + index,
                    instance_id=f"{prefix}-{index}" if prefix else None)
    quiet_libraries()
    faust.Worker(app, loglevel="info", logging_config=None,
                 override_logging=False).execute_from_commandline()
