"""A local, fault-injecting LLM vendor for tests and benchmarks: OpenAI, Anthropic and Gemini wire formats.

One port serves three vendors, streaming and non-streaming, answering deterministically (see
`vendor_wire.answer_conversation`):

- OpenAI: ``POST /v1/chat/completions`` (also Azure's ``/openai/v1/chat/completions``), ``GET /v1/models``;
  client base URL `VendorTestServer.base_url` (``http://127.0.0.1:PORT/v1``).
- Anthropic: ``POST /anthropic/v1/messages``; base URL `anthropic_base_url` (``.../anthropic``).
- Gemini: ``POST /gemini/v1beta/models/{model}:generateContent`` and ``:streamGenerateContent?alt=sse``;
  base URL `gemini_base_url` (``.../gemini``).

Faults (`Fault`) are scripted with `inject`, or drawn at a seeded random rate with `set_failure_rate`.

In-process, for tests::

    with VendorTestServer(model="test-model") as server:
        server.inject(Fault.status(429, retry_after=1), api="anthropic")
        ...

As a separate process, for the benchmark::

    python -m orchestrion.testing.vendor_server --port 8765 --failure-rate 0.1 --faults 429,timeout
"""

from __future__ import annotations

import argparse
import asyncio
import socket
import threading
import time
from collections.abc import Awaitable, Callable, Iterable, MutableMapping
from dataclasses import dataclass
from types import TracebackType
from typing import Any
from urllib.parse import parse_qsl

import uvicorn

from orchestrion.testing.asgi_io import JSON_TYPE, Receive, Send, load_object, pause, read_body, send_body
from orchestrion.testing.faults import API_NAMES, Fault, FaultPlan, check_api
from orchestrion.testing.schema_example import example_for_schema
from orchestrion.testing.vendor_replies import send_answer, send_fault
from orchestrion.testing.vendor_wire import Conversation, WireFormat, dump_json
from orchestrion.testing.wire_anthropic import AnthropicWire
from orchestrion.testing.wire_gemini import GeminiWire, gemini_route
from orchestrion.testing.wire_openai import OpenAIWire, models_body

__all__ = ["Fault", "OpenAITestServer", "RecordedCall", "VendorTestServer", "example_for_schema", "main"]

_MODELS_PATHS = frozenset({"/v1/models", "/openai/v1/models"})
_GEMINI_PREFIX = "/gemini/"
# Seconds uvicorn waits for busy connections on stop before cancelling their handlers.
_GRACEFUL_SHUTDOWN_SECONDS = 5.0


@dataclass(frozen=True, kw_only=True)
class RecordedCall:
    """One request to a chat endpoint, answered or not.

    Attributes:
        api: ``"openai"``, ``"anthropic"`` or ``"gemini"``.
        path: The URL path requested.
        body: The JSON body, or None when it was not a JSON object.
        headers: Request headers, lower-case names.
    """

    api: str
    path: str
    body: dict[str, Any] | None
    headers: dict[str, str]


