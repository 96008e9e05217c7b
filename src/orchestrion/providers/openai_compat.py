"""An adapter for any server that speaks the OpenAI chat-completions protocol.

OpenAI itself, Groq, DeepSeek, Mistral, Together, OpenRouter, vLLM, Ollama, LM Studio and the test
server in `orchestrion.testing.openai_server` all accept the same `POST {base_url}/chat/completions`.
Failures become `ProviderError`: rate limits, timeouts, 5xx and dropped connections are retryable;
other 4xx are not.
"""

from __future__ import annotations

import json
import logging
import time
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any

import httpx

from orchestrion.exceptions import ProviderError
from orchestrion.providers.base import ChatRequest, ChatResponse, Provider, Usage

logger = logging.getLogger(__name__)

_RETRYABLE_STATUS = frozenset({408, 429})
_BODY_EXCERPT_CHARS = 200
_RETRYABLE_TRANSPORT_ERRORS: tuple[type[Exception], ...] = (
    httpx.TimeoutException,
    httpx.ConnectError,
    httpx.RemoteProtocolError,
    httpx.ReadError,
    httpx.WriteError,
)


def chat_completion_body(request: ChatRequest, *, model: str) -> dict[str, Any]:
    """The JSON body of a `/chat/completions` request for `request`."""
    body: dict[str, Any] = {
        "model": model,
        "messages": [{"role": m.role, "content": m.content} for m in request.messages],
        "max_tokens": request.max_tokens,
        "temperature": request.temperature,
    }
    if request.seed is not None:
        body["seed"] = request.seed
    if request.json_schema is not None:
        body["response_format"] = {
            "type": "json_schema",
            "json_schema": {"name": "output", "schema": request.json_schema, "strict": False},
        }
    return body


def parse_retry_after(value: str | None, *, now: datetime | None = None) -> float | None:
    """Parse a Retry-After header: delta-seconds or an HTTP date.

    Args:
        value: The raw header value, or None when absent.
        now: The current time (for tests); defaults to the current UTC time.

    Returns:
        Seconds to wait (never negative), or None when the header is absent or unparseable.
    """
    if value is None:
        return None
    text = value.strip()
    if not text:
        return None
    try:
        return max(0.0, float(text))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    current = now or datetime.now(UTC)
    return max(0.0, (when - current).total_seconds())


class OpenAICompatProvider(Provider):
    """A provider for OpenAI-compatible chat-completions endpoints.

    Args:
        base_url: The API root including the version, e.g. ``https://api.openai.com/v1``.
        model: The model id sent in each request.
        api_key: Bearer token; None for servers that need none (Ollama, vLLM, the test server).
        timeout: Per-request timeout in seconds.
        name: Provider name used in deployments (``name:model``) and errors.
        client: An injected client (tests, benchmarks); the caller keeps ownership of it. When
            omitted, the provider creates one and closes it in `aclose`.
    """

    def __init__(
        self,
        *,
        base_url: str,
        model: str,
        api_key: str | None = None,
        timeout: float = 120.0,
        name: str = "openai_compat",
        client: httpx.AsyncClient | None = None,
    ) -> None:
        self.name = name
        self.model = model
        self._url = base_url.rstrip("/") + "/chat/completions"
        self._api_key = api_key
        self._timeout = timeout
        self._owns_client = client is None
        self._client = client if client is not None else httpx.AsyncClient(timeout=timeout)

    def _headers(self) -> dict[str, str]:
        headers = {"Content-Type": "application/json", "Accept": "application/json"}
        if self._api_key:
            headers["Authorization"] = f"Bearer {self._api_key}"
        return headers

    def _body(self, request: ChatRequest) -> dict[str, Any]:
        return chat_completion_body(request, model=self.model)

    def _redact(self, text: str) -> str:
        # Some servers echo the Authorization header back in error bodies; never let it reach
        # an error message or a log line.
        if self._api_key:
            text = text.replace(self._api_key, "[redacted]")
        return text

    async def complete(self, request: ChatRequest) -> ChatResponse:
        """Run one chat completion.

        Raises:
            ProviderError: On transport failures, error statuses and malformed bodies; `retryable`
                says whether trying again (here or on another deployment) can help.
        """
        started = time.perf_counter()
        try:
            response = await self._client.post(
                self._url, json=self._body(request), headers=self._headers(), timeout=self._timeout
            )
        except _RETRYABLE_TRANSPORT_ERRORS as exc:
            raise ProviderError(
                f"{self.deployment}: {type(exc).__name__}: {self._redact(str(exc))[:_BODY_EXCERPT_CHARS]}",
                provider=self.name,
                retryable=True,
            ) from exc
        except httpx.HTTPError as exc:
            raise ProviderError(
                f"{self.deployment}: {type(exc).__name__}: {self._redact(str(exc))[:_BODY_EXCERPT_CHARS]}",
                provider=self.name,
                retryable=False,
            ) from exc
        latency = time.perf_counter() - started
        if response.status_code >= 400:
            raise self._status_error(response)
        return self._parse(response, latency)

    def _status_error(self, response: httpx.Response) -> ProviderError:
        status = response.status_code
        retryable = status in _RETRYABLE_STATUS or status >= 500
        excerpt = self._redact(response.text)[:_BODY_EXCERPT_CHARS]
        retry_after = parse_retry_after(response.headers.get("Retry-After")) if retryable else None
        logger.warning(
            "provider call failed",
            extra={"deployment": self.deployment, "status_code": status, "retryable": retryable},
        )
        return ProviderError(
            f"{self.deployment}: HTTP {status}: {excerpt}",
            provider=self.name,
            retryable=retryable,
            status_code=status,
            retry_after=retry_after,
        )

    def _parse(self, response: httpx.Response, latency: float) -> ChatResponse:
        try:
            payload = response.json()
            choice = payload["choices"][0]
            content = choice["message"]["content"]
            if content is None:
                content = ""
            if not isinstance(content, str):
                raise TypeError("content is not a string")
            finish_reason = choice.get("finish_reason")
            usage = payload.get("usage") or {}
            input_tokens = int(usage.get("prompt_tokens") or 0)
            output_tokens = int(usage.get("completion_tokens") or 0)
        except (json.JSONDecodeError, KeyError, IndexError, TypeError, ValueError, AttributeError) as exc:
            excerpt = self._redact(response.text)[:_BODY_EXCERPT_CHARS]
            raise ProviderError(
                f"{self.deployment}: malformed response (HTTP {response.status_code}): {excerpt}",
                provider=self.name,
                retryable=True,
                status_code=response.status_code,
            ) from exc
        return ChatResponse(
            content=content,
            provider=self.name,
            model=self.model,
            usage=Usage(input_tokens=input_tokens, output_tokens=output_tokens),
            latency_seconds=latency,
            finish_reason=str(finish_reason) if finish_reason is not None else None,
        )

    async def aclose(self) -> None:
        """Close the HTTP client when this provider created it."""
        if self._owns_client:
            await self._client.aclose()
