"""Assembling streamed completions: tool calls from fragments, and a whole response from a stream.

`response_from_stream` lets a deployment configured ``stream: true`` serve `Provider.complete` by
streaming: a long generation then fails after `Timeouts.read` of silence instead of waiting for
the whole answer. `ToolCallBuffer` collects the tool-call fragments that OpenAI-compatible servers
and Anthropic send (the id and name first, the JSON arguments in pieces).
"""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterable
from dataclasses import dataclass, field
from typing import Any

from orchestrion.exceptions import ProviderError
from orchestrion.providers.base import ChatResponse, StreamEvent, ToolUse, Usage


def decode_tool_arguments(raw: str | dict[str, Any] | None, *, tool: str) -> dict[str, Any]:
    """Parse a tool call's arguments, sent as a JSON-encoded object.

    Args:
        raw: The JSON text (an empty string or None means no arguments); a dict is taken as is,
            since some OpenAI-compatible servers send the object itself.
        tool: The tool name, for the error message.

    Returns:
        The arguments.

    Raises:
        ValueError: When the text is not a JSON object; adapters turn it into a retryable
            "bad_response" `ProviderError`.
    """
    if isinstance(raw, dict):
        return raw
    if raw is None or not raw.strip():
        return {}
    try:
        value = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise ValueError(f"tool call {tool!r} has arguments that are not valid JSON ({exc.msg})") from exc
    if not isinstance(value, dict):
        raise ValueError(f"tool call {tool!r} has arguments that are not a JSON object")
    return value


@dataclass(kw_only=True)
class _PartialToolCall:
    id: str = ""
    name: str = ""
    arguments: list[str] = field(default_factory=list)


class ToolCallBuffer:
    """Tool calls being streamed, keyed by the vendor's index (OpenAI) or content block (Anthropic)."""

    def __init__(self) -> None:
        self._calls: dict[int, _PartialToolCall] = {}

    def add(
        self, index: int, *, call_id: str | None = None, name: str | None = None, arguments: str = ""
    ) -> None:
        """Record one fragment: the id and name (usually in the first), then pieces of arguments."""
        call = self._calls.setdefault(index, _PartialToolCall())
        if call_id:
            call.id = call_id
        if name:
            call.name = name
        if arguments:
            call.arguments.append(arguments)

    def tool_uses(self) -> tuple[ToolUse, ...]:
        """The complete calls, in index order; a call that never got an id gets ``call_<index>``.

        Raises:
            ValueError: When a call never got its name, or its arguments are not a JSON object.
        """
        uses: list[ToolUse] = []
        for index in sorted(self._calls):
            call = self._calls[index]
            if not call.name:
                raise ValueError(f"streamed tool call #{index} has no name")
            arguments = decode_tool_arguments("".join(call.arguments), tool=call.name)
            # Some local servers omit the id; the conversation still needs one to answer the call.
            uses.append(ToolUse(id=call.id or f"call_{index}", name=call.name, arguments=arguments))
        return tuple(uses)


async def response_from_stream(
    events: AsyncIterable[StreamEvent],
    *,
    provider: str,
    model: str,
    started: float,
    deployment: str | None = None,
) -> ChatResponse:
    """Consume a `Provider.stream()` iterator into one `ChatResponse`.

    Args:
        events: The stream; every successful one ends with an event whose `done` is True.
        provider: The provider name for the response and errors.
        model: The model id for the response.
        started: `time.perf_counter()` when the call began, for the latency.
        deployment: The deployment name recorded on the response and used in errors.

    Returns:
        The text deltas joined, with the final event's usage, finish reason and tool calls.

    Raises:
        ProviderError: Whatever the stream raises; or a retryable "bad_response" one when the
            stream ended without its final event.
    """
    parts: list[str] = []
    final: StreamEvent | None = None
    async for event in events:
        if event.delta:
            parts.append(event.delta)
        if event.done:
            final = event
    if final is None:
        raise ProviderError(
            f"{deployment or f'{provider}:{model}'}: stream cut off: it ended without its final event",
            provider=provider,
            retryable=True,
            kind="bad_response",
        )
    return ChatResponse(
        content="".join(parts),
        provider=provider,
        model=model,
        usage=final.usage or Usage(),
        latency_seconds=time.perf_counter() - started,
        finish_reason=final.finish_reason,
        tool_uses=final.tool_uses,
        deployment=deployment,
    )
