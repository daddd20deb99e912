"""Alertmanager v2: payloads for ``POST /api/v2/alerts`` and a small async client.

Alertmanager identifies an alert by its whole label set: ``alertname`` (the rule id),
``severity``, ``commune_code``/``province_code`` (or ``source_id``, ``feed``,
``department``), the rule's own labels, and after an escalation ``escalated="true"``
and ``receiver``. An escalation changes the label set, so the payload also closes the
alert under its old labels (``endsAt`` = the escalation time). Alertmanager resolves
alerts that are not re-sent within its ``resolve_timeout``: :func:`resend_active` posts
every active alert again and the outbox loop calls it every 60 s.

Every alert also carries the annotation ``console_url``, the operator console opened on
that alert: Alertmanager's e-mails and webhooks (config/alertmanager/) link to it.

``startsAt`` of an open alert is when ioc posts it (wall clock), not its event-time
start: Alertmanager flushes a new group at once, without its ``group_wait``, when the
first alert's ``startsAt`` is already older than ``group_wait``, and it does so while
the rest of the same POST is still being inserted, so 30 communes firing together would
be split over two e-mails. The event-time start travels as the annotations ``since``
(ISO 8601) and ``since_vn`` (Vietnam time, for people); a resolution posts the
event-time ``startsAt`` and ``endsAt`` (Alertmanager keeps the earliest start).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta, timezone
from typing import Any
from urllib.parse import urlencode

import httpx

from alerts.errors import ReceiverError
from alerts.model import Transition

VIETNAM = timezone(timedelta(hours=7), "ICT")
"""Vietnam's time (no daylight saving): times in notifications are for people there."""

API_PATH = "/api/v2/alerts"
ALERTS_PATH = "/v1/alerts"
"""The API's alerts, under which ``generator_url`` ends (``notify.generator_url``)."""


def _url(generator_url: str, fingerprint: str) -> str:
    return f"{generator_url.rstrip('/')}/{fingerprint}" if generator_url else ""


def console_url(generator_url: str, fingerprint: str,
                labels: Mapping[str, str] | None = None) -> str:
    """The console beside the API that ``generator_url`` names, its board filtered to
    the alert's rule and place (``rule``, ``commune`` or ``province``, the console's own
    URL filters) and naming the alert (``alert``)."""
    if not generator_url:
        return ""
    base = generator_url.rstrip("/").removesuffix(ALERTS_PATH)
    query: dict[str, str] = {}
    labels = labels or {}
    if labels.get("alertname"):
        query["rule"] = labels["alertname"]
    if labels.get("commune_code"):
        query["commune"] = labels["commune_code"]
    elif labels.get("province_code"):
        query["province"] = labels["province_code"]
    query["alert"] = fingerprint
    return f"{base}/console/?{urlencode(query)}"


def _am_alert(labels: Mapping[str, str], annotations: Mapping[str, str], starts_at: datetime,
              ends_at: datetime | None, generator_url: str) -> dict[str, Any]:
    alert: dict[str, Any] = {
        "labels": {k: str(v) for k, v in labels.items()},
        "annotations": {k: str(v) for k, v in annotations.items()},
        "startsAt": starts_at.isoformat(),
        "generatorURL": generator_url,
    }
    if ends_at is not None:
        alert["endsAt"] = ends_at.isoformat()
    return alert


def vietnam_time(at: datetime) -> str:
    """``HH:MM dd/mm/yyyy`` in Vietnam's time, as officials read it."""
    return at.astimezone(VIETNAM).strftime("%H:%M %d/%m/%Y")


def _annotations(annotations: Mapping[str, str], fingerprint: str, generator_url: str,
                 labels: Mapping[str, str], since: datetime,
                 ended: datetime | None = None) -> dict[str, str]:
    out = {**annotations, "fingerprint": fingerprint,
           "console_url": console_url(generator_url, fingerprint, labels),
           "since": since.isoformat(), "since_vn": vietnam_time(since)}
    if ended is not None:
        out["ended_vn"] = vietnam_time(ended)
    return out


def _posted(since: datetime, now: datetime | None) -> datetime:
    """``startsAt`` of an open alert: now (see the module docstring), never before
    ``since``."""
    return max(since, now or datetime.now(UTC))


def alerts_for(t: Transition, generator_url: str, *, now: datetime | None = None
               ) -> list[dict[str, Any]]:
    """The Alertmanager alerts one transition posts (``resolved`` carries ``endsAt``)."""
    url = _url(generator_url, t.fingerprint)
    since = t.since or t.at
    resolved = t.to_state == "resolved"
    annotations = _annotations(t.annotations, t.fingerprint, generator_url, t.labels, since,
                               t.at if resolved else None)
    if resolved:
        out = [_am_alert(t.labels, annotations, since, t.at, url)]
    else:
        out = [_am_alert(t.labels, annotations, _posted(since, now), None, url)]
    if t.replaces is not None and dict(t.replaces) != dict(t.labels):
        out.insert(0, _am_alert(t.replaces, annotations, since, t.at, url))
    return out


def active_alert(fingerprint: str, labels: Mapping[str, str], annotations: Mapping[str, str],
                 since: datetime, generator_url: str, *, now: datetime | None = None
                 ) -> dict[str, Any]:
    """The periodic re-send of an alert that is still firing or acknowledged."""
    return _am_alert(labels, _annotations(annotations, fingerprint, generator_url, labels,
                                          since),
                     _posted(since, now), None, _url(generator_url, fingerprint))


class AlertmanagerClient:
    """Posts alert lists; raises :class:`ReceiverError` on any failure."""

    def __init__(self, base_url: str, *, timeout_s: float = 5.0,
                 client: httpx.AsyncClient | None = None) -> None:
        self.base_url = base_url.rstrip("/")
        self._client = client or httpx.AsyncClient(timeout=timeout_s)
        self._own = client is None

    async def post(self, alerts: Sequence[Mapping[str, Any]]) -> None:
        if not alerts:
            return
        try:
            response = await self._client.post(self.base_url + API_PATH, json=list(alerts))
        except httpx.HTTPError as exc:
            raise ReceiverError("alertmanager", f"{type(exc).__name__}: {exc}") from exc
        if response.status_code >= 300:
            raise ReceiverError("alertmanager", f"HTTP {response.status_code}: "
                                f"{response.text[:200]}", response.status_code)

    async def list(self, *, active: bool = True, filters: Sequence[str] = ()
                   ) -> list[dict[str, Any]]:
        """``GET /api/v2/alerts`` (tests and ``ioc alerts`` diagnostics)."""
        params: list[tuple[str, str | int | float | bool | None]] = [
            ("active", str(active).lower())]
        params += [("filter", f) for f in filters]
        try:
            response = await self._client.get(self.base_url + API_PATH, params=params)
        except httpx.HTTPError as exc:
            raise ReceiverError("alertmanager", f"{type(exc).__name__}: {exc}") from exc
        if response.status_code != 200:
            raise ReceiverError("alertmanager", f"HTTP {response.status_code}",
                                response.status_code)
        data: list[dict[str, Any]] = response.json()
        return data

    async def aclose(self) -> None:
        if self._own:
            await self._client.aclose()
