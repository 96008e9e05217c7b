"""Dependencies: the runtime and the authenticated caller, as `Annotated` aliases."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from orchestrion.engines.coordinator import Caller
from orchestrion.exceptions import AuthError, PermissionDeniedError
from orchestrion.runtime import Runtime
from orchestrion.security import (
    KEY_PREFIX,
    api_key_prefix,
    decode_access_token,
    digest_api_key,
    digests_match,
)
from orchestrion.store import users as user_store


def get_runtime(request: Request) -> Runtime:
    """The runtime this app was built with."""
    runtime: Runtime = request.app.state.runtime
    return runtime


RuntimeDep = Annotated[Runtime, Depends(get_runtime)]


def bearer_token(request: Request) -> str:
    """The Bearer credential of the request; AuthError when absent."""
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise AuthError("missing credentials: send 'Authorization: Bearer <api key or access token>'")
    return token.strip()


async def authenticate(runtime: Runtime, token: str) -> Caller:
    """Resolve an API key or a JWT to a caller."""
    if token.startswith(KEY_PREFIX):
        digest = digest_api_key(token)
        prefix = api_key_prefix(token)
        candidates = await runtime.db.read(lambda conn: user_store.find_key_candidates(conn, prefix))
        for stored, user in candidates:
            if digests_match(stored, digest) and not user.disabled:
                return Caller(user_id=user.id, role=user.role)
        raise AuthError("invalid API key")
    claims = decode_access_token(token, secret=runtime.jwt_secret)
    user_id = str(claims["sub"])
    owner = await runtime.db.read(lambda conn: user_store.get_user(conn, user_id))
    if owner is None or owner.disabled:
        raise AuthError("invalid access token")
    return Caller(user_id=owner.id, role=owner.role)


async def get_caller(request: Request, runtime: RuntimeDep) -> Caller:
    """The authenticated caller."""
    return await authenticate(runtime, bearer_token(request))


CallerDep = Annotated[Caller, Depends(get_caller)]


async def get_operator(caller: CallerDep) -> Caller:
    """A caller allowed to change things (admin or operator)."""
    if caller.role not in ("admin", "operator"):
        raise PermissionDeniedError(
            "this action needs the operator or admin role", details={"role": caller.role}
        )
    return caller


async def get_admin(caller: CallerDep) -> Caller:
    """An admin caller."""
    if caller.role != "admin":
        raise PermissionDeniedError("this action needs the admin role", details={"role": caller.role})
    return caller


OperatorDep = Annotated[Caller, Depends(get_operator)]
AdminDep = Annotated[Caller, Depends(get_admin)]
