"""MQTT principals: Mosquitto's password file and ACL file, rendered from the registry.

A department ``d`` gets the user ``dept-<d>`` (like its Kafka principal) and may only
*publish* to ``<root>/<d>/<feed>/<source_id>`` for each feed it is registered for
(``departments.feeds``); it may subscribe to nothing. The bridge users (role
``bridge``) may subscribe to ``<root>/#`` (shared subscriptions included) and publish
nothing. Mosquitto denies whatever the ACL file does not grant, so no department can
read another's data or publish under another's prefix: the topic a message arrives
on names the department that sent it.

Passwords are generated here, shown once and stored only as Mosquitto's own hash
(``$7$``: PBKDF2-HMAC-SHA512, 12-byte salt, 64-byte key), never passed to a command
line. :func:`write_files` writes both files atomically with mode 0600; Mosquitto
re-reads them on SIGHUP.
"""

from __future__ import annotations

import base64
import hashlib
import os
import re
import secrets
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final, Literal

import psycopg

from ioccore.errors import ConfigError

ITERATIONS: Final = 101
"""Mosquitto 2.0's default for ``$7$`` hashes (its own check stays cheap per CONNECT)."""
USERNAME: Final = re.compile(r"^[a-z0-9][a-z0-9_.-]{0,63}$")
Role = Literal["department", "bridge"]


@dataclass(frozen=True, slots=True)
class MqttUser:
    username: str
    role: str
    department: str | None
    password_hash: str


def hash_password(password: str, *, salt: bytes | None = None,
                  iterations: int = ITERATIONS) -> str:
    """Mosquitto's ``$7$<iterations>$<salt b64>$<hash b64>`` of ``password``."""
    salt = salt if salt is not None else secrets.token_bytes(12)
    key = hashlib.pbkdf2_hmac("sha512", password.encode(), salt, iterations, dklen=64)
    return (f"$7${iterations}${base64.b64encode(salt).decode()}$"
            f"{base64.b64encode(key).decode()}")


def department_user(code: str) -> str:
    return f"dept-{code}"


def render_passwd(users: Sequence[MqttUser]) -> str:
    return "".join(f"{u.username}:{u.password_hash}\n" for u in sorted(
        users, key=lambda u: u.username))


def render_acl(users: Sequence[MqttUser], feeds: Mapping[str, Sequence[str]],
               root: str) -> str:
    """The ACL file: per user exactly its topics (``feeds``: department -> its feeds)."""
    lines = ["# Rendered by `ioc mqtt sync` from the registry; edits are overwritten.",
             "# Nothing is allowed that is not listed here (Mosquitto's acl_file)."]
    for u in sorted(users, key=lambda u: u.username):
        lines += ["", f"user {u.username}"]
        if u.role == "bridge":
            lines.append(f"topic read {root}/#")
        elif u.department is not None:
            for feed in sorted(feeds.get(u.department, ())):
                lines.append(f"topic write {root}/{u.department}/{feed}/+")
    return "\n".join(lines) + "\n"


def _atomic_write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        os.fchmod(fd, 0o600)
        with os.fdopen(fd, "w") as out:
            out.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_files(passwd: Path, acl: Path, users: Sequence[MqttUser],
                feeds: Mapping[str, Sequence[str]], root: str) -> None:
    _atomic_write(passwd, render_passwd(users))
    _atomic_write(acl, render_acl(users, feeds, root))


# ------------------------------------------------------------------ the registry
def create_user(conn: psycopg.Connection[Any], *, role: Role, department: str | None = None,
                username: str | None = None, password: str | None = None) -> tuple[str, str]:
    """Create or re-key a user; returns ``(username, password)`` (shown once)."""
    if role == "department":
        if not department:
            raise ConfigError("a department MQTT user needs its department")
        found = conn.execute("SELECT 1 FROM departments WHERE code = %s",
                             (department,)).fetchone()
        if found is None:
            raise ConfigError(f"department {department!r} is not registered")
        username = username or department_user(department)
    elif not username:
        raise ConfigError("a bridge MQTT user needs a username")
    if not USERNAME.match(username):
        raise ConfigError(f"MQTT username {username!r} must match {USERNAME.pattern}")
    secret = password or secrets.token_urlsafe(32)
    conn.execute(
        "INSERT INTO mqtt_users (username, role, department, password_hash) "
        "VALUES (%s, %s, %s, %s) ON CONFLICT (username) DO UPDATE SET "
        "role = excluded.role, department = excluded.department, "
        "password_hash = excluded.password_hash, rotated_at = now()",
        (username, role, department if role == "department" else None,
         hash_password(secret)))
    return username, secret


def delete_user(conn: psycopg.Connection[Any], username: str) -> bool:
    cur = conn.execute("DELETE FROM mqtt_users WHERE username = %s", (username,))
    return cur.rowcount > 0


def load(conn: psycopg.Connection[Any]) -> tuple[list[MqttUser], dict[str, list[str]]]:
    """Every MQTT user, and every department's feeds."""
    users = [MqttUser(*row) for row in conn.execute(
        "SELECT username, role, department, password_hash FROM mqtt_users "
        "ORDER BY username").fetchall()]
    feeds = {code: list(f) for code, f in conn.execute(
        "SELECT code, feeds FROM departments").fetchall()}
    return users, feeds


def sync(conn: psycopg.Connection[Any], passwd: Path, acl: Path, root: str,
         extra: Sequence[MqttUser] = ()) -> int:
    """Render both files from the registry (plus ``extra`` users); how many users."""
    users, feeds = load(conn)
    known = {u.username for u in users}
    users += [u for u in extra if u.username not in known]
    write_files(passwd, acl, users, feeds, root)
    return len(users)
