"""The chaos suite's own stack: a home and ports apart from the shared stack.

Restarting the broker or PostgreSQL of a stack others test against would break their
runs, so chaos never touches the stack the settings name: it derives settings for a
second stack (``<home>-chaos``-style folder, ports ``port_base + n``) and brings that
one up with the same :mod:`iocdev.stack` code. Services are stopped and started through
the stack manager, hence through :mod:`iocdev.supervise` (recorded pid, start time).
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

from ioccore.settings import ROOT
from iocdev.settings import DevSettings
from iocdev.stack import kafka, manager

DEFAULT_HOME = ROOT / ".stack-chaos"
DEFAULT_PORT_BASE = 31000


def chaos_settings(base: DevSettings, *, home: Path = DEFAULT_HOME,
                   port_base: int = DEFAULT_PORT_BASE) -> DevSettings:
    """``base`` with the stack home and every service port moved to the chaos stack."""
    host = base.stack.host
    stack = base.stack.model_copy(update={"home": home})
    root = stack.root
    return base.model_copy(update={
        "stack": stack,
        # its own Kafka passwords (SCRAM): where its workers, started with
        # IOC__STACK__HOME=<home>, look for them; the base stack's are never used
        "kafka": kafka.relocated(base.kafka, host, port_base, root),
        "database": base.database.model_copy(update={"port": port_base + 432}),
        "prometheus": base.prometheus.model_copy(update={"port": port_base + 90}),
        "alertmanager": base.alertmanager.model_copy(update={"port": port_base + 93}),
        "stream": base.stream.model_copy(update={"worker_web_port": port_base + 100}),
        "api": base.api.model_copy(update={"port": port_base + 80}),
        "mail": base.mail.model_copy(update={"smtp_port": port_base + 25,
                                             "web_port": port_base + 26}),
        "mqtt": base.mqtt.model_copy(update={"port": port_base + 883,
                                             "tls_port": port_base + 884,
                                             "secrets_dir": root / "secrets" / "mqtt"}),
    })


def _seed_mailpit(target: DevSettings, source: DevSettings) -> None:
    """Copy the Mailpit build of ``source``'s stack, so a new chaos home does not
    build it again."""
    have = source.stack.root / "mailpit" / "bin"
    bin_dir = target.stack.root / "mailpit" / "bin"
    if bin_dir.exists() or not (have / "mailpit").exists():
        return
    shutil.copytree(have, bin_dir)


def up(settings: DevSettings, *, seed_from: DevSettings | None = None,
       echo: Callable[[str], None] = print) -> list[str]:
    """Bring the chaos stack up (idempotent); the services this call had to start."""
    if seed_from is not None:
        kafka.seed_libs(settings.stack.root, seed_from.stack.root)
        _seed_mailpit(settings, seed_from)
    before = {row.name for row in manager.status(settings) if row.pid is not None}
    manager.up(settings, echo=echo)
    return [name for name in manager.SERVICES if name not in before]


def down(settings: DevSettings, echo: Callable[[str], None] = print) -> None:
    manager.down(settings, echo=echo)


def stop_service(settings: DevSettings, name: str) -> None:
    """Stop one service of the chaos stack (its own stop signal, by recorded pid)."""
    manager.down(settings, [name])


def start_service(settings: DevSettings, name: str) -> float:
    """Start one service again and wait until it answers; seconds it took."""
    return manager.up(settings, [name])["total"]
