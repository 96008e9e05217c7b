"""/api/v1/auth/token and /api/v1/users."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Body, Request

from orchestrion.api.deps import AdminDep, RuntimeDep, authenticate, bearer_token
from orchestrion.api.schemas import TokenCreate, TokenPublic, UserCreate, UserCreated
from orchestrion.exceptions import AuthError, ConflictError
from orchestrion.security import create_access_token, verify_password
from orchestrion.store import users as user_store

router = APIRouter(tags=["auth"])


@router.post("/auth/token", response_model=TokenPublic)
async def create_token(
    request: Request, runtime: RuntimeDep, body: Annotated[TokenCreate | None, Body()] = None
) -> TokenPublic:
    """A JWT access token, for a username and password or in exchange for a Bearer API key."""
    if body is not None:
        name = body.username
        user = await runtime.db.read(lambda conn: user_store.get_user_by_name(conn, name))
        if (
            user is None
            or user.disabled
            or not user.password_hash
            or not verify_password(user.password_hash, body.password)
        ):
            raise AuthError("invalid username or password")
        user_id, role = user.id, user.role
    else:
        caller = await authenticate(runtime, bearer_token(request))
        user_id, role = caller.user_id, caller.role
    ttl = runtime.settings.jwt_ttl_seconds
    token = create_access_token(user_id=user_id, role=role, secret=runtime.jwt_secret, ttl_seconds=ttl)
    return TokenPublic(access_token=token, expires_in=ttl)


@router.post("/users", status_code=201, response_model=UserCreated)
async def create_user(body: UserCreate, _admin: AdminDep, runtime: RuntimeDep) -> UserCreated:
    """Create a user (admin only); the API key is shown once, in this response."""
    name = body.name
    if await runtime.db.read(lambda conn: user_store.get_user_by_name(conn, name)) is not None:
        raise ConflictError(f"user {body.name} already exists", status="exists")
    user, key = await runtime.create_user(name=body.name, role=body.role, password=body.password)
    return UserCreated(id=user.id, name=user.name, role=user.role, api_key=key)
