"""API keys: format, hashing with a pepper, constant-time verification, roles."""

from __future__ import annotations

import hashlib

import pytest
from pydantic import SecretStr

from ioc.api.auth import (
    ApiKey,
    bearer_token,
    generate_key,
    hash_key,
    key_prefix,
    pepper_bytes,
    settings_pepper,
    verify_key,
)


def test_generated_key_has_its_prefix_and_256_bits() -> None:
    prefix, key = generate_key()
    assert len(prefix) == 8
    assert key.startswith(f"ioc_{prefix}_")
    assert key_prefix(key) == prefix
    assert len(key) >= len("ioc_") + 8 + 1 + 43  # token_urlsafe(32): 43 characters
    assert generate_key()[1] != key


@pytest.mark.parametrize("bad", ["", "ioc_", "ioc_abc", "xyz_0123abcd_secret",
                                 "ioc_0123ABCD_secret", "ioc_0123abcdXsecret",
                                 "ioc_0123abc!_secret"])
def test_malformed_keys_have_no_prefix(bad: str) -> None:
    assert key_prefix(bad) is None


def test_hash_is_sha256_of_pepper_and_key() -> None:
    _, key = generate_key()
    assert hash_key(key, b"pep") == hashlib.sha256(b"pep" + key.encode()).hexdigest()
    assert hash_key(key, b"pep") != hash_key(key, b"other")
    assert hash_key(key, b"") == hashlib.sha256(key.encode()).hexdigest()


def test_verify_accepts_only_the_same_key_and_pepper() -> None:
    _, key = generate_key()
    stored = hash_key(key, b"pepper")
    assert verify_key(key, stored, b"pepper")
    assert not verify_key(key + "x", stored, b"pepper")
    assert not verify_key(key, stored, b"wrong")
    assert not verify_key(key, "0" * 64, b"pepper")


def test_pepper_forms() -> None:
    assert pepper_bytes(None) == b""
    assert pepper_bytes("abc") == b"abc"
    assert pepper_bytes(b"abc") == b"abc"
    assert pepper_bytes(SecretStr("abc")) == b"abc"

    class WithPepper:
        key_pepper = SecretStr("s3cret")

    class WithoutPepper:
        pass

    assert settings_pepper(WithPepper()) == b"s3cret"
    assert settings_pepper(WithoutPepper()) == b""


@pytest.mark.parametrize(("header", "token"), [
    ("Bearer abc", "abc"), ("bearer  abc ", "abc"), ("Basic abc", None), ("Bearer", None),
    ("", None), (None, None),
])
def test_bearer_token(header: str | None, token: str | None) -> None:
    assert bearer_token(header) == token


def _key(role: str) -> ApiKey:
    return ApiKey(id=1, prefix="0123abcd", name="k", role=role,  # type: ignore[arg-type]
                  department=None, feeds=frozenset())


def test_operator_roles_are_ordered() -> None:
    assert _key("admin").at_least("operator") and _key("admin").at_least("viewer")
    assert _key("operator").at_least("operator") and not _key("operator").at_least("admin")
    assert _key("viewer").at_least("viewer") and not _key("viewer").at_least("operator")
    assert not _key("department").at_least("viewer")
