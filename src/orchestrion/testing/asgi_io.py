"""Bare ASGI plumbing for the vendor test server: read a body, wait, answer, or drop the connection.

The server skips Starlette: the benchmark measures router overhead against it, and dropping a
connection without a response needs uvicorn's own `send` (see `drop_connection`).
"""

from __future__ import annotations

import asyncio
import json
import socket
import struct
from collections.abc import Awaitable, Callable, Iterable, MutableMapping, Sequence
from http import HTTPStatus
from typing import Any

Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
Header = tuple[bytes, bytes]

JSON_TYPE = b"application/json"
HTML_TYPE = b"text/html; charset=utf-8"


def load_object(raw: bytes) -> dict[str, Any] | None:
    """The JSON object in `raw`, or None when it is not JSON or not an object."""
    try:
        value = json.loads(raw)
    except ValueError:
        return None
    return value if isinstance(value, dict) else None


async def read_body(receive: Receive) -> bytes | None:
    """The whole request body, or None when the client went away first."""
    message = await receive()
    if message["type"] == "http.disconnect":
        return None
    body: bytes = message.get("body", b"")
    if not message.get("more_body", False):
        return body
    chunks = [body]
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return None
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            return b"".join(chunks)


async def pause(receive: Receive, seconds: float) -> bool:
    """Wait `seconds`; False as soon as the client disconnects (then there is nobody to answer)."""
    try:
        async with asyncio.timeout(seconds):
            while (await receive())["type"] != "http.disconnect":
                pass
    except TimeoutError:
        return True
    return False


async def send_body(
    send: Send, status: int, content_type: bytes, body: bytes, headers: Sequence[Header] = ()
) -> None:
    """A complete response with a content length."""
    start = [(b"content-type", content_type), (b"content-length", str(len(body)).encode()), *headers]
    await send({"type": "http.response.start", "status": status, "headers": start})
    await send({"type": "http.response.body", "body": body})


async def send_stream(send: Send, content_type: bytes, events: Iterable[bytes]) -> None:
    """A 200 response carrying `events` one body chunk each, then a clean end of the body."""
    # Without a content-length uvicorn sends the body chunked, one chunk per event, like a vendor.
    start = [(b"content-type", content_type), (b"cache-control", b"no-cache")]
    await send({"type": "http.response.start", "status": 200, "headers": start})
    for event in events:
        await send({"type": "http.response.body", "body": event, "more_body": True})
    await send({"type": "http.response.body", "body": b""})


async def drop_connection(send: Send, receive: Receive, *, reset: bool) -> None:
    """Drop the connection without a response: a TCP RST when `reset`, else a plain close (FIN).

    ASGI has no way to do this (an app that returns without responding gets a 500 from uvicorn), so
    reach uvicorn's transport through its `send`, a bound method of the request cycle.
    """
    transport = getattr(getattr(send, "__self__", None), "transport", None)
    if transport is None:
        # Not uvicorn's own `send`: start a response and never finish it, so the server has to
        # close the connection mid-response. The client still sees a protocol error.
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"1")]})
        return
    if reset:
        sock = transport.get_extra_info("socket")
        if sock is not None:
            # A zero linger time makes close() send RST instead of FIN.
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        transport.abort()
    else:
        transport.close()
    # Wait until uvicorn has noticed the connection is gone, or it would try to answer with a 500.
    await pause(receive, 1.0)


def html_page(status: int) -> bytes:
    """An error page like the one nginx shows when the upstream fails."""
    try:
        phrase = HTTPStatus(status).phrase
    except ValueError:
        phrase = "Error"
    title = f"{status} {phrase}"
    return (
        f"<html>\r\n<head><title>{title}</title></head>\r\n<body>\r\n<center><h1>{title}</h1></center>\r\n"
        "<hr><center>nginx</center>\r\n</body>\r\n</html>\r\n"
    ).encode()
