"""Credentials: hashing, keys, tokens, and the signing-key file."""

from __future__ import annotations

import stat
from pathlib import Path

import jwt
import pytest

from orchestrion.exceptions import AuthError
from orchestrion.security import (
    create_access_token,
    decode_access_token,
    digest_api_key,
    hash_password,
    key_from_secret,
    load_or_create_secret,
    new_api_key,
    verify_password,
)


def test_passwords_hash_with_argon2_and_verify() -> None:
    hashed = hash_password("correct horse")
    assert hashed.startswith("$argon2") and "correct horse" not in hashed
    assert verify_password(hashed, "correct horse")
    assert not verify_password(hashed, "wrong")
    assert not verify_password("not-a-hash", "x")


def test_api_keys_are_random_and_stored_as_digests() -> None:
    a, b = new_api_key(), new_api_key()
    assert a.key != b.key and a.key.startswith("orc_") and len(a.key) > 40
    assert a.digest == digest_api_key(a.key) and a.key not in a.digest
    with pytest.raises(AuthError):
        key_from_secret("short")


def test_tokens_verify_and_expire_and_reject_tampering() -> None:
    token = create_access_token(user_id="u1", role="admin", secret="s" * 40, ttl_seconds=60)
    assert decode_access_token(token, secret="s" * 40)["sub"] == "u1"
    with pytest.raises(AuthError):
        decode_access_token(token, secret="x" * 40)
    expired = create_access_token(user_id="u1", role="admin", secret="s" * 40, ttl_seconds=-1)
    with pytest.raises(AuthError, match="expired"):
        decode_access_token(expired, secret="s" * 40)
    unsigned = jwt.encode({"sub": "u1", "exp": 9999999999, "typ": "access"}, key=None, algorithm="none")
    with pytest.raises(AuthError):
        decode_access_token(unsigned, secret="s" * 40)


def test_signing_key_is_created_once_with_private_mode(tmp_path: Path) -> None:
    path = tmp_path / "home" / "jwt_secret"
    first = load_or_create_secret(path)
    assert load_or_create_secret(path) == first and len(first) >= 48
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
