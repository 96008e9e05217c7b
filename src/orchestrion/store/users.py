"""Users and API keys (keys stored as SHA-256 digests, looked up by prefix)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from orchestrion.domain.tasks import utcnow
from orchestrion.store.database import WriteTx
from orchestrion.store.models import ApiKeyRow, UserRow


@dataclass(frozen=True, kw_only=True)
class User:
    """An account."""

    id: str
    name: str
    role: str
    disabled: bool = False
    password_hash: str | None = None


def _user(row: UserRow) -> User:
    return User(
        id=row.id, name=row.name, role=row.role, disabled=row.disabled, password_hash=row.password_hash
    )


async def create_user(tx: WriteTx, *, name: str, role: str, password_hash: str | None = None) -> User:
    """Insert a user."""
    row = UserRow(
        id=str(uuid.uuid4()), name=name, role=role, password_hash=password_hash, created_at=utcnow()
    )
    tx.session.add(row)
    await tx.session.flush()
    return _user(row)


async def add_api_key(tx: WriteTx, *, user_id: str, prefix: str, key_hash: str, name: str = "default") -> str:
    """Record a key digest for a user; returns the key's id."""
    key_id = str(uuid.uuid4())
    tx.session.add(
        ApiKeyRow(
            id=key_id, user_id=user_id, prefix=prefix, key_hash=key_hash, name=name, created_at=utcnow()
        )
    )
    return key_id


async def get_user(session: AsyncSession, user_id: str) -> User | None:
    """A user by id."""
    row = await session.get(UserRow, user_id)
    return _user(row) if row else None


async def get_user_by_name(session: AsyncSession, name: str) -> User | None:
    """A user by name."""
    row = (await session.execute(select(UserRow).where(UserRow.name == name))).scalar_one_or_none()
    return _user(row) if row else None


async def find_key_candidates(session: AsyncSession, prefix: str) -> list[tuple[str, User]]:
    """(key digest, owner) of every live key with this prefix."""
    query = (
        select(ApiKeyRow.key_hash, UserRow)
        .join(UserRow, UserRow.id == ApiKeyRow.user_id)
        .where(ApiKeyRow.prefix == prefix, ApiKeyRow.revoked_at.is_(None))
    )
    return [(key_hash, _user(row)) for key_hash, row in (await session.execute(query)).all()]


async def admin_exists(session: AsyncSession) -> bool:
    """Whether any admin account exists."""
    query = select(UserRow.id).where(UserRow.role == "admin").limit(1)
    return (await session.execute(query)).scalar_one_or_none() is not None
