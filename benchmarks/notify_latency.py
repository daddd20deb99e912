"""Firing -> message in the owner's inbox, on the real stack (issue 23 target: at most
Alertmanager's ``group_wait`` + 5 s).

    python -m benchmarks.notify_latency [--communes 30] [--runs 1]

Each run is :func:`iocdev.mail_episode.run`: a real ``ioc worker`` (fresh topics and
database), ``ioc api``, a private Alertmanager running the shipped routing tree
(``group_wait`` as shipped) and a private Mailpit; readings make a PM2.5 rule owned by
``snnmt`` fire in ``--communes`` communes of province 01. The figure is the time from
the worker's commit of the first firing transition (its outbox row, ``created_at``) to
Mailpit's receipt of the owner's e-mail (``Created``); both clocks are this machine's.
Printed per run, then the worst; exit 1 when a run misses the target or the episode
was not exactly one firing and one resolved message to the owner only.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

from iocdev import mail_episode
from iocdev.settings import get_dev_settings


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.notify_latency",
                                     description=__doc__.splitlines()[0] if __doc__ else "")
    parser.add_argument("--communes", type=int, default=30)
    parser.add_argument("--runs", type=int, default=1)
    args = parser.parse_args(argv)
    settings = get_dev_settings()
    worst = 0.0
    ok = True
    for n in range(args.runs):
        with tempfile.TemporaryDirectory(prefix="ioc-notify-bench-") as tmp:
            episode = mail_episode.run(settings, Path(tmp), communes=args.communes,
                                       echo=lambda s: print(s, flush=True))
        latency = episode.firing_latency_s
        exact = (len(episode.owner_messages) == 2 and not episode.other_messages)
        target = episode.group_wait_s + 5.0
        good = latency is not None and latency <= target and exact
        ok = ok and good
        worst = max(worst, latency or float("inf"))
        shown = "-" if latency is None else f"{latency:.2f}"
        print(f"run {n + 1}: firing -> owner's inbox {shown} s "
              f"(target <= group_wait {episode.group_wait_s:.0f} s + 5 s = {target:.0f} s); "
              f"owner messages {len(episode.owner_messages)}, others "
              f"{len(episode.other_messages)}: {'OK' if good else 'MISSED'}", flush=True)
    print(f"worst of {args.runs}: {worst:.2f} s, {args.communes} communes, one province")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
