"""``python -m iocdev.chaos``: run chaos scenarios on a stack of their own, print ledgers.

Exit status 0 only when every scenario ended with 0 lost, 0 double-counted and 0 missed
or duplicated alerts. ``make chaos`` runs them all; docs/chaos.md explains the figures.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

from iocdev.chaos import stack
from iocdev.chaos.ledger import Ledger
from iocdev.chaos.mqtt import MQTT_SCENARIOS, run_mqtt_scenario
from iocdev.chaos.scenarios import SCENARIOS, by_name, run_scenario
from iocdev.settings import get_dev_settings


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m iocdev.chaos", description=__doc__)
    parser.add_argument("scenarios", nargs="*",
                        help="scenarios to run (default: all): "
                             f"{[s.name for s in SCENARIOS] + [s.name for s in MQTT_SCENARIOS]}")
    parser.add_argument("--quick", action="store_true", help="only the short (CI) scenarios")
    parser.add_argument("--home", type=Path, default=stack.DEFAULT_HOME,
                        help="the chaos stack's folder (default: .stack-chaos)")
    parser.add_argument("--port-base", type=int, default=stack.DEFAULT_PORT_BASE,
                        help="its ports are port-base + 92 (Kafka), + 432 (PostgreSQL), ...")
    parser.add_argument("--same-stack", action="store_true",
                        help="use the stack the settings name (only where nobody else "
                             "uses it, e.g. a CI machine of its own)")
    parser.add_argument("--down", action="store_true",
                        help="stop the chaos stack after the scenarios")
    parser.add_argument("--stop", action="store_true",
                        help="only stop the chaos stack (runs no scenario; `make chaos-down`)")
    parser.add_argument("--rate", type=float, default=200.0, help="events per second")
    parser.add_argument("--json", type=Path, help="also write the ledgers here")
    args = parser.parse_args(argv)

    base = get_dev_settings()
    settings = base if args.same_stack else stack.chaos_settings(
        base, home=args.home, port_base=args.port_base)
    if args.stop:
        if args.same_stack:
            parser.error("--stop stops the chaos stack only, never the stack the settings name")
        print(f"stopping the chaos stack: {settings.stack.root}", flush=True)
        stack.down(settings)
        return 0
    mqtt_names = {s.name: s for s in MQTT_SCENARIOS}
    wanted = args.scenarios or ([s.name for s in SCENARIOS]
                                + [s.name for s in MQTT_SCENARIOS])
    selected = by_name([n for n in wanted if n not in mqtt_names])
    mqtt_selected = [mqtt_names[n] for n in wanted if n in mqtt_names]
    if args.quick:
        selected = [s for s in selected if s.quick]
        mqtt_selected = [s for s in mqtt_selected if s.quick]
    print(f"chaos stack: {settings.stack.root} (Kafka {settings.kafka.bootstrap_servers}, "
          f"PostgreSQL port {settings.database.port}, Alertmanager "
          f"{settings.alertmanager.url})", flush=True)
    stack.up(settings, seed_from=base)
    ledgers: list[Ledger] = []
    t0 = time.monotonic()
    try:
        with tempfile.TemporaryDirectory(prefix="ioc-chaos-") as tmp:
            for scenario in selected:
                ledgers.append(run_scenario(scenario, settings, Path(tmp) / scenario.name,
                                            echo=lambda s: print(s, flush=True),
                                            rate=args.rate))
            for mqtt_scenario in mqtt_selected:
                ledgers.append(run_mqtt_scenario(
                    mqtt_scenario, settings, Path(tmp) / mqtt_scenario.name,
                    echo=lambda s: print(s, flush=True), rate=args.rate))
    finally:
        if args.down:
            stack.down(settings)
    print(f"\n{len(ledgers)} scenarios in {time.monotonic() - t0:.0f} s: "
          f"{sum(led.ok for led in ledgers)} OK, {sum(not led.ok for led in ledgers)} FAILED")
    for led in ledgers:
        print(f"  {'OK    ' if led.ok else 'FAILED'} {led.scenario}: lost {led.lost}, "
              f"double-counted {led.double_counted}, alerts missed {led.alerts_missed}, "
              f"duplicated {led.alerts_duplicated}, recovery "
              f"{'-' if led.recover_s is None else f'{led.recover_s:.1f} s'}")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps([led.as_dict() for led in ledgers], indent=2))
    if not args.down and not args.same_stack:
        print(f"\nthe chaos stack is still running ({settings.stack.root}, ports "
              f"{args.port_base}+); stop it with `make chaos-down` (python -m iocdev.chaos "
              f"--stop{_where(args)})", flush=True)
    return 0 if ledgers and all(led.ok for led in ledgers) else 1


def _where(args: argparse.Namespace) -> str:
    """The options that name a chaos stack other than the default one."""
    where = ""
    if args.home != stack.DEFAULT_HOME:
        where += f" --home {args.home}"
    if args.port_base != stack.DEFAULT_PORT_BASE:
        where += f" --port-base {args.port_base}"
    return where


if __name__ == "__main__":
    sys.exit(main())