class VendorTestServer:
    """A fake LLM vendor on 127.0.0.1, running uvicorn in a background thread.

    Args:
        model: The default model id (listed by ``/v1/models``, used when a request names none).
        latency_seconds: Delay before every chat answer (faults included).
        host: Interface to bind.
        port: Port to bind; 0 picks a free one.
        record: Keep `calls` and `requests`; a long benchmark run turns it off to keep memory flat.

    Attributes:
        latency_seconds: Adjustable while running.
        requests: Every valid OpenAI chat-completion body received, in order (faulted ones included).
        calls: Every request to any chat endpoint, in order (failed ones included).
    """

    def __init__(
        self,
        *,
        model: str = "test-model",
        latency_seconds: float = 0.0,
        host: str = "127.0.0.1",
        port: int = 0,
        record: bool = True,
    ) -> None:
        self.model = model
        self.latency_seconds = latency_seconds
        self.host = host
        self.record = record
        self.requests: list[dict[str, Any]] = []
        self.calls: list[RecordedCall] = []
        self._port = port
        self._lock = threading.Lock()
        self._counts: dict[str, int] = dict.fromkeys(API_NAMES, 0)
        self._faults = FaultPlan()
        openai = OpenAIWire()
        self._gemini = GeminiWire()
        self._chat_routes: dict[str, WireFormat] = {
            "/v1/chat/completions": openai,
            "/openai/v1/chat/completions": openai,
            "/anthropic/v1/messages": AnthropicWire(),
        }
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self._socket: socket.socket | None = None

    # -- what tests read ----------------------------------------------------------------------

    @property
    def port(self) -> int:
        """The bound port (known once started)."""
        return self._port

    @property
    def url(self) -> str:
        """The server root, ``http://127.0.0.1:PORT``."""
        if self._thread is None:
            raise RuntimeError("VendorTestServer is not started")
        return f"http://{self.host}:{self._port}"

    @property
    def base_url(self) -> str:
        """The OpenAI API root to give a client, ``http://127.0.0.1:PORT/v1``."""
        return f"{self.url}/v1"

    @property
    def azure_base_url(self) -> str:
        """Azure OpenAI's v1 API root, ``http://127.0.0.1:PORT/openai/v1``."""
        return f"{self.url}/openai/v1"

    @property
    def anthropic_base_url(self) -> str:
        """The Anthropic API root, ``http://127.0.0.1:PORT/anthropic`` (clients add ``/v1/messages``)."""
        return f"{self.url}/anthropic"

    @property
    def gemini_base_url(self) -> str:
        """The Gemini API root, ``http://127.0.0.1:PORT/gemini`` (clients add ``/v1beta/models/...``)."""
        return f"{self.url}/gemini"

    @property
    def request_count(self) -> int:
        """Chat requests received for all vendors (failed ones included)."""
        with self._lock:
            return sum(self._counts.values())

    def count(self, api: str) -> int:
        """Chat requests received for one vendor (``"openai"``, ``"anthropic"`` or ``"gemini"``)."""
        check_api(api)
        with self._lock:
            return self._counts[api]

    # -- faults -------------------------------------------------------------------------------

    def inject(self, fault: Fault, count: int = 1, *, api: str | None = None) -> None:
        """Give `fault` to the next `count` chat requests of `api` (of any vendor when None), FIFO."""
        self._faults.inject(fault, count, api=api)

    def fail_next(self, status: int, count: int = 1, retry_after: float | None = None) -> None:
        """Answer the next `count` chat requests with HTTP `status` (and Retry-After, if set)."""
        self.inject(Fault.status(status, retry_after=retry_after), count)

    def set_failure_rate(
        self, rate: float, faults: Iterable[Fault], *, seed: int = 0, api: str | None = None
    ) -> None:
        """Fail each later request with probability `rate`, choosing among `faults` (seeded, so repeatable).

        Scripted faults from `inject` take precedence; ``rate=0`` turns random faults off.
        """
        self._faults.set_failure_rate(rate, faults, seed=seed, api=api)

    def clear_faults(self) -> None:
        """Forget scripted faults and turn the failure rate off."""
        self._faults.clear()

    # -- ASGI ---------------------------------------------------------------------------------

    async def app(self, scope: MutableMapping[str, Any], receive: Receive, send: Send) -> None:
        """The ASGI application (lifespan and websockets are not used)."""
        if scope["type"] != "http":
            return
        path: str = scope["path"]
        method: str = scope["method"]
        if method == "POST":
            wire = self._chat_routes.get(path)
            if wire is not None:
                await self._chat(wire, scope, receive, send, model=self.model, stream=False)
                return
            if path.startswith(_GEMINI_PREFIX):
                model, stream = gemini_route(path[len(_GEMINI_PREFIX) :])
                if model is not None:
                    query = dict(parse_qsl(scope["query_string"].decode("latin-1")))
                    invalid = (
                        "streaming needs ?alt=sse here" if stream and query.get("alt") != "sse" else None
                    )
                    await self._chat(
                        self._gemini,
                        scope,
                        receive,
                        send,
                        model=model,
                        stream=stream,
                        query=query,
                        invalid=invalid,
                    )
                    return
        elif method == "GET" and path in _MODELS_PATHS:
            await send_body(send, 200, JSON_TYPE, dump_json(models_body(self.model)))
            return
        not_found = {"error": {"message": f"no route for {method} {path}", "type": "not_found_error"}}
        await send_body(send, 404, JSON_TYPE, dump_json(not_found))

    async def _chat(
        self,
        wire: WireFormat,
        scope: MutableMapping[str, Any],
        receive: Receive,
        send: Send,
        *,
        model: str,
        stream: bool,
        query: dict[str, str] | None = None,
        invalid: str | None = None,
    ) -> None:
        raw = await read_body(receive)
        if raw is None:
            return
        headers = {
            name.decode("latin-1").lower(): value.decode("latin-1") for name, value in scope["headers"]
        }
        body = load_object(raw)
        denied = wire.auth_error(headers, query or {})
        conversation: Conversation | None = None
        problem = invalid
        if denied is None and problem is None:
            if body is None:
                problem = "the body must be a JSON object"
            else:
                try:
                    conversation = wire.parse(body, model=model, stream=stream)
                except (KeyError, TypeError, ValueError, AttributeError) as exc:
                    problem = f"invalid request: {exc!r}"
        fault = self._admit(wire.api, scope["path"], body, headers, answerable=conversation is not None)
        if denied is not None:
            status, error = denied
            await send_body(send, status, JSON_TYPE, dump_json(error))
            return
        if conversation is None:
            await send_body(
                send, 400, JSON_TYPE, dump_json(wire.error_body(400, problem or "invalid request"))
            )
            return
        latency = self.latency_seconds
        if latency > 0 and not await pause(receive, latency):
            return
        if fault is None:
            await send_answer(wire, conversation, send)
        else:
            await send_fault(fault, wire, conversation, receive, send)

    def _admit(
        self, api: str, path: str, body: dict[str, Any] | None, headers: dict[str, str], *, answerable: bool
    ) -> Fault | None:
        """Count and record a chat request; the fault it gets, if it is one a fault can apply to."""
        with self._lock:
            self._counts[api] += 1
            if self.record:
                self.calls.append(RecordedCall(api=api, path=path, body=body, headers=headers))
                if api == "openai" and answerable and body is not None:
                    self.requests.append(body)
        return self._faults.take(api) if answerable else None

    # -- lifecycle ----------------------------------------------------------------------------

    def start(self, *, timeout: float = 10.0) -> VendorTestServer:
        """Start serving in a background thread and wait until it accepts connections.

        Raises:
            RuntimeError: When already started, or when the server does not start within `timeout`.
        """
        if self._thread is not None:
            raise RuntimeError("VendorTestServer is already started")
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((self.host, self._port))
        self._port = sock.getsockname()[1]
        self._socket = sock
        server = uvicorn.Server(uvicorn_config(self.app))
        self._server = server
        thread = threading.Thread(
            target=server.run, kwargs={"sockets": [sock]}, name="vendor-test-server", daemon=True
        )
        self._thread = thread
        thread.start()
        deadline = time.monotonic() + timeout
        while not server.started:
            if not thread.is_alive() or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError("VendorTestServer failed to start")
            time.sleep(0.01)
        return self

    def stop(self, *, timeout: float = 10.0) -> None:
        """Stop the server and wait for its thread (idempotent)."""
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout)
        if self._socket is not None:
            self._socket.close()
        self._server, self._thread, self._socket = None, None, None

    def __enter__(self) -> VendorTestServer:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    async def __aenter__(self) -> VendorTestServer:
        return await asyncio.to_thread(self.start)

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await asyncio.to_thread(self.stop)


