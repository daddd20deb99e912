"""``python -m iocdev.chaos.mail_outage``: the SMTP server down for two minutes.

A PM2.5 episode over 30 communes of one province (:mod:`iocdev.mail_episode`) with the
owner's SMTP server (a private Mailpit) stopped for ``--down-s`` (120) across the firing
and again across the resolution. Alertmanager (the shipped routing tree, shipped
timings) must retry until it is back: exactly one firing and one resolved e-mail reach
the owner, nothing reaches anyone else. Runs on the chaos stack (.stack-chaos) unless
``--same-stack``; run it under ``flock /tmp/chaos.lock`` like every chaos run:

    flock /tmp/chaos.lock .venv/bin/python -m iocdev.chaos.mail_outage
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

from iocdev import mail_episode
from iocdev.chaos import stack
from iocdev.settings import get_dev_settings


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m iocdev.chaos.mail_outage",
                                     description=__doc__.splitlines()[0] if __doc__ else "")
    parser.add_argument("--down-s", type=float, default=120.0,
                        help="seconds the SMTP server is down, twice (default 120)")
    parser.add_argument("--communes", type=int, default=30)
    parser.add_argument("--home", type=Path, default=stack.DEFAULT_HOME)
    parser.add_argument("--port-base", type=int, default=stack.DEFAULT_PORT_BASE)
    parser.add_argument("--same-stack", action="store_true",
                        help="use the stack the settings name (only its Kafka and "
                             "PostgreSQL are used; the SMTP server stopped is private)")
    args = parser.parse_args(argv)
    base = get_dev_settings()
    settings = base if args.same_stack else stack.chaos_settings(
        base, home=args.home, port_base=args.port_base)
    if not args.same_stack:
        stack.up(settings, seed_from=base)
    t0 = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="ioc-chaos-mail-") as tmp:
        episode = mail_episode.run(settings, Path(tmp), communes=args.communes,
                                   smtp_down_s=args.down_s, group_interval="1m",
                                   echo=lambda s: print(s, flush=True))
    subjects = [m.subject for m in episode.owner_messages]
    statuses = [s.split(":")[0] for s in subjects]
    ok = (statuses == ["[IOC] CẢNH BÁO / FIRING", "[IOC] ĐÃ HẾT CẢNH BÁO / RESOLVED"]
          and not episode.other_messages)
    print(f"\nmail-outage: SMTP down {args.down_s:.0f} s twice, {episode.communes} communes, "
          f"{time.monotonic() - t0:.0f} s")
    for s in subjects:
        print(f"  owner got: {s}")
    print(f"  others got: {len(episode.other_messages)}")
    print(f"  Alertmanager's failed e-mail attempts (firing, resolving): "
          f"{', '.join(f'{n:.0f}' for n in episode.email_failures)}")
    print(f"  {'OK' if ok else 'FAILED'}: lost {max(0, 2 - len(subjects))}, "
          f"duplicated {max(0, len(subjects) - 2)}, misrouted {len(episode.other_messages)}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
