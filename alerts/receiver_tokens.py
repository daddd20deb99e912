"""Bearer tokens of Alertmanager's webhook receivers (config/alertmanager/).

Alertmanager cannot sign a webhook body; each webhook receiver instead presents a bearer
token read from ``credentials_file`` (``<receiver>.token``), and ioc's
``POST /v1/alertmanager/webhook/<receiver>`` compares it, in constant time, with the
same file in ``alerts.receiver_tokens_dir``. One token per receiver: a department's
credential can only ever record notifications as that department's receiver.
"""

from __future__ import annotations

import hmac
import os
import re
import secrets
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

RECEIVER = re.compile(r"^[a-z0-9][a-z0-9-]{0,62}$")
"""What a receiver name may be here (it names a file)."""
MAX_TOKEN_BYTES = 512


@dataclass(frozen=True, slots=True)
class WebhookReceiver:
    """One ``webhook_configs`` entry of an Alertmanager configuration."""

    receiver: str
    url: str
    credentials_file: str | None


def webhook_receivers(config: Mapping[str, Any]) -> list[WebhookReceiver]:
    """Every webhook of a parsed Alertmanager configuration, in file order."""
    out: list[WebhookReceiver] = []
    for receiver in config.get("receivers") or []:
        for hook in receiver.get("webhook_configs") or []:
            auth = (hook.get("http_config") or {}).get("authorization") or {}
            out.append(WebhookReceiver(str(receiver["name"]), str(hook["url"]),
                                       auth.get("credentials_file")))
    return out


def token_path(directory: Path, receiver: str) -> Path:
    if not RECEIVER.match(receiver):
        raise ValueError(f"{receiver!r} is not a usable receiver name")
    return directory / f"{receiver}.token"


def ensure_tokens(directory: Path, receivers: Iterable[str]) -> list[str]:
    """Write a random token for each receiver that has none (mode 0600); the names
    written. Existing tokens are kept, so Alertmanager and the API keep agreeing."""
    directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    made: list[str] = []
    for name in receivers:
        path = token_path(directory, name)
        if path.exists() and path.stat().st_size > 0:
            continue
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(secrets.token_urlsafe(32))
        made.append(name)
    return made


def read_token(directory: Path, receiver: str) -> bytes | None:
    """The receiver's token (surrounding whitespace removed), None when it has none."""
    try:
        path = token_path(directory, receiver)
        with path.open("rb") as fh:
            token = fh.read(MAX_TOKEN_BYTES + 1).strip()
    except (OSError, ValueError):
        return None
    return token if 0 < len(token) <= MAX_TOKEN_BYTES else None


def token_matches(directory: Path, receiver: str, presented: str) -> bool:
    """True when ``presented`` is the receiver's token (constant-time comparison)."""
    held = read_token(directory, receiver)
    if held is None:
        hmac.compare_digest(b"x" * 43, presented.encode())  # same work when unknown
        return False
    return hmac.compare_digest(held, presented.encode())
