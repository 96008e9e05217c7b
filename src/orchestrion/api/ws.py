"""`/ws`: live task events and notices over one WebSocket (the protocol is docs/websocket.md).

The handler authenticates the client (query parameter `token`, `Authorization: Bearer`, or a first
`auth` message; failure closes with 4401), hands the socket to the runtime's `WebSocketHub`, and
then reads the client's messages until it goes away: `subscribe` (authorised here: a task channel
only for the task's owner or an admin), `unsubscribe`, `ping`, `pong`. Bad input gets an `error`
message naming the field and the valid choices, never a closed socket.
"""

from __future__ import annotations

import asyncio

from fastapi import APIRouter, WebSocket

from orchestrion.api.deps import authenticate
from orchestrion.engines.coordinator import Caller
from orchestrion.exceptions import AuthError, NotFoundError, ValidationError
from orchestrion.realtime.connection import WsConnection
from orchestrion.realtime.protocol import (
    AUTH_TIMEOUT_SECONDS,
    NOTICE_CHANNEL_ROLES,
    ClientMessage,
    CloseCode,
    encode,
    error_message,
    parse_client_message,
    with_id,
)
from orchestrion.runtime import Runtime

router = APIRouter(tags=["websocket"])


@router.websocket("/ws")
async def serve_websocket(websocket: WebSocket) -> None:
    """One client connection, from handshake to close."""
    runtime: Runtime = websocket.app.state.runtime
    await websocket.accept()
    caller = await _authenticate(websocket, runtime)
    if caller is None:
        return
    conn = await runtime.ws_hub.connect(websocket, caller)
    try:
        await _read_messages(websocket, runtime, conn)
    except asyncio.CancelledError:
        # The hub ends a handler this way only when the client would not even take a close frame.
        if not conn.abandoned:
            raise
        task = asyncio.current_task()
        if task is not None:
            task.uncancel()
    finally:
        await conn.aclose()


async def _authenticate(websocket: WebSocket, runtime: Runtime) -> Caller | None:
    """The caller, or None after closing the socket with 4401 (or when the client left)."""
    token = websocket.query_params.get("token") or _bearer(websocket.headers.get("authorization", ""))
    if not token:
        try:
            async with asyncio.timeout(AUTH_TIMEOUT_SECONDS):
                message = await websocket.receive()
        except TimeoutError:
            await _refuse(websocket, runtime, "no auth message in time")
            return None
        if message["type"] == "websocket.disconnect":
            return None
        try:
            request = parse_client_message(message.get("text") or "")
        except ValidationError as exc:
            await _refuse(websocket, runtime, f"first message: {exc.message}")
            return None
        if request.type != "auth" or request.token is None:
            await _refuse(websocket, runtime, "the first message must be auth")
            return None
        token = request.token
    try:
        return await authenticate(runtime, token)
    except AuthError as exc:
        await _refuse(websocket, runtime, exc.message)
        return None


def _bearer(header: str) -> str | None:
    scheme, _, value = header.partition(" ")
    return value.strip() or None if scheme.lower() == "bearer" else None


async def _refuse(websocket: WebSocket, runtime: Runtime, reason: str) -> None:
    runtime.ws_hub.metrics.count_drop("unauthorized")
    # A close reason is at most 123 bytes.
    await websocket.close(CloseCode.UNAUTHORIZED, f"unauthorized: {reason}"[:120])


async def _read_messages(websocket: WebSocket, runtime: Runtime, conn: WsConnection) -> None:
    while True:
        message = await websocket.receive()
        if message["type"] == "websocket.disconnect":
            return
        conn.heard()
        text = message.get("text")
        if text is None:
            conn.send(
                error_message(
                    "validation_error",
                    "binary frames are not supported: send JSON text frames",
                    details={"field": "message"},
                )
            )
            continue
        try:
            request = parse_client_message(text)
        except ValidationError as exc:
            conn.send(error_message(exc.code, exc.message, details=exc.details))
            continue
        await _handle(request, runtime, conn)


async def _handle(request: ClientMessage, runtime: Runtime, conn: WsConnection) -> None:
    hub = runtime.ws_hub
    if request.type == "ping":
        conn.send(encode(with_id({"type": "pong"}, request.id)))
    elif request.type == "auth":
        conn.send(
            error_message(
                "already_authenticated",
                "this connection is authenticated; open a new one to change credentials",
                details={"field": "type"},
                request_id=request.id,
            )
        )
    elif request.type == "subscribe":
        await _subscribe(request, runtime, conn)
    elif request.type == "unsubscribe":
        assert request.channel is not None
        name = request.channel.name
        if hub.unsubscribe(conn, name):
            conn.send(encode(with_id({"type": "unsubscribed", "channel": name}, request.id)))
        else:
            conn.send(
                error_message(
                    "not_subscribed",
                    f"not subscribed to {name}",
                    details={"field": "channel", "channel": name, "choices": sorted(conn.streams)},
                    request_id=request.id,
                )
            )
    # "pong" answers the server's ping: hearing it is all that matters.


async def _subscribe(request: ClientMessage, runtime: Runtime, conn: WsConnection) -> None:
    hub = runtime.ws_hub
    channel = request.channel
    assert channel is not None
    name = channel.name
    if name in conn.streams:
        conn.send(
            error_message(
                "already_subscribed",
                f"already subscribed to {name}; unsubscribe first to start over",
                details={"field": "channel", "channel": name},
                request_id=request.id,
            )
        )
        return
    if len(conn.streams) >= hub.max_subscriptions:
        conn.send(
            error_message(
                "too_many_subscriptions",
                f"at most {hub.max_subscriptions} subscriptions per connection",
                details={"field": "channel", "channel": name, "max": hub.max_subscriptions},
                request_id=request.id,
            )
        )
        return
    if channel.task_id is not None:
        try:
            task = await runtime.coordinator.get(conn.caller, channel.task_id)
        except NotFoundError as exc:
            # The same answer for a task that does not exist and one that is someone else's.
            details = {"field": "channel", "channel": name, **exc.details}
            conn.send(error_message(exc.code, exc.message, details=details, request_id=request.id))
            return
        hub.remember_owner(task.id, task.owner_id)
        if conn.closing or name in conn.streams:
            return
    elif not channel.is_task_stream and conn.caller.role not in NOTICE_CHANNEL_ROLES[name]:
        conn.send(
            error_message(
                "forbidden",
                f"the {conn.caller.role} role may not subscribe to {name}",
                details={"field": "channel", "channel": name, "role": conn.caller.role},
                request_id=request.id,
            )
        )
        return
    replay = hub.subscribe(conn, channel, last_event_id=request.last_event_id, last_seq=request.last_seq)
    # Queued before any event of the stream: its replay and live events wait for the next await.
    conn.send(encode(with_id({"type": "subscribed", "channel": name, "replay": replay}, request.id)))
