"""Signed webhooks: a JSON POST per notification, HMAC-SHA256 over timestamp and body.

Headers sent:

* ``X-IOC-Timestamp``: Unix seconds when the request was signed;
* ``X-IOC-Signature``: ``keyid=<id>,sha256=<hex of HMAC-SHA256(secret, "<timestamp>." +
  raw body)>``, and during a rotation a second one after ``;`` (the previous key's), so a
  receiver holding either secret accepts the request while both sides switch over;
* ``X-IOC-Delivery``: the outbox row id, the same on every retry (receivers can
  de-duplicate on it, or on ``fingerprint`` + ``seq`` in the body).

A receiver recomputes the HMAC over the raw bytes it received (before parsing the
JSON), compares it in constant time, and refuses timestamps more than five minutes
away from its clock, which stops replays. :func:`verify` does exactly that, given the
secrets it holds by key id. A client without a secret is refused (``ValueError``): an
empty key signs nothing.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from collections.abc import Mapping, Sequence
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


def sign(secret: bytes, body: bytes, timestamp: int, key_id: str | None = None) -> str:
    """One signature of ``body`` sent at ``timestamp`` (``keyid=<id>,`` when named)."""
    mac = hmac.new(secret, str(timestamp).encode() + b"." + body, hashlib.sha256)
    return (f"keyid={key_id}," if key_id else "") + "sha256=" + mac.hexdigest()


def signature_header(keys: Sequence[tuple[str, bytes]], body: bytes, timestamp: int) -> str:
    """``X-IOC-Signature``: one signature per (key id, secret), current key first."""
    return ";".join(sign(secret, body, timestamp, key_id) for key_id, secret in keys)


def verify(secret: bytes | Mapping[str, bytes], body: bytes, timestamp: str,
           signature: str, *, now: float | None = None,
           tolerance_s: int = TOLERANCE_S) -> bool:
    """What a receiver does: check freshness, then the HMACs in constant time.

    ``secret``: the one secret, or the secrets a receiver holds by key id (two while a
    rotation overlaps); any signature made with a held key that matches is enough.
    """
    try:
        ts = int(timestamp)
    except ValueError:
        return False
    current = time.time() if now is None else now
    if abs(current - ts) > tolerance_s:
        return False
    ok = False
    for part in signature.split(";"):
        key_id, _, digest = part.strip().rpartition(",")
        key_id = key_id.removeprefix("keyid=")
        if isinstance(secret, bytes | bytearray):
            held: bytes | None = bytes(secret)
        else:
            held = secret.get(key_id)
        if held and hmac.compare_digest(sign(held, body, ts), digest):
            ok = True
    return ok


class WebhookClient:
    """Posts signed JSON bodies to one URL; raises :class:`ReceiverError` on failure."""

    def __init__(self, url: str, secret: bytes, *, timeout_s: float = 5.0,
                 client: httpx.AsyncClient | None = None, key_id: str = "k1",
                 previous: tuple[str, bytes] | None = None) -> None:
        if not secret:
            raise ValueError("a webhook needs a secret (alerts.webhook_secret): "
                             "refusing to send unsigned notifications")
        self.url = url
        self._keys: list[tuple[str, bytes]] = [(key_id, secret)]
        if previous is not None and previous[1]:
            self._keys.append(previous)
        self._client = client or httpx.AsyncClient(timeout=timeout_s)
        self._own = client is None

    async def post(self, payload: dict[str, Any], delivery_id: str) -> None:
        body = orjson.dumps(payload)
        ts = int(time.time())
        headers = {
            "Content-Type": "application/json",
            TIMESTAMP_HEADER: str(ts),
            SIGNATURE_HEADER: signature_header(self._keys, body, ts),
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
