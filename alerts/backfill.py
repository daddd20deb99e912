"""The backfill policy (docs/alerts.md): what was already in the past is not paged."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import replace
from datetime import datetime

from alerts.model import Transition


def mark_backfilled(transitions: list[Transition], stale_before: datetime) -> list[Transition]:
    """Per alert, in order: an episode that opened and closed within these transitions and
    closed before ``stale_before`` is marked backfilled, all of it (stored, shown, sent to
    the webhook marked so, never paged to Alertmanager); so is a stale reminder that a
    later transition here supersedes, or that follows a firing sent in the same plan. An
    alert still active at the end is paged once, with ``since`` at its event-time start.
    """
    by_fp: dict[str, list[int]] = defaultdict(list)
    for i, t in enumerate(transitions):
        by_fp[t.fingerprint].append(i)
    flags = [False] * len(transitions)
    for idx in by_fp.values():
        opened: int | None = None  # index where the current episode opened in this list
        for n, i in enumerate(idx):
            t = transitions[i]
            if t.kind == "state" and t.to_state in ("pending", "firing") and t.from_state in (
                    "inactive", "resolved"):
                opened = n
            elif t.kind == "state" and t.to_state in ("resolved", "inactive"):
                if opened is not None and t.at < stale_before:
                    for j in idx[opened:n + 1]:
                        flags[j] = True
                opened = None
            elif t.kind == "renotify" and t.at < stale_before:
                later = any(transitions[j].at < stale_before for j in idx[n + 1:])
                if later or opened is not None:
                    flags[i] = True
    return [replace(t, backfilled=True) if f else t
            for t, f in zip(transitions, flags, strict=True)]
