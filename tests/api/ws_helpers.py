"""WebSocket test helpers: a live server whose event loop tests can run code on, a schema-checking client."""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import json
from collections.abc import Callable, Coroutine, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import httpx
import jsonschema
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from orchestrion.api.app import create_app
from orchestrion.runtime import Runtime, prepare_database
from tests.conftest import ServerThread, free_port, make_settings, scripted_routes

T = TypeVar("T")
SCHEMA_PATH = Path(__file__).resolve().parents[2] / "docs" / "websocket.schema.json"
SCHEMA: dict[str, Any] = json.loads(SCHEMA_PATH.read_text())
_DEFS = SCHEMA["$defs"]


def _validator(name: str) -> jsonschema.Draft202012Validator:
    return jsonschema.Draft202012Validator({"$ref": f"#/$defs/{name}", "$defs": _DEFS})


SERVER_MESSAGE = _validator("ServerMessage")
CLIENT_MESSAGE = _validator("ClientMessage")
# The definition of each server message type, for precise errors (ServerMessage's oneOf only says "none").
SERVER_DEFS = {
    definition["properties"]["type"]["const"]: _validator(ref["$ref"].rsplit("/", 1)[-1])
    for ref in _DEFS["ServerMessage"]["oneOf"]
    for definition in [_DEFS[ref["$ref"].rsplit("/", 1)[-1]]]
}


def check_server_message(message: dict[str, Any]) -> None:
    """Fail unless `message` is what docs/websocket.schema.json says the server sends."""
    specific = SERVER_DEFS.get(message.get("type", ""))
    assert specific is not None, f"undocumented message type: {message}"
    errors = [e.message for e in specific.iter_errors(message)]
    assert not errors, f"{message} does not match the schema: {errors}"


@dataclass
class WsServer:
    """A real uvicorn server (127.0.0.1) and the loop its runtime lives on."""

    base_url: str
    ws_url: str
    admin_key: str
    runtime: Runtime
    loop: asyncio.AbstractEventLoop

    def http(self, key: str | None = None) -> httpx.AsyncClient:
        token = key if key is not None else self.admin_key
        return httpx.AsyncClient(
            base_url=self.base_url, headers={"Authorization": f"Bearer {token}"}, timeout=30.0
        )

    async def call(self, make: Callable[[], Coroutine[Any, Any, T]]) -> T:
        """Run a coroutine on the server's loop (the runtime's bus and database belong to it)."""

        async def run() -> T:
            return await make()

        return await asyncio.wrap_future(asyncio.run_coroutine_threadsafe(run(), self.loop))

    def metric(self, name: str, labels: dict[str, str] | None = None) -> float:
        value = self.runtime.metrics.registry.get_sample_value(name, labels or {})
        return float(value or 0.0)


@contextlib.contextmanager
def serve_ws(home: Path, **overrides: Any) -> Iterator[WsServer]:
    """Like `tests.conftest.serve`, exposing the server's event loop too."""
    settings = make_settings(home, **overrides)
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        pool.submit(prepare_database, settings).result()
    app = create_app(settings, routes=scripted_routes())
    port = free_port()
    thread = ServerThread(app, port)
    thread.start()
    try:
        assert settings.admin_api_key is not None
        yield WsServer(
            base_url=f"http://127.0.0.1:{port}",
            ws_url=f"ws://127.0.0.1:{port}/ws",
            admin_key=settings.admin_api_key.get_secret_value(),
            runtime=app.state.runtime,
            loop=thread.server.servers[0].get_loop(),
        )
    finally:
        thread.stop()


class WsClient:
    """A `websockets` client speaking the protocol; every message received is checked against the schema.

    Server pings are answered (unless `answer_pings` is False) and kept out of `recv`'s results.
    """

    def __init__(self, ws: ClientConnection, *, answer_pings: bool = True) -> None:
        self.ws = ws
        self.answer_pings = answer_pings
        self.pings = 0
        self.log: list[dict[str, Any]] | None = None  # set to a list to keep every message received

    async def send(self, **message: Any) -> None:
        CLIENT_MESSAGE.validate(message)
        await self.ws.send(json.dumps(message))

    async def recv(self, *, timeout: float = 10.0) -> dict[str, Any]:
        async with asyncio.timeout(timeout):
            while True:
                message = json.loads(await self.ws.recv())
                check_server_message(message)
                if self.log is not None:
                    self.log.append(message)
                if message["type"] == "ping":
                    self.pings += 1
                    if self.answer_pings:
                        await self.send(type="pong")
                    continue
                return dict(message)

    async def recv_until(
        self, done: Callable[[dict[str, Any]], bool], *, timeout: float = 15.0
    ) -> list[dict[str, Any]]:
        """Messages up to and including the first for which `done` is true."""
        received: list[dict[str, Any]] = []
        async with asyncio.timeout(timeout):
            while True:
                message = await self.recv(timeout=timeout)
                received.append(message)
                if done(message):
                    return received

    async def expect(self, type_: str, *, timeout: float = 10.0) -> dict[str, Any]:
        """The next message, which must be of `type_`."""
        message = await self.recv(timeout=timeout)
        assert message["type"] == type_, message
        return message

    async def next_of(self, type_: str, *, timeout: float = 10.0) -> dict[str, Any]:
        """The next control message, which must be of `type_`; events and notices before it are skipped."""
        async with asyncio.timeout(timeout):
            while True:
                message = await self.recv(timeout=timeout)
                if "created_at" not in message:
                    assert message["type"] == type_, message
                    return message

    async def closed_code(self, *, timeout: float = 10.0) -> int:
        """Read until the server closes; its close code."""
        try:
            async with asyncio.timeout(timeout):
                while True:
                    await self.recv(timeout=timeout)
        except ConnectionClosed as exc:
            assert exc.rcvd is not None, "closed without a close frame"
            return exc.rcvd.code
        raise AssertionError("unreachable")


@contextlib.asynccontextmanager
async def ws_client(
    server: WsServer,
    key: str | None = None,
    *,
    welcome: bool = True,
    query: bool = True,
    answer_pings: bool = True,
    **options: Any,
) -> Any:
    """A connected client authenticated with `key` (the admin's by default) in the query string."""
    token = key if key is not None else server.admin_key
    url = f"{server.ws_url}?token={token}" if query else server.ws_url
    async with connect(url, open_timeout=10, close_timeout=2, **options) as ws:
        client = WsClient(ws, answer_pings=answer_pings)
        if welcome:
            await client.expect("welcome")
        yield client
