"""`ScriptedProvider`: a fake LLM vendor that replays a script, for tests and demos."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import Any

from orchestrion.exceptions import ProviderError
from orchestrion.providers.base import ChatRequest, ChatResponse, Provider, Usage

ScriptFunction = Callable[[ChatRequest], str | dict[str, Any] | ChatResponse]
"""A script step computed from the request: returns text, a JSON object or a whole response."""

ScriptItem = str | dict[str, Any] | ChatResponse | BaseException | ScriptFunction
"""One step of a script: text, a JSON object, a response (tool calls), an exception, or a function."""


class ScriptedProvider(Provider):
    """A provider that answers from a script instead of a model.

    Each call consumes the next script item: a `str` is returned as content, a `dict` as JSON
    content, an exception instance is raised, and a callable is called with the request and its
    result returned. When the script runs out, `default` answers every further call; without a
    default the call raises a non-retryable `ProviderError` ("script exhausted").

    Args:
        responses: The script.
        default: The answer once the script is exhausted (same kinds as script items).
        delay: Seconds to sleep before each answer, to simulate latency.
        name: Provider name (deployments read ``name:model``).
        model: Model label.

    Attributes:
        requests: Every request received, in order (including ones answered with an error).
    """

    def __init__(
        self,
        responses: Sequence[ScriptItem] = (),
        *,
        default: ScriptItem | None = None,
        delay: float = 0.0,
        name: str = "scripted",
        model: str = "scripted",
        supports_tools: bool = False,
    ) -> None:
        self.name = name
        self.model = model
        self.supports_tools = supports_tools
        self._script: list[ScriptItem] = list(responses)
        self._position = 0
        self._default = default
        self._delay = delay
        self.requests: list[ChatRequest] = []
        self.closed = False

    @property
    def remaining(self) -> int:
        """Script items not consumed yet."""
        return len(self._script) - self._position

    def _next_item(self) -> ScriptItem:
        if self._position < len(self._script):
            item = self._script[self._position]
            self._position += 1
            return item
        if self._default is None:
            raise ProviderError(
                f"{self.deployment}: script exhausted after {len(self._script)} responses",
                provider=self.name,
                retryable=False,
            )
        return self._default

    async def complete(self, request: ChatRequest) -> ChatResponse:
        """Answer with the next script item.

        Raises:
            ProviderError: When the script is exhausted and there is no default.
            BaseException: Whatever exception the script holds at this position.
        """
        self.requests.append(request)
        item = self._next_item()
        if self._delay > 0:
            await asyncio.sleep(self._delay)
        if isinstance(item, BaseException):
            raise item
        value = item(request) if callable(item) else item
        prompt_words = sum(len(m.content.split()) for m in request.messages)
        if isinstance(value, ChatResponse):
            return replace(
                value,
                provider=self.name,
                model=self.model,
                usage=Usage(input_tokens=prompt_words, output_tokens=len(value.content.split()) + 1),
            )
        content = value if isinstance(value, str) else json.dumps(value)
        return ChatResponse(
            content=content,
            provider=self.name,
            model=self.model,
            usage=Usage(input_tokens=prompt_words, output_tokens=len(content.split())),
            latency_seconds=self._delay,
            finish_reason="stop",
        )

    async def aclose(self) -> None:
        """Mark the provider closed (tests assert on it)."""
        self.closed = True
