"""A local OpenAI-compatible server for tests and benchmarks.

It answers `POST /v1/chat/completions` deterministically (a minimal JSON object satisfying the
requested schema, or a short echo of the last user message) and `GET /v1/models`. Latency and
failures (status code, count, Retry-After) can be scripted while it runs.

In-process, for tests::

    with OpenAITestServer(model="test-model") as server:
        provider = OpenAICompatProvider(base_url=server.base_url, model="test-model")

As a separate process, for the benchmark::

    python -m orchestrion.testing.openai_server --port 8765 --latency 0.05
"""

from __future__ import annotations

import argparse
import asyncio
import json
import socket
import threading
import time
import uuid
from collections import deque
from dataclasses import dataclass
from types import TracebackType
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

_ECHO_CHARS = 40


def example_for_schema(schema: Any) -> Any:
    """Build a minimal value that satisfies a (simple) JSON schema.

    Objects get their required properties, recursively; strings are ``"ok"``, numbers ``0``,
    booleans ``false``, arrays hold `minItems` items; `enum` and `const` take their first value;
    `anyOf`/`oneOf`/`allOf` use their first branch.

    Args:
        schema: A JSON schema (a dict; anything else yields None).

    Returns:
        A JSON-serialisable value.
    """
    if not isinstance(schema, dict):
        return None
    if "const" in schema:
        return schema["const"]
    if schema.get("enum"):
        return schema["enum"][0]
    for key in ("anyOf", "oneOf", "allOf"):
        if schema.get(key):
            return example_for_schema(schema[key][0])
    kind = schema.get("type")
    if isinstance(kind, list):
        kind = next((k for k in kind if k != "null"), "null")
    if kind is None:
        kind = "object" if "properties" in schema else "string"
    if kind == "object":
        properties = schema.get("properties") or {}
        return {name: example_for_schema(properties.get(name, {})) for name in schema.get("required", [])}
    if kind == "array":
        count = int(schema.get("minItems", 0))
        return [example_for_schema(schema.get("items", {})) for _ in range(count)]
    if kind == "string":
        return "ok"
    if kind in ("number", "integer"):
        return schema.get("minimum", 0)
    if kind == "boolean":
        return False
    return None


@dataclass(frozen=True, kw_only=True)
class _Failure:
    status: int
    retry_after: float | None


