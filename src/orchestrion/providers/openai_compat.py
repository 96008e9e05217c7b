"""An adapter for any server that speaks the OpenAI chat-completions protocol.

OpenAI itself, Azure OpenAI's v1 API, Groq, DeepSeek, Mistral, Together, OpenRouter, vLLM, Ollama,
LM Studio and the test server in `orchestrion.testing.vendor_server` all accept the same
`POST {base_url}/chat/completions`, with tools and, when streaming, Server-Sent Events ending in
``data: [DONE]``. Failures become `ProviderError` as `orchestrion.providers.http` describes.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Mapping
from contextlib import aclosing
from typing import Any, Literal

import httpx

from orchestrion.exceptions import ConfigurationError
from orchestrion.providers.base import (
    ChatRequest,
    ChatResponse,
    Message,
    StreamEvent,
    ToolSpec,
    ToolUse,
    Usage,
)
from orchestrion.providers.http import HTTPProvider, parse_retry_after
from orchestrion.providers.options import Timeouts
from orchestrion.providers.streaming import ToolCallBuffer, decode_tool_arguments

__all__ = ["OpenAICompatProvider", "chat_completion_body", "parse_retry_after"]

_DONE = "[DONE]"
_BUILTIN_TOOL_CHOICES = frozenset({"auto", "none", "required"})


StructuredMode = Literal["json_schema", "json_object"]
"""How structured output is requested from an OpenAI-compatible server."""


def _message(message: Message) -> dict[str, Any]:
    if message.role == "tool":
        return {"role": "tool", "tool_call_id": message.tool_use_id, "content": message.content}
    if message.role == "assistant" and message.tool_uses:
        return {
            "role": "assistant",
            # OpenAI documents null content for a turn that only calls tools.
            "content": message.content or None,
            "tool_calls": [
                {
                    "id": use.id,
                    "type": "function",
                    "function": {"name": use.name, "arguments": json.dumps(use.arguments)},
                }
                for use in message.tool_uses
            ],
        }
    return {"role": message.role, "content": message.content}


def _tool(spec: ToolSpec) -> dict[str, Any]:
    return {
        "type": "function",
        "function": {"name": spec.name, "description": spec.description, "parameters": spec.parameters},
    }


def _tool_choice(choice: str) -> str | dict[str, Any]:
    if choice in _BUILTIN_TOOL_CHOICES:
        return choice
    return {"type": "function", "function": {"name": choice}}


def chat_completion_body(
    request: ChatRequest,
    *,
    model: str,
    stream: bool = False,
    structured: StructuredMode = "json_schema",
    stream_usage: bool = True,
) -> dict[str, Any]:
    """The JSON body of a `/chat/completions` request for `request`.

    Args:
        request: The chat request.
        model: The model id.
        stream: Ask for Server-Sent Events.
        structured: How a JSON schema is asked for: ``json_schema`` (structured outputs), or
            ``json_object`` (JSON mode, for servers without structured outputs: the schema is then
            given to the model in a system message instead).
        stream_usage: Ask for a last chunk carrying the usage (``stream_options``), which some
            servers reject.

    Returns:
        The body; `tools` and `tool_choice` only appear when the request offers tools, because
        OpenAI rejects a `tool_choice` without tools.
    """
    messages = [_message(m) for m in request.messages]
    if request.json_schema is not None and structured == "json_object":
        instruction = "Reply with one JSON object matching this JSON schema: " + json.dumps(
            request.json_schema, separators=(",", ":")
        )
        messages.insert(0, {"role": "system", "content": instruction})
    body: dict[str, Any] = {
        "model": model,
        "messages": messages,
        "max_tokens": request.max_tokens,
        "temperature": request.temperature,
    }
    if request.seed is not None:
        body["seed"] = request.seed
    if request.json_schema is not None:
        if structured == "json_object":
            body["response_format"] = {"type": "json_object"}
        else:
            body["response_format"] = {
                "type": "json_schema",
                "json_schema": {"name": "output", "schema": request.json_schema, "strict": False},
            }
    if request.tools:
        body["tools"] = [_tool(spec) for spec in request.tools]
        body["tool_choice"] = _tool_choice(request.tool_choice)
    if stream:
        body["stream"] = True
        if stream_usage:
            body["stream_options"] = {"include_usage": True}
    return body


def _tool_use(call: dict[str, Any], *, position: int) -> ToolUse:
    function = call["function"]
    name = function["name"]
    if not isinstance(name, str) or not name:
        raise ValueError("a tool call has no name")
    return ToolUse(
        # Some local servers omit the id; the conversation still needs one to answer the call.
        id=str(call.get("id") or f"call_{position}"),
        name=name,
        arguments=decode_tool_arguments(function.get("arguments"), tool=name),
    )


def _text_of(content: Any) -> str:
    """Message text: a string, or (Mistral, some reasoning servers) a list of typed parts."""
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        # Thinking parts and other non-text parts are not the answer.
        return "".join(str(part["text"]) for part in content if part.get("type") == "text")
    raise TypeError("content is not a string")


def _usage(usage: Any) -> Usage | None:
    if not isinstance(usage, dict):
        return None
    return Usage(
        input_tokens=int(usage.get("prompt_tokens") or 0),
        output_tokens=int(usage.get("completion_tokens") or 0),
    )


class OpenAICompatProvider(HTTPProvider):
    """A provider for OpenAI-compatible chat-completions endpoints.

    Args:
        base_url: The API root including the version, e.g. ``https://api.openai.com/v1``.
        model: The model id sent in each request.
        api_key: The key; None for servers that need none (Ollama, vLLM, the test server).
        timeouts: Connect and read limits (`total` is enforced by the router).
        timeout: Shortcut for ``Timeouts(connect=timeout, read=timeout)``; not with `timeouts`.
        auth: ``bearer`` (``Authorization: Bearer <key>``) or ``api-key`` (an ``api-key`` header,
            as Azure OpenAI's v1 API expects).
        name: The preset name (``openai``, ``groq``...) used in deployments and errors.
        client: An injected client (tests, benchmarks); the caller keeps ownership of it. When
            omitted, the provider creates one and closes it in `aclose`.
        stream: Serve `complete` by streaming.
        extra_headers: Headers added to every request.

    Raises:
        ConfigurationError: When both `timeouts` and `timeout` are given.
    """

    def __init__(
        self,
        *,
        base_url: str,
        model: str,
        api_key: str | None = None,
        timeouts: Timeouts | None = None,
        timeout: float | None = None,
        auth: Literal["bearer", "api-key"] = "bearer",
        name: str = "openai_compat",
        client: httpx.AsyncClient | None = None,
        stream: bool = False,
        extra_headers: Mapping[str, str] | None = None,
        structured: StructuredMode = "json_schema",
        stream_usage: bool = True,
        supports_tools: bool = True,
    ) -> None:
        if timeouts is not None and timeout is not None:
            raise ConfigurationError(f"{name}:{model}: pass either `timeouts` or `timeout`, not both")
        if timeouts is None:
            timeouts = Timeouts(connect=timeout, read=timeout) if timeout is not None else Timeouts()
        super().__init__(
            name=name,
            model=model,
            api_key=api_key,
            timeouts=timeouts,
            client=client,
            stream=stream,
            extra_headers=extra_headers,
        )
        self._url = base_url.rstrip("/") + "/chat/completions"
        self._structured: StructuredMode = structured
        self.supports_tools = supports_tools
        self._stream_usage = stream_usage
        self._auth = auth
        # The read limit under its historical name, which callers and tests inspect.
        self._timeout = timeouts.read

    def _endpoint(self, *, stream: bool) -> str:
        return self._url

    def _headers(self, *, stream: bool) -> dict[str, str]:
        headers = {
            "Content-Type": "application/json",
            "Accept": "text/event-stream" if stream else "application/json",
        }
        if self._api_key:
            if self._auth == "api-key":
                headers["api-key"] = self._api_key
            else:
                headers["Authorization"] = f"Bearer {self._api_key}"
        return headers

    def _body(self, request: ChatRequest, *, stream: bool) -> dict[str, Any]:
        return chat_completion_body(
            request,
            model=self.model,
            stream=stream,
            structured=self._structured,
            stream_usage=self._stream_usage,
        )

    def _parse(self, payload: dict[str, Any], request: ChatRequest, *, latency: float) -> ChatResponse:
        choices = payload["choices"]
        if not isinstance(choices, list) or not choices:
            raise ValueError("no choices")
        choice = choices[0]
        message = choice["message"]
        content = _text_of(message.get("content"))
        calls = message.get("tool_calls") or []
        if not isinstance(calls, list):
            raise TypeError("tool_calls is not a list")
        finish_reason = choice.get("finish_reason")
        return ChatResponse(
            content=content,
            provider=self.name,
            model=self.model,
            usage=_usage(payload.get("usage")) or Usage(),
            latency_seconds=latency,
            finish_reason=str(finish_reason) if finish_reason is not None else None,
            tool_uses=tuple(_tool_use(call, position=i) for i, call in enumerate(calls)),
            deployment=self.deployment,
        )

    async def stream(self, request: ChatRequest) -> AsyncIterator[StreamEvent]:
        """Stream one chat completion: text deltas, then one final event.

        Raises:
            ProviderError: As `complete`; a retryable "bad_response" one when the stream ends
                without ``data: [DONE]`` or carries a malformed chunk, and a retryable "transport"
                one when the connection breaks mid-way.
        """
        tool_calls = ToolCallBuffer()
        usage: Usage | None = None
        finish_reason: str | None = None
        finished = choices_seen = False
        async with aclosing(self._sse(request)) as messages:
            async for message in messages:
                if message.data.strip() == _DONE:
                    finished = True
                    break
                chunk = self._event_json(message.data)
                if "error" in chunk:
                    raise self._error_event(chunk)
                try:
                    text, reason, chunk_usage = _read_chunk(chunk, tool_calls)
                except (KeyError, IndexError, TypeError, ValueError, AttributeError) as exc:
                    raise self._bad_response(f"malformed stream chunk ({exc})", body=message.data) from exc
                choices_seen = choices_seen or bool(chunk.get("choices"))
                usage = chunk_usage or usage
                finish_reason = reason or finish_reason
                if text:
                    yield StreamEvent(delta=text)
        if not finished:
            raise self._cut_off("data: [DONE]")
        if not choices_seen:
            raise self._bad_response("no chunk carried a choice")
        try:
            tool_uses = tool_calls.tool_uses()
        except ValueError as exc:
            raise self._bad_response(str(exc)) from exc
        yield StreamEvent(done=True, usage=usage, finish_reason=finish_reason, tool_uses=tool_uses)


def _read_chunk(chunk: dict[str, Any], tool_calls: ToolCallBuffer) -> tuple[str, str | None, Usage | None]:
    """Apply one ``chat.completion.chunk``: returns its text delta, finish reason and usage."""
    text = ""
    finish_reason: str | None = None
    for choice in chunk.get("choices") or ():
        # Only one completion is ever asked for (no `n`), so other indexes are not ours.
        if choice.get("index", 0) != 0:
            continue
        delta = choice.get("delta") or {}
        text += _text_of(delta.get("content"))
        for position, fragment in enumerate(delta.get("tool_calls") or ()):
            function = fragment.get("function") or {}
            tool_calls.add(
                int(fragment.get("index", position)),
                call_id=fragment.get("id"),
                name=function.get("name"),
                arguments=function.get("arguments") or "",
            )
        if choice.get("finish_reason"):
            finish_reason = str(choice["finish_reason"])
    # Groq reports streamed usage in its own `x_groq` object.
    usage = _usage(chunk.get("usage")) or _usage((chunk.get("x_groq") or {}).get("usage"))
    return text, finish_reason, usage
