"""``up``, ``down`` and ``status`` over the local services."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from iocdev import supervise
from iocdev.errors import StackError
from iocdev.settings import DevSettings
from iocdev.stack import apt
from iocdev.stack.kafka import Kafka
from iocdev.stack.layout import Layout
from iocdev.stack.mailpit import Mailpit
from iocdev.stack.mosquitto import Mosquitto
from iocdev.stack.postgres import Postgres
from iocdev.stack.prometheus import Alertmanager, Prometheus
from iocdev.stack.ready import port_open
from iocdev.stack.service import Service

SERVICES: tuple[str, ...] = ("kafka", "postgres", "prometheus", "mailpit", "alertmanager",
                             "mosquitto")
"""Start order; ``down`` stops in reverse."""

Echo = Callable[[str], None]


def _quiet(_: str) -> None:
    pass


@dataclass(frozen=True, slots=True)
class ServiceStatus:
    """What ``status`` reports for one service."""

    name: str
    pid: int | None
    port: int
    answers: bool
    log: str


def services(settings: DevSettings, only: Sequence[str] = ()) -> list[Service]:
    """The selected services (all by default) in start order."""
    unknown = sorted(set(only) - set(SERVICES))
    if unknown:
        raise StackError(",".join(unknown), f"unknown service; choose from {SERVICES}")
    layout = Layout.from_settings(settings)
    classes: dict[str, type[Service]] = {"kafka": Kafka, "postgres": Postgres,
                                         "prometheus": Prometheus, "mailpit": Mailpit,
                                         "alertmanager": Alertmanager,
                                         "mosquitto": Mosquitto}
    return [classes[name](settings, layout) for name in SERVICES if not only or name in only]


def up(settings: DevSettings, only: Sequence[str] = (), echo: Echo = _quiet) -> dict[str, float]:
    """Install what is missing, start what is not running, wait until all answer.

    Returns the seconds spent per phase and per service. Services already running
    (ours, per the pid files) are left alone and only checked.
    """
    timings: dict[str, float] = {}
    selected = services(settings, only)
    layout = Layout.from_settings(settings)
    layout.ensure()

    t0 = time.monotonic()
    packages = sorted({p for svc in selected for p in svc.packages})
    installed = apt.install(packages, log=layout.log("apt"))
    if installed:
        echo(f"apt: installed {' '.join(installed)}")
    timings["apt"] = time.monotonic() - t0

    started: dict[str, int | None] = {}
    for svc in selected:
        t = time.monotonic()
        running = svc.pidfile.running()
        if running is not None:
            echo(f"{svc.name}: already running (pid {running.pid})")
            started[svc.name] = None
            continue
        if port_open(svc.host, svc.port):
            raise StackError(svc.name, f"port {svc.port} is already taken by a process this "
                             "stack did not start (another stack or docker compose?)",
                             str(svc.log))
        svc.install()
        svc.prepare()
        timings[f"{svc.name}.install"] = time.monotonic() - t
        proc = supervise.spawn(svc.name, svc.argv(), log=svc.log, cwd=svc.home,
                               user=svc.user, pidfile=svc.pidfile)
        echo(f"{svc.name}: started pid {proc.pid}, log {svc.log}")
        started[svc.name] = proc.pid

    for svc in selected:
        t = time.monotonic()
        try:
            svc.wait_ready(started[svc.name])
        except StackError as exc:
            tail = supervise.log_tail(svc.log)
            if tail:
                echo(f"--- last lines of {svc.log} ---\n{tail}\n---")
            raise exc
        timings[f"{svc.name}.ready"] = time.monotonic() - t
        echo(f"{svc.name}: ready on {svc.host}:{svc.port} "
             f"({timings[f'{svc.name}.ready']:.1f} s)")
    timings["total"] = time.monotonic() - t0
    return timings


def down(settings: DevSettings, only: Sequence[str] = (), echo: Echo = _quiet) -> list[int]:
    """Stop exactly the processes the pid files record, in reverse start order."""
    stopped: list[int] = []
    for svc in reversed(services(settings, only)):
        pid = svc.pidfile.stop(sig=svc.stop_signal)
        if pid is None:
            echo(f"{svc.name}: not running")
        else:
            echo(f"{svc.name}: stopped pid {pid}")
            stopped.append(pid)
    return stopped


def status(settings: DevSettings, only: Sequence[str] = ()) -> list[ServiceStatus]:
    """Each service's recorded pid (if alive and ours), port and whether it answers."""
    result = []
    for svc in services(settings, only):
        record = svc.pidfile.running()
        result.append(ServiceStatus(name=svc.name, pid=record.pid if record else None,
                                    port=svc.port, answers=svc.probe(), log=str(svc.log)))
    return result