class OpenAITestServer:
    """An OpenAI-compatible server on 127.0.0.1, running uvicorn in a background thread.

    Args:
        model: The model id listed by `/v1/models`.
        latency_seconds: Delay before every chat completion answer.
        host: Interface to bind.
        port: Port to bind; 0 picks a free one.

    Attributes:
        latency_seconds: Adjustable while running.
        requests: Every chat-completion request body received, in order.
    """

    def __init__(
        self,
        *,
        model: str = "test-model",
        latency_seconds: float = 0.0,
        host: str = "127.0.0.1",
        port: int = 0,
    ) -> None:
        self.model = model
        self.latency_seconds = latency_seconds
        self.host = host
        self.requests: list[dict[str, Any]] = []
        self._port = port
        self._lock = threading.Lock()
        self._failures: deque[_Failure] = deque()
        self._request_count = 0
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self._socket: socket.socket | None = None
        self.app = Starlette(
            routes=[
                Route("/v1/chat/completions", self._chat_completions, methods=["POST"]),
                Route("/v1/models", self._models, methods=["GET"]),
            ]
        )

    @property
    def request_count(self) -> int:
        """Chat-completion requests received (failed ones included)."""
        with self._lock:
            return self._request_count

    @property
    def port(self) -> int:
        """The bound port (known once started)."""
        return self._port

    @property
    def base_url(self) -> str:
        """The API root to give a client, e.g. ``http://127.0.0.1:PORT/v1``."""
        if self._thread is None:
            raise RuntimeError("OpenAITestServer is not started")
        return f"http://{self.host}:{self._port}/v1"

    def fail_next(self, status: int, count: int = 1, retry_after: float | None = None) -> None:
        """Answer the next `count` chat completions with HTTP `status` (and Retry-After, if set)."""
        with self._lock:
            self._failures.extend(_Failure(status=status, retry_after=retry_after) for _ in range(count))

    def _take_failure(self) -> _Failure | None:
        with self._lock:
            self._request_count += 1
            return self._failures.popleft() if self._failures else None

    async def _models(self, request: Request) -> JSONResponse:
        return JSONResponse(
            {"object": "list", "data": [{"id": self.model, "object": "model", "owned_by": "orchestrion"}]}
        )

    async def _chat_completions(self, request: Request) -> JSONResponse:
        failure = self._take_failure()
        if self.latency_seconds > 0:
            await asyncio.sleep(self.latency_seconds)
        if failure is not None:
            headers = {} if failure.retry_after is None else {"Retry-After": f"{failure.retry_after:g}"}
            return JSONResponse(
                {"error": {"message": "scripted failure", "type": "test_failure", "code": failure.status}},
                status_code=failure.status,
                headers=headers,
            )
        try:
            body = await request.json()
            messages = body["messages"]
            if not isinstance(messages, list):
                raise TypeError("messages must be a list")
        except (ValueError, KeyError, TypeError) as exc:
            return JSONResponse(
                {"error": {"message": f"invalid request: {exc}", "type": "invalid_request_error"}},
                status_code=400,
            )
        with self._lock:
            self.requests.append(body)
        return JSONResponse(self._completion(body, messages))

    def _completion(self, body: dict[str, Any], messages: list[Any]) -> dict[str, Any]:
        response_format = body.get("response_format") or {}
        if response_format.get("type") == "json_schema":
            schema = (response_format.get("json_schema") or {}).get("schema", {})
            content = json.dumps(example_for_schema(schema))
        elif response_format.get("type") == "json_object":
            content = "{}"
        else:
            last_user = next(
                (
                    str(m.get("content", ""))
                    for m in reversed(messages)
                    if isinstance(m, dict) and m.get("role") == "user"
                ),
                "",
            )
            content = f"ok: {last_user[:_ECHO_CHARS]}"
        prompt_tokens = sum(len(str(m.get("content", "")).split()) for m in messages if isinstance(m, dict))
        completion_tokens = len(content.split())
        return {
            "id": f"chatcmpl-{uuid.uuid4().hex[:12]}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": body.get("model") or self.model,
            "choices": [
                {"index": 0, "message": {"role": "assistant", "content": content}, "finish_reason": "stop"}
            ],
            "usage": {
                "prompt_tokens": prompt_tokens,
                "completion_tokens": completion_tokens,
                "total_tokens": prompt_tokens + completion_tokens,
            },
        }

    def start(self, *, timeout: float = 10.0) -> OpenAITestServer:
        """Start serving in a background thread and wait until it accepts connections.

        Raises:
            RuntimeError: When already started, or when the server does not start within `timeout`.
        """
        if self._thread is not None:
            raise RuntimeError("OpenAITestServer is already started")
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((self.host, self._port))
        self._port = sock.getsockname()[1]
        self._socket = sock
        config = uvicorn.Config(self.app, log_level="warning", lifespan="off", ws="none", access_log=False)
        server = uvicorn.Server(config)
        self._server = server
        thread = threading.Thread(
            target=server.run, kwargs={"sockets": [sock]}, name="openai-test-server", daemon=True
        )
        self._thread = thread
        thread.start()
        deadline = time.monotonic() + timeout
        while not server.started:
            if not thread.is_alive() or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError("OpenAITestServer failed to start")
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

    def __enter__(self) -> OpenAITestServer:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    async def __aenter__(self) -> OpenAITestServer:
        return await asyncio.to_thread(self.start)

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await asyncio.to_thread(self.stop)


def main(argv: list[str] | None = None) -> None:
    """Run the test server in the foreground until interrupted."""
    parser = argparse.ArgumentParser(description="Local OpenAI-compatible test server.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8765)
    parser.add_argument("--model", default="test-model")
    parser.add_argument("--latency", type=float, default=0.0, help="seconds of delay per completion")
    args = parser.parse_args(argv)
    server = OpenAITestServer(model=args.model, latency_seconds=args.latency, host=args.host, port=args.port)
    uvicorn.run(server.app, host=args.host, port=args.port, log_level="warning", lifespan="off", ws="none")


if __name__ == "__main__":
    main()
