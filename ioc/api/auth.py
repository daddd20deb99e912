"""API keys: generation, hashing, verification, lookup and roles.

A key looks like ``ioc_<prefix>_<secret>``: ``prefix`` is 8 hex characters kept in
clear in ``api_keys.prefix`` (to find the row and tell keys apart), ``secret`` 43
URL-safe characters (256 random bits). Only ``SHA-256(pepper || key)`` is stored; the
pepper is a server-side secret (``IOC__API__KEY_PEPPER`` once the settings carry it,
see :func:`pepper_bytes`). Hashes are compared in constant time. Since keys carry 256
bits of entropy, a fast hash is enough: nothing can be guessed offline.

Roles: ``department`` publishes events (for its own department only); ``viewer`` <
``operator`` < ``admin`` use the operator API. ``admin`` can do whatever ``operator``
can, which can do whatever ``viewer`` can. A department key has no operator rights.
``responder`` is a department's people (docs/incidents.md): they see and act on their
department's incidents and alerts only; no ingest, no operator rights.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Final, Literal

import psycopg
from psycopg.types.json import Jsonb
from psycopg_pool import AsyncConnectionPool
from pydantic import SecretStr

from ioccore.errors import StorageError

Role = Literal["department", "responder", "viewer", "operator", "admin"]
ROLES: Final[tuple[Role, ...]] = ("department", "responder", "viewer", "operator", "admin")
OperatorRole = Literal["viewer", "operator", "admin"]
OPERATOR_RANK: Final[dict[str, int]] = {"viewer": 1, "operator": 2, "admin": 3}

KEY_SCHEME: Final = "ioc"
PREFIX_LEN: Final = 8
_DUMMY_HASH: Final = "0" * 64


@dataclass(frozen=True, slots=True)
class ApiKey:
    """A verified key: who is calling and what they may do."""

    id: int
    prefix: str
    name: str
    role: Role
    department: str | None
    feeds: frozenset[str]
    """The department's feeds (empty for keys without a department)."""

    def at_least(self, role: OperatorRole) -> bool:
        """True when this key's operator role is ``role`` or above."""
        return OPERATOR_RANK.get(self.role, 0) >= OPERATOR_RANK[role]


def pepper_bytes(pepper: SecretStr | str | bytes | None) -> bytes:
    """The pepper as bytes; ``None`` (not configured) is the empty pepper.

    Takes the value as an argument (only :mod:`ioccore.settings` reads the environment):
    callers pass ``getattr(settings.api, "key_pepper", None)``.
    """
    if pepper is None:
        return b""
    if isinstance(pepper, SecretStr):
        return pepper.get_secret_value().encode()
    if isinstance(pepper, str):
        return pepper.encode()
    return pepper


def settings_pepper(api_settings: Any) -> bytes:
    """The pepper from ``settings.api.key_pepper`` when that field exists."""
    return pepper_bytes(getattr(api_settings, "key_pepper", None))


