"""The Provider ABC and the request/response types every adapter normalises into."""

from __future__ import annotations

import abc
import json
from dataclasses import dataclass, field
from typing import Any, Literal

from orchestrion.exceptions import OutputSchemaError

Role = Literal["system", "user", "assistant"]


@dataclass(frozen=True, kw_only=True)
class Message:
    """One chat message."""

    role: Role
    content: str


@dataclass(frozen=True, kw_only=True)
class ChatRequest:
    """A provider-neutral chat completion request.

    Attributes:
        messages: The conversation.
        json_schema: When set, the reply must be a JSON object matching it (grammar-constrained on
            llama.cpp, `response_format` on OpenAI-compatible servers).
        max_tokens: Upper bound on generated tokens.
        temperature: Sampling temperature.
        seed: Optional sampling seed, for reproducible local runs.
    """

    messages: tuple[Message, ...]
    json_schema: dict[str, Any] | None = None
    max_tokens: int = 512
    temperature: float = 0.2
    seed: int | None = None


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


class Provider(abc.ABC):
    """An LLM backend. Adapters translate ChatRequest/ChatResponse and raise ProviderError on failure."""

    name: str
    model: str

    @abc.abstractmethod
    async def complete(self, request: ChatRequest) -> ChatResponse:
        """Run one chat completion."""

    async def aclose(self) -> None:  # noqa: B027 - optional hook, most adapters own nothing
        """Release clients and models."""

    @property
    def deployment(self) -> str:
        """`provider:model`, the name this deployment is known by."""
        return f"{self.name}:{self.model}"
