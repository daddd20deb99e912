"""Which receivers a transition is sent to, and with which payload.

* ``firing`` (from pending, inactive or resolved), ``renotify`` and ``escalate`` go to
  every receiver unless a silence in effect matches the alert's labels;
* ``acknowledged`` goes to the webhook only (Alertmanager has no such state);
* ``resolved`` goes to the webhook unless silenced, and always to Alertmanager (it must
  learn ``endsAt`` of an alert it may hold as active; resolving an alert it never saw is
  harmless);
* ``pending`` and ``pending → inactive`` notify nobody (they are stored, not sent);
* a ``backfilled`` transition (an episode that opened and closed inside a backlog,
  docs/alerts.md) goes to the webhook only, marked ``"backfilled": true``: Alertmanager
  never pages what is already over.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from alerts import alertmanager, webhook
from alerts.model import Transition
from alerts.silences import Silence, silenced_by
from ioccore.settings import Settings

Receiver = Literal["alertmanager", "webhook"]
RECEIVERS: tuple[Receiver, ...] = ("alertmanager", "webhook")


def receivers_for(settings: Settings) -> list[Receiver]:
    """Who is notified of a transition: Alertmanager always, the signed webhook when a
    URL is configured. Workers, the API and the CLI all use this one answer."""
    out: list[Receiver] = ["alertmanager"]
    if settings.alerts.webhook_url:
        out.append("webhook")
    return out


def generator_url(settings: Settings) -> str:
    """Where a notification links back to (the API's alerts; the fingerprint is added);
    ``api.public_url`` when people reach the API at another address."""
    return settings.public_url() + alertmanager.ALERTS_PATH


@dataclass(frozen=True, slots=True)
class Notification:
    fingerprint: str
    seq: int
    receiver: Receiver
    payload: dict[str, Any]


def plan(transition: Transition, receivers: Sequence[Receiver], silences: Iterable[Silence],
         *, generator_url: str, now: datetime | None = None) -> list[Notification]:
    """The notifications one transition causes (empty when nothing is to be sent)."""
    to = transition.to_state
    silenced = silenced_by(transition.labels, silences, now or transition.at) is not None
    wanted: list[Receiver] = []
    if to == "firing" and transition.from_state != "acknowledged":
        wanted = [] if silenced else list(receivers)
    elif to == "acknowledged":
        wanted = [] if silenced else [r for r in receivers if r == "webhook"]
    elif to == "resolved" and transition.from_state != "pending":
        wanted = [r for r in receivers if r == "alertmanager" or not silenced]
    if transition.backfilled:  # already in the past: a record, not a page
        wanted = [r for r in wanted if r == "webhook"]
    out: list[Notification] = []
    for receiver in wanted:
        if receiver == "alertmanager":
            payload: dict[str, Any] = {
                "alerts": alertmanager.alerts_for(transition, generator_url)}
        else:
            payload = webhook.event_for(transition, generator_url)
        out.append(Notification(transition.fingerprint, transition.seq, receiver, payload))
    return out
