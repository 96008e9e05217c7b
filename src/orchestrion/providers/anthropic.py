"""An adapter for Anthropic's Messages API (`POST /v1/messages`), plain and streamed.

The Messages API differs from chat completions in ways this module hides: system prompts are a
top-level field, user and assistant turns must alternate (consecutive same-role messages are
merged), tool results are user turns of ``tool_result`` blocks, `max_tokens` is mandatory, and there
is no JSON-schema response format, so structured output forces a tool named ``json_output`` whose
input is the reply. Overloaded (529), rate-limited, timed-out and 5xx calls are retryable, as is
an ``error`` event mid-stream; other failures follow `orchestrion.providers.http`.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Mapping
from contextlib import aclosing
from typing import Any

import httpx

from orchestrion.providers.base import ChatRequest, ChatResponse, Message, StreamEvent, ToolUse, Usage
from orchestrion.providers.http import ErrorClass, HTTPProvider
from orchestrion.providers.options import Timeouts
from orchestrion.providers.streaming import ToolCallBuffer

DEFAULT_BASE_URL = "https://api.anthropic.com"
API_VERSION = "2023-06-01"
JSON_TOOL = "json_output"
"""The tool forced for structured output; its input is returned as the content, not as a tool use."""

_MAX_TEMPERATURE = 1.0
_TOOL_CHOICES = {"auto": "auto", "none": "none", "required": "any"}
# Anthropic's error types, as `{"type": "error", "error": {"type": ...}}` bodies and stream events.
_ERROR_CLASSES: dict[str, tuple[str, bool]] = {
    "invalid_request_error": ("bad_request", False),
    "request_too_large": ("bad_request", False),
    "billing_error": ("bad_request", False),
    "authentication_error": ("auth", False),
    "permission_error": ("auth", False),
    "not_found_error": ("not_found", False),
    "rate_limit_error": ("rate_limited", True),
    "timeout_error": ("timeout", True),
    "api_error": ("server_error", True),
    "overloaded_error": ("server_error", True),
}
_USAGE_INPUT_FIELDS = ("input_tokens", "cache_creation_input_tokens", "cache_read_input_tokens")


def _blocks(message: Message) -> tuple[str, list[dict[str, Any]]]:
    if message.role == "tool":
        result = {"type": "tool_result", "tool_use_id": message.tool_use_id, "content": message.content}
        return "user", [result]
    # The API rejects empty text blocks; an assistant turn that only calls tools has none.
    blocks: list[dict[str, Any]] = [{"type": "text", "text": message.content}] if message.content else []
    if message.role == "assistant":
        blocks += [
            {"type": "tool_use", "id": use.id, "name": use.name, "input": use.arguments}
            for use in message.tool_uses
        ]
    return message.role, blocks


def anthropic_messages(messages: tuple[Message, ...]) -> list[dict[str, Any]]:
    """The ``messages`` of a Messages API body: system messages left out, same-role turns merged."""
    turns: list[dict[str, Any]] = []
    for message in messages:
        if message.role == "system":
            continue
        role, blocks = _blocks(message)
        if not blocks:
            continue
        if turns and turns[-1]["role"] == role:
            turns[-1]["content"].extend(blocks)
        else:
            turns.append({"role": role, "content": blocks})
    for turn in turns:
        # Tool results must open their user turn, before any text.
        turn["content"].sort(key=lambda block: block["type"] != "tool_result")
    return turns


def messages_body(request: ChatRequest, *, model: str, stream: bool = False) -> dict[str, Any]:
    """The JSON body of a `/v1/messages` request for `request`."""
    body: dict[str, Any] = {
        "model": model,
        "max_tokens": request.max_tokens,
        # Anthropic's range is 0..1, OpenAI's 0..2: clamp instead of failing the call.
        "temperature": min(request.temperature, _MAX_TEMPERATURE),
        "messages": anthropic_messages(request.messages),
    }
    system = "\n\n".join(m.content for m in request.messages if m.role == "system" and m.content)
    if system:
        body["system"] = system
    tools: list[dict[str, Any]] = [
        {"name": spec.name, "description": spec.description, "input_schema": spec.parameters}
        for spec in request.tools
    ]
    if request.json_schema is not None:
        tools.append(
            {
                "name": JSON_TOOL,
                "description": "Give the answer as a JSON object matching this schema.",
                "input_schema": request.json_schema,
            }
        )
        body["tool_choice"] = {"type": "tool", "name": JSON_TOOL}
    elif tools:
        mapped = _TOOL_CHOICES.get(request.tool_choice)
        body["tool_choice"] = {"type": mapped} if mapped else {"type": "tool", "name": request.tool_choice}
    if tools:
        body["tools"] = tools
    if stream:
        body["stream"] = True
    return body


def _count_usage(counts: dict[str, int], usage: Any) -> None:
    # Streamed usage arrives twice (message_start, then cumulative in message_delta); the latest
    # non-null value of each field wins.
    if isinstance(usage, dict):
        counts.update({key: int(value) for key, value in usage.items() if isinstance(value, int)})


def _usage(counts: dict[str, int]) -> Usage:
    return Usage(
        input_tokens=sum(counts.get(key, 0) for key in _USAGE_INPUT_FIELDS),
        output_tokens=counts.get("output_tokens", 0),
    )


class AnthropicProvider(HTTPProvider):
    """A provider for Anthropic's Messages API.

    Args:
        base_url: The API root without the version (default ``https://api.anthropic.com``).
        model: The model id (``claude-sonnet-4-5``...).
        api_key: Sent as ``x-api-key``; None for servers that need none.
        timeouts: Connect and read limits (`total` is enforced by the router).
        name: The preset name used in deployments and errors.
        client: An injected client; the caller keeps ownership of it.
        stream: Serve `complete` by streaming.
        extra_headers: Headers added to every request (``anthropic-beta``...).
    """

    def __init__(
        self,
        *,
        base_url: str | None = None,
        model: str,
        api_key: str | None,
        timeouts: Timeouts | None = None,
        name: str = "anthropic",
        client: httpx.AsyncClient | None = None,
        stream: bool = False,
        extra_headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(
            name=name,
            model=model,
            api_key=api_key,
            timeouts=timeouts or Timeouts(),
            client=client,
            stream=stream,
            extra_headers=extra_headers,
        )
        self._url = (base_url or DEFAULT_BASE_URL).rstrip("/") + "/v1/messages"

    def _endpoint(self, *, stream: bool) -> str:
        return self._url

    def _headers(self, *, stream: bool) -> dict[str, str]:
        headers = {
            "content-type": "application/json",
            "accept": "text/event-stream" if stream else "application/json",
            "anthropic-version": API_VERSION,
        }
        if self._api_key:
            headers["x-api-key"] = self._api_key
        return headers

    def _body(self, request: ChatRequest, *, stream: bool) -> dict[str, Any]:
        return messages_body(request, model=self.model, stream=stream)

    def _classify_error(self, payload: Any) -> ErrorClass | None:
        error = payload.get("error") if isinstance(payload, dict) else None
        found = _ERROR_CLASSES.get(error.get("type", "")) if isinstance(error, dict) else None
        return ErrorClass(kind=found[0], retryable=found[1]) if found else None

    def _parse(self, payload: dict[str, Any], request: ChatRequest, *, latency: float) -> ChatResponse:
        if payload.get("type") == "error":
            raise self._error_event(payload, context="error object with HTTP 200")
        blocks = payload["content"]
        if not isinstance(blocks, list):
            raise TypeError("content is not a list of blocks")
        stop_reason = payload.get("stop_reason")
        if not blocks and stop_reason == "end_turn":
            # An answer of nothing at all (not even an empty text block) is the Messages API's
            # equivalent of an empty `choices` list; a retry or another deployment may answer.
            raise ValueError("no content blocks")
        texts: list[str] = []
        uses: list[ToolUse] = []
        structured: str | None = None
        for block in blocks:
            if block["type"] == "text":
                texts.append(str(block["text"]))
            elif block["type"] == "tool_use":
                arguments = block["input"]
                if not isinstance(arguments, dict):
                    raise TypeError(f"tool_use {block['name']!r} input is not an object")
                if request.json_schema is not None and block["name"] == JSON_TOOL:
                    structured = json.dumps(arguments)
                else:
                    uses.append(ToolUse(id=str(block["id"]), name=str(block["name"]), arguments=arguments))
            # Thinking and server-tool blocks are not part of the answer.
        if structured is not None and stop_reason == "tool_use":
            # The forced json_output call is how the answer is given, not a call for the caller.
            stop_reason = "end_turn"
        counts: dict[str, int] = {}
        _count_usage(counts, payload.get("usage"))
        return ChatResponse(
            content=structured if structured is not None else "".join(texts),
            provider=self.name,
            model=self.model,
            usage=_usage(counts),
            latency_seconds=latency,
            finish_reason=str(stop_reason) if stop_reason is not None else None,
            tool_uses=tuple(uses),
            deployment=self.deployment,
        )

    async def stream(self, request: ChatRequest) -> AsyncIterator[StreamEvent]:
        """Stream one message: text deltas (the JSON itself for structured output), then a final event.

        Raises:
            ProviderError: As `complete`; a retryable one for an ``error`` event mid-stream (e.g.
                ``overloaded_error``), a retryable "bad_response" one when the stream ends without
                ``message_stop``, and a retryable "transport" one when the connection breaks.
        """
        state = _StreamState(structured=request.json_schema is not None)
        finished = False
        async with aclosing(self._sse(request)) as messages:
            async for message in messages:
                event = self._event_json(message.data)
                kind = event.get("type") or message.event
                if kind == "error":
                    raise self._error_event(event)
                if kind == "message_stop":
                    finished = True
                    break
                try:
                    text = state.apply(str(kind), event)
                except (KeyError, IndexError, TypeError, ValueError, AttributeError) as exc:
                    raise self._bad_response(f"malformed {kind} event ({exc})", body=message.data) from exc
                if text:
                    yield StreamEvent(delta=text)
        if not finished:
            raise self._cut_off("message_stop")
        if not state.blocks_seen and state.stop_reason == "end_turn":
            raise self._bad_response("no content blocks")
        try:
            tool_uses = state.tool_calls.tool_uses()
        except ValueError as exc:
            raise self._bad_response(str(exc)) from exc
        leftover = state.leftover_text()
        if leftover:
            yield StreamEvent(delta=leftover)
        yield StreamEvent(
            done=True, usage=_usage(state.counts), finish_reason=state.stop_reason, tool_uses=tool_uses
        )


class _StreamState:
    """What a streamed message has delivered so far."""

    def __init__(self, *, structured: bool) -> None:
        self.structured = structured
        self.tool_calls = ToolCallBuffer()
        self.counts: dict[str, int] = {}
        self.stop_reason: str | None = None
        self.blocks_seen = False
        # json_output blocks: their input at block start, and which of them streamed deltas.
        self._json_blocks: dict[int, str] = {}
        self._json_streamed: set[int] = set()
        # For structured output, text is only the answer if no json_output call comes.
        self._held_text: list[str] = []

    def apply(self, kind: str, event: dict[str, Any]) -> str:
        """Apply one event; returns the text to yield (often empty)."""
        if kind == "message_start":
            _count_usage(self.counts, event["message"].get("usage"))
        elif kind == "content_block_start":
            self.blocks_seen = True
            return self._start_block(int(event["index"]), event["content_block"])
        elif kind == "content_block_delta":
            return self._delta(int(event["index"]), event["delta"])
        elif kind == "message_delta":
            self.stop_reason = event["delta"].get("stop_reason") or self.stop_reason
            _count_usage(self.counts, event.get("usage"))
            if self._json_blocks and self.stop_reason == "tool_use":
                self.stop_reason = "end_turn"
        # content_block_stop, ping and event types added later carry nothing needed here.
        return ""

    def leftover_text(self) -> str:
        """Text held back for structured output that turned out to be the answer after all."""
        if self._json_blocks:
            # A json_output call whose input came whole at block start, without deltas.
            return "".join(text for i, text in self._json_blocks.items() if i not in self._json_streamed)
        return "".join(self._held_text)

    def _start_block(self, index: int, block: dict[str, Any]) -> str:
        if block["type"] == "tool_use":
            initial = block.get("input") or {}
            if self.structured and block["name"] == JSON_TOOL:
                self._json_blocks[index] = json.dumps(initial) if initial else "{}"
                return ""
            self.tool_calls.add(index, call_id=block["id"], name=block["name"])
            if initial:
                self.tool_calls.add(index, arguments=json.dumps(initial))
        elif block["type"] == "text" and block.get("text"):
            return self._text(str(block["text"]))
        return ""

    def _delta(self, index: int, delta: dict[str, Any]) -> str:
        if delta["type"] == "text_delta":
            return self._text(str(delta["text"]))
        if delta["type"] == "input_json_delta":
            fragment = str(delta.get("partial_json") or "")
            if index in self._json_blocks:
                if fragment:
                    self._json_streamed.add(index)
                return fragment
            self.tool_calls.add(index, arguments=fragment)
        return ""

    def _text(self, text: str) -> str:
        if self.structured:
            self._held_text.append(text)
            return ""
        return text
