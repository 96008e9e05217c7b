"""Users and API keys (keys stored as SHA-256 digests, looked up by prefix)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any, cast

from sqlalchemy import Connection, Row, Table, insert, select

from orchestrion.domain.tasks import utcnow
from orchestrion.store.database import WriteTx
from orchestrion.store.models import ApiKeyRow, UserRow

USERS = cast(Table, UserRow.__table__)
KEYS = cast(Table, ApiKeyRow.__table__)


@dataclass(frozen=True, kw_only=True)
class User:
    """An account."""

    id: str
    name: str
    role: str
    disabled: bool = False
    password_hash: str | None = None


def _user(row: Row[Any]) -> User:
    return User(
        id=row.id, name=row.name, role=row.role, disabled=row.disabled, password_hash=row.password_hash
    )


def create_user(tx: WriteTx, *, name: str, role: str, password_hash: str | None = None) -> User:
    """Insert a user."""
    user = User(id=str(uuid.uuid4()), name=name, role=role, password_hash=password_hash)
    tx.conn.execute(
        insert(USERS).values(
            id=user.id, name=name, role=role, password_hash=password_hash, disabled=False, created_at=utcnow()
        )
    )
    return user


def add_api_key(tx: WriteTx, *, user_id: str, prefix: str, key_hash: str, name: str = "default") -> str:
    """Record a key digest for a user; returns the key's id."""
    key_id = str(uuid.uuid4())
    tx.conn.execute(
        insert(KEYS).values(
            id=key_id, user_id=user_id, prefix=prefix, key_hash=key_hash, name=name, created_at=utcnow()
        )
    )
    return key_id


def get_user(conn: Connection, user_id: str) -> User | None:
    """A user by id."""
    row = conn.execute(select(USERS).where(USERS.c.id == user_id)).one_or_none()
    return _user(row) if row else None


def get_user_by_name(conn: Connection, name: str) -> User | None:
    """A user by name."""
    row = conn.execute(select(USERS).where(USERS.c.name == name)).one_or_none()
    return _user(row) if row else None


def find_key_candidates(conn: Connection, prefix: str) -> list[tuple[str, User]]:
    """(key digest, owner) of every live key with this prefix."""
    query = (
        select(KEYS.c.key_hash, *USERS.c)
        .join(USERS, USERS.c.id == KEYS.c.user_id)
        .where(KEYS.c.prefix == prefix, KEYS.c.revoked_at.is_(None))
    )
    return [(row.key_hash, _user(row)) for row in conn.execute(query)]


def admin_exists(conn: Connection) -> bool:
    """Whether any admin account exists."""
    query = select(USERS.c.id).where(USERS.c.role == "admin").limit(1)
    return conn.execute(query).scalar_one_or_none() is not None