def generate_key() -> tuple[str, str]:
    """A new ``(prefix, key)``; the key is shown once and never stored."""
    prefix = secrets.token_hex(PREFIX_LEN // 2)
    return prefix, f"{KEY_SCHEME}_{prefix}_{secrets.token_urlsafe(32)}"


def key_prefix(key: str) -> str | None:
    """The prefix of a well-formed key, else ``None``."""
    scheme, sep, rest = key.partition("_")
    if scheme != KEY_SCHEME or not sep or len(rest) < PREFIX_LEN + 2:
        return None
    prefix, sep2 = rest[:PREFIX_LEN], rest[PREFIX_LEN]
    if sep2 != "_" or any(c not in "0123456789abcdef" for c in prefix):
        return None
    return prefix


def hash_key(key: str, pepper: bytes) -> str:
    """Hex SHA-256 of ``pepper || key`` (what ``api_keys.key_hash`` stores)."""
    return hashlib.sha256(pepper + key.encode()).hexdigest()


def verify_key(key: str, stored_hash: str, pepper: bytes) -> bool:
    """Constant-time comparison of ``key`` against a stored hash."""
    return hmac.compare_digest(hash_key(key, pepper), stored_hash)


def bearer_token(authorization: str | None) -> str | None:
    """The token of an ``Authorization: Bearer <token>`` header, else ``None``."""
    if not authorization:
        return None
    scheme, _, token = authorization.strip().partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return token.strip()


# --------------------------------------------------------------------------- lookup
_LOOKUP = """
SELECT k.id, k.prefix, k.key_hash, k.name, k.role, k.department,
       coalesce(d.feeds, ARRAY[]::text[])
FROM api_keys k LEFT JOIN departments d ON d.code = k.department
WHERE k.prefix = %s AND k.revoked_at IS NULL
"""


SEEN_VALID_S: Final = 600.0
"""How long a verified key is spared the per-address throttle of keyless requests."""


class KeyStore:
    """Verifies presented keys against ``api_keys``, with a short cache.

    A verified key is cached for ``ttl_s`` seconds (so a revocation takes effect
    within that time); unknown keys are cached as unknown for the same time so a
    client hammering with a bad key does not hammer the database.
    """

    def __init__(self, pool: AsyncConnectionPool[Any], pepper: bytes, *, ttl_s: float = 5.0,
                 max_entries: int = 10_000,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._pool = pool
        self._pepper = pepper
        self._ttl = ttl_s
        self._max = max_entries
        self._clock = clock
        self._cache: dict[str, tuple[ApiKey | None, float]] = {}
        self._seen_valid: dict[str, float] = {}
        """Digests of keys verified within ``SEEN_VALID_S``: only to spare them the
        per-address throttle of keyless requests (authentication still looks them up)."""

    async def authenticate(self, token: str) -> ApiKey | None:
        """The key's identity, or ``None`` when unknown, revoked or malformed."""
        digest = hash_key(token, self._pepper)
        now = self._clock()
        hit = self._cache.get(digest)
        if hit is not None and hit[1] > now:
            return hit[0]
        key = await self._lookup(token)
        if len(self._cache) >= self._max:
            self._cache.clear()
        self._cache[digest] = (key, now + self._ttl)
        if key is not None:
            if len(self._seen_valid) >= self._max:
                self._seen_valid.clear()
            self._seen_valid[digest] = now + SEEN_VALID_S
        return key

    def seen_valid(self, token: str) -> bool:
        """Whether this token was a valid key within ``SEEN_VALID_S`` (no database)."""
        until = self._seen_valid.get(hash_key(token, self._pepper))
        return until is not None and until > self._clock()

    def forget(self) -> None:
        self._cache.clear()

    async def _lookup(self, token: str) -> ApiKey | None:
        prefix = key_prefix(token)
        if prefix is None:
            verify_key(token, _DUMMY_HASH, self._pepper)  # same work as a real check
            return None
        async with self._pool.connection() as conn:
            cur = await conn.execute(_LOOKUP, (prefix,))
            row = await cur.fetchone()
        if row is None:
            verify_key(token, _DUMMY_HASH, self._pepper)
            return None
        if not verify_key(token, str(row[2]), self._pepper):
            return None
        return ApiKey(id=int(row[0]), prefix=str(row[1]), name=str(row[3]), role=row[4],
                      department=row[5], feeds=frozenset(row[6]))


# --------------------------------------------------------------------------- admin (sync)
@dataclass(frozen=True, slots=True)
class KeyInfo:
    """A stored key as listed to an administrator (never the key itself)."""

    prefix: str
    name: str
    role: str
    department: str | None
    created_at: str
    revoked_at: str | None


class UnknownDepartmentError(LookupError):
    """``create_key`` for a department that is not in ``departments``."""


def ensure_department(conn: psycopg.Connection[Any], code: str, feeds: Sequence[str],
                      name: str | None = None) -> None:
    """Create the department, or set its feeds when it exists."""
    conn.execute(
        "INSERT INTO departments (code, name, feeds) VALUES (%s, %s, %s)"
        " ON CONFLICT (code) DO UPDATE SET feeds = excluded.feeds,"
        " name = coalesce(%s, departments.name)",
        (code, name or code, list(feeds), name))


def create_key(conn: psycopg.Connection[Any], *, role: Role, department: str | None,
               name: str | None, pepper: bytes, actor: str = "cli") -> tuple[KeyInfo, str]:
    """Store a new key and return it with the clear key (show it once, then forget it)."""
    if role not in ROLES:
        raise ValueError(f"role must be one of {', '.join(ROLES)}")
    if role in ("department", "responder") and not department:
        raise ValueError(f"a {role} key needs --department")
    if department is not None:
        found = conn.execute("SELECT 1 FROM departments WHERE code = %s",
                             (department,)).fetchone()
        if found is None:
            raise UnknownDepartmentError(department)
    prefix, key = generate_key()
    label = name or f"{department or role}-{prefix}"
    with conn.transaction():
        row = conn.execute(
            "INSERT INTO api_keys (prefix, key_hash, role, department, name)"
            " VALUES (%s, %s, %s, %s, %s) RETURNING created_at::text",
            (prefix, hash_key(key, pepper), role, department, label)).fetchone()
        _audit(conn, actor, "api_key.create", prefix,
               {"name": label, "role": role, "department": department})
    if row is None:
        raise StorageError("INSERT INTO api_keys returned no row")
    return KeyInfo(prefix, label, role, department, str(row[0]), None), key


def revoke_key(conn: psycopg.Connection[Any], prefix: str, *, actor: str = "cli") -> bool:
    """Revoke a key by prefix; False when no active key has that prefix."""
    with conn.transaction():
        row = conn.execute(
            "UPDATE api_keys SET revoked_at = now() WHERE prefix = %s AND revoked_at IS NULL"
            " RETURNING name", (prefix,)).fetchone()
        if row is not None:
            _audit(conn, actor, "api_key.revoke", prefix, {"name": row[0]})
    return row is not None


def list_keys(conn: psycopg.Connection[Any]) -> list[KeyInfo]:
    rows = conn.execute(
        "SELECT prefix, name, role, department, created_at::text, revoked_at::text"
        " FROM api_keys ORDER BY created_at").fetchall()
    return [KeyInfo(str(r[0]), str(r[1]), str(r[2]), r[3], str(r[4]), r[5]) for r in rows]


def _audit(conn: psycopg.Connection[Any], actor: str, action: str, target: str,
           detail: dict[str, Any]) -> None:
    """Audit key administration when the alerts schema (audit_log) is there."""
    exists = conn.execute("SELECT to_regclass('audit_log')").fetchone()
    if exists is None or exists[0] is None:
        return
    conn.execute("INSERT INTO audit_log (actor, action, target, detail)"
                 " VALUES (%s, %s, %s, %s)",
                 (actor, action, target, Jsonb(detail)))
