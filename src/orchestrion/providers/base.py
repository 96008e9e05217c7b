"""The Provider ABC and the request/response types every adapter normalises into."""

from __future__ import annotations

import abc
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any, Literal

from orchestrion.exceptions import OutputSchemaError

Role = Literal["system", "user", "assistant", "tool"]


@dataclass(frozen=True, kw_only=True)
class ToolUse:
    """A tool (function) call the model asked for.

    Attributes:
        id: The vendor's call id (generated when the vendor gives none, as Gemini does).
        name: The tool name.
        arguments: The parsed arguments (a JSON object).
    """

    id: str
    name: str
    arguments: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, kw_only=True)
class Message:
    """One chat message.

    Attributes:
        role: ``system``, ``user``, ``assistant`` or ``tool``.
        content: The text (for ``tool`` messages: the tool's result).
        tool_uses: On assistant messages, the tool calls the model made.
        tool_use_id: On ``tool`` messages, the id of the call this answers.
        name: On ``tool`` messages, the tool's name (Gemini matches results by name).
    """

    role: Role
    content: str
    tool_uses: tuple[ToolUse, ...] = ()
    tool_use_id: str | None = None
    name: str | None = None


@dataclass(frozen=True, kw_only=True)
class ToolSpec:
    """A tool offered to the model.

    Attributes:
        name: The tool name (``[A-Za-z0-9_-]``, at most 64 characters for every vendor).
        description: What the tool does, for the model.
        parameters: A JSON schema (``type: object``) for the arguments.
    """

    name: str
    description: str
    parameters: dict[str, Any] = field(default_factory=lambda: {"type": "object", "properties": {}})


ToolChoice = Literal["auto", "none", "required"]


@dataclass(frozen=True, kw_only=True)
class ChatRequest:
    """A provider-neutral chat completion request.

    Attributes:
        messages: The conversation.
        json_schema: When set, the reply must be a JSON object matching it (grammar-constrained on
            llama.cpp, `response_format` on OpenAI-compatible servers, a response schema on Gemini,
            a forced tool on Anthropic).
        max_tokens: Upper bound on generated tokens.
        temperature: Sampling temperature.
        seed: Optional sampling seed, for reproducible local runs.
        tools: Tools the model may call.
        tool_choice: ``auto`` (default), ``none``, ``required``, or the name of one tool to force.
    """

    messages: tuple[Message, ...]
    json_schema: dict[str, Any] | None = None
    max_tokens: int = 512
    temperature: float = 0.2
    seed: int | None = None
    tools: tuple[ToolSpec, ...] = ()
    tool_choice: str = "auto"


@dataclass(frozen=True, kw_only=True)
class Usage:
    """Token accounting of one call."""

    input_tokens: int = 0
    output_tokens: int = 0


@dataclass(frozen=True, kw_only=True)
class ChatResponse:
    """A provider-neutral chat completion response."""

    content: str
    provider: str
    model: str
    usage: Usage = field(default_factory=Usage)
    latency_seconds: float = 0.0
    finish_reason: str | None = None
    cost_usd: float = 0.0
    tool_uses: tuple[ToolUse, ...] = ()
    deployment: str | None = None

    def json(self) -> dict[str, Any]:
        """Parse the content as a JSON object, raising OutputSchemaError when it is not one."""
        text = self.content.strip()
        if text.startswith("```"):
            text = text.strip("`")
            text = text.removeprefix("json").strip()
        try:
            # strict=False: grammar-constrained local models may put raw newlines inside strings.
            value = json.loads(text, strict=False)
        except json.JSONDecodeError as exc:
            raise OutputSchemaError(
                f"{self.provider}:{self.model} returned invalid JSON: {exc.msg}", provider=self.provider
            ) from exc
        if not isinstance(value, dict):
            raise OutputSchemaError(
                f"{self.provider}:{self.model} returned JSON that is not an object", provider=self.provider
            )
        return value


@dataclass(frozen=True, kw_only=True)
class StreamEvent:
    """One piece of a streamed completion.

    Adapters yield text deltas as they arrive and end every successful stream with exactly one
    event whose `done` is True, carrying the usage, the finish reason and any tool calls (tool
    call arguments arrive in fragments on every vendor and are only yielded whole). A stream that
    ends without its vendor's end marker raises a retryable `ProviderError` instead.
    """

    delta: str = ""
    done: bool = False
    usage: Usage | None = None
    finish_reason: str | None = None
    tool_uses: tuple[ToolUse, ...] = ()


class Provider(abc.ABC):
    """An LLM backend. Adapters translate ChatRequest/ChatResponse and raise ProviderError on failure."""

    name: str
    model: str
    supports_tools: bool = False
    """Whether the model can be offered tools (`ChatRequest.tools`) and answer with tool calls."""

    @abc.abstractmethod
    async def complete(self, request: ChatRequest) -> ChatResponse:
        """Run one chat completion."""

    async def stream(self, request: ChatRequest) -> AsyncIterator[StreamEvent]:
        """Stream one chat completion; the default runs `complete` and yields its result at once."""
        response = await self.complete(request)
        if response.content:
            yield StreamEvent(delta=response.content)
        yield StreamEvent(
            done=True,
            usage=response.usage,
            finish_reason=response.finish_reason,
            tool_uses=response.tool_uses,
        )

    async def aclose(self) -> None:  # noqa: B027 - optional hook, most adapters own nothing
        """Release clients and models."""

    @property
    def deployment(self) -> str:
        """`provider:model`, the name this deployment is known by."""
        return f"{self.name}:{self.model}"
