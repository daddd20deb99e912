"""Signed webhooks: a JSON POST per notification, HMAC-SHA256 over timestamp and body.

Headers sent:

* ``X-IOC-Timestamp``: Unix seconds when the request was signed;
* ``X-IOC-Signature``: ``sha256=<hex of HMAC-SHA256(secret, "<timestamp>." + raw body)>``;
* ``X-IOC-Delivery``: the outbox row id, the same on every retry (receivers can
  de-duplicate on it, or on ``fingerprint`` + ``seq`` in the body).

A receiver recomputes the HMAC over the raw bytes it received (before parsing the
JSON), compares it in constant time, and refuses timestamps more than five minutes
away from its clock, which stops replays. :func:`verify` does exactly that.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from typing import Any

import httpx
import orjson

from alerts.errors import ReceiverError
from alerts.model import Transition

SIGNATURE_HEADER = "X-IOC-Signature"
TIMESTAMP_HEADER = "X-IOC-Timestamp"
DELIVERY_HEADER = "X-IOC-Delivery"
TOLERANCE_S = 300


def event_for(t: Transition, generator_url: str) -> dict[str, Any]:
    """The webhook body for one transition."""
    body = t.to_json()
    body["type"] = "ioc.alert.transition.v1"
    body["url"] = f"{generator_url.rstrip('/')}/{t.fingerprint}" if generator_url else None
    return body


def sign(secret: bytes, body: bytes, timestamp: int) -> str:
    """The ``X-IOC-Signature`` value for ``body`` sent at ``timestamp``."""
    mac = hmac.new(secret, str(timestamp).encode() + b"." + body, hashlib.sha256)
    return "sha256=" + mac.hexdigest()


def verify(secret: bytes, body: bytes, timestamp: str, signature: str, *,
           now: float | None = None, tolerance_s: int = TOLERANCE_S) -> bool:
    """What a receiver does: check freshness, then the HMAC in constant time."""
    try:
        ts = int(timestamp)
    except ValueError:
        return False
    current = time.time() if now is None else now
    if abs(current - ts) > tolerance_s:
        return False
    return hmac.compare_digest(sign(secret, body, ts), signature)


class WebhookClient:
    """Posts signed JSON bodies to one URL; raises :class:`ReceiverError` on failure."""

    def __init__(self, url: str, secret: bytes, *, timeout_s: float = 5.0,
                 client: httpx.AsyncClient | None = None) -> None:
        self.url = url
        self._secret = secret
        self._client = client or httpx.AsyncClient(timeout=timeout_s)
        self._own = client is None

    async def post(self, payload: dict[str, Any], delivery_id: str) -> None:
        body = orjson.dumps(payload)
        ts = int(time.time())
        headers = {
            "Content-Type": "application/json",
            TIMESTAMP_HEADER: str(ts),
            SIGNATURE_HEADER: sign(self._secret, body, ts),
            DELIVERY_HEADER: delivery_id,
        }
        try:
            response = await self._client.post(self.url, content=body, headers=headers)
        except httpx.HTTPError as exc:
            raise ReceiverError("webhook", f"{type(exc).__name__}: {exc}") from exc
        if response.status_code >= 300:
            raise ReceiverError("webhook", f"HTTP {response.status_code}",
                                response.status_code)

    async def aclose(self) -> None:
        if self._own:
            await self._client.aclose()