OpenAITestServer = VendorTestServer
"""The former name, from when the server spoke only OpenAI's format."""


def uvicorn_config(app: Callable[..., Awaitable[None]], **options: Any) -> uvicorn.Config:
    """The uvicorn settings the test server runs with; `options` override them (host, port...)."""
    settings: dict[str, Any] = {
        "interface": "asgi3",
        "lifespan": "off",
        "ws": "none",
        "log_level": "warning",
        "access_log": False,
        "proxy_headers": False,
        "timeout_graceful_shutdown": _GRACEFUL_SHUTDOWN_SECONDS,
    }
    return uvicorn.Config(app, **(settings | options))


def main(argv: list[str] | None = None) -> None:
    """Run the test server in the foreground until interrupted."""
    parser = argparse.ArgumentParser(
        description="Local fault-injecting LLM vendor (OpenAI, Anthropic, Gemini)."
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8765)
    parser.add_argument("--model", default="test-model")
    parser.add_argument("--latency", type=float, default=0.0, help="seconds of delay per chat answer")
    parser.add_argument("--failure-rate", type=float, default=0.0, help="probability of a fault per request")
    parser.add_argument(
        "--faults",
        default="429,500",
        help="comma-separated faults to draw from: HTTP codes, timeout, malformed, empty, html, cut, reset, "
        "disconnect",
    )
    parser.add_argument("--slow-seconds", type=float, default=2.0, help="delay of the timeout fault")
    parser.add_argument(
        "--retry-after", type=float, default=None, help="Retry-After seconds on status faults"
    )
    parser.add_argument("--seed", type=int, default=0, help="seed of the fault draws")
    parser.add_argument("--api", choices=API_NAMES, default=None, help="only fault this vendor's requests")
    args = parser.parse_args(argv)
    faults = [
        Fault.parse(spec, slow_seconds=args.slow_seconds, retry_after=args.retry_after)
        for spec in args.faults.split(",")
        if spec.strip()
    ]
    # Nobody can read the recordings of a separate process, so keep its memory flat.
    server = VendorTestServer(
        model=args.model, latency_seconds=args.latency, host=args.host, port=args.port, record=False
    )
    if args.failure_rate > 0:
        server.set_failure_rate(args.failure_rate, faults, seed=args.seed, api=args.api)
    uvicorn.Server(uvicorn_config(server.app, host=args.host, port=args.port)).run()


if __name__ == "__main__":
    main()
