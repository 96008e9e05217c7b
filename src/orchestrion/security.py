"""Credentials: argon2 password hashes, API keys (shown once, stored as SHA-256) and JWT access tokens."""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
import stat
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import jwt
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from orchestrion.domain.tasks import utcnow
from orchestrion.exceptions import AuthError

ROLES = ("admin", "operator", "viewer")
KEY_PREFIX = "orc_"
_PREFIX_LENGTH = 12
_hasher = PasswordHasher()


def hash_password(password: str) -> str:
    """An argon2id hash of `password`."""
    return _hasher.hash(password)


def verify_password(password_hash: str, password: str) -> bool:
    """True when `password` matches `password_hash`."""
    try:
        return _hasher.verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


@dataclass(frozen=True, kw_only=True)
class NewApiKey:
    """A freshly generated key: `key` is shown once; only `prefix` and `digest` are stored."""

    key: str
    prefix: str
    digest: str


def new_api_key() -> NewApiKey:
    """Generate a random API key (256 bits)."""
    key = KEY_PREFIX + secrets.token_urlsafe(32)
    return NewApiKey(key=key, prefix=key[:_PREFIX_LENGTH], digest=digest_api_key(key))


def key_from_secret(key: str) -> NewApiKey:
    """Wrap an operator-supplied key (ORCHESTRION_ADMIN_API_KEY) for storage."""
    if len(key) < 24:
        raise AuthError("ORCHESTRION_ADMIN_API_KEY must be at least 24 characters")
    return NewApiKey(key=key, prefix=key[:_PREFIX_LENGTH], digest=digest_api_key(key))


def api_key_prefix(key: str) -> str:
    """The lookup prefix of a presented key."""
    return key[:_PREFIX_LENGTH]


def digest_api_key(key: str) -> str:
    """SHA-256 hex digest: keys are high-entropy, so a fast hash is the right tool here."""
    return hashlib.sha256(key.encode()).hexdigest()


def digests_match(a: str, b: str) -> bool:
    """Constant-time comparison."""
    return hmac.compare_digest(a, b)


def create_access_token(*, user_id: str, role: str, secret: str, ttl_seconds: int) -> str:
    """A signed HS256 JWT for `user_id`."""
    now = utcnow()
    claims = {
        "sub": user_id,
        "role": role,
        "iat": now,
        "exp": now + timedelta(seconds=ttl_seconds),
        "typ": "access",
    }
    return jwt.encode(claims, secret, algorithm="HS256")


def decode_access_token(token: str, *, secret: str) -> dict[str, Any]:
    """Verify and decode a token; AuthError when invalid or expired."""
    try:
        claims: dict[str, Any] = jwt.decode(
            token, secret, algorithms=["HS256"], options={"require": ["exp", "sub"]}
        )
    except jwt.ExpiredSignatureError as exc:
        raise AuthError("access token expired") from exc
    except jwt.InvalidTokenError as exc:
        raise AuthError("invalid access token") from exc
    if claims.get("typ") != "access":
        raise AuthError("invalid access token")
    return claims


def load_or_create_secret(path: Path) -> str:
    """Read the signing key at `path`, creating a random one (mode 0600) the first time."""
    if path.exists():
        return path.read_text().strip()
    path.parent.mkdir(parents=True, exist_ok=True)
    value = secrets.token_urlsafe(48)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, stat.S_IRUSR | stat.S_IWUSR)
    with os.fdopen(fd, "w") as handle:
        handle.write(value)
    return value
