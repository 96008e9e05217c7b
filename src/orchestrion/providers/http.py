"""What the HTTP vendor adapters share: the client, error mapping, redaction, SSE requests.

`HTTPProvider` is the base of `OpenAICompatProvider`, `AnthropicProvider` and `GeminiProvider`.
Every failure becomes a `ProviderError` whose message names the deployment and never contains the
API key::

    transport timeout (connect, read, write, pool)     retryable   kind "timeout"
    connection refused/reset, peer closed mid-body     retryable   kind "transport"
    HTTP 408, 429, 5xx (vendors may add more)          retryable   kind from the status or body
    other HTTP 4xx                                     not         kind from the status or body
    HTTP 3xx (a wrong base URL)                        not         kind "error"
    2xx body that is not the vendor's JSON, an empty   retryable   kind "bad_response"
    answer, a cut-off stream, unparseable tool
    arguments
    an error object mid-stream or with HTTP 200        as its vendor type or code says, else
                                                       retryable "server_error"
"""

from __future__ import annotations

import abc
import html
import json
import logging
import re
import time
from collections.abc import AsyncGenerator, AsyncIterator, Mapping
from contextlib import aclosing
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any

import httpx

from orchestrion.exceptions import ProviderError
from orchestrion.providers.base import ChatRequest, ChatResponse, Provider, StreamEvent
from orchestrion.providers.options import Timeouts
from orchestrion.providers.sse import SSEMessage, aiter_sse
from orchestrion.providers.streaming import response_from_stream

logger = logging.getLogger(__name__)

BODY_EXCERPT_CHARS = 200
"""At most this much of a vendor's body is quoted in an error message."""

RETRYABLE_STATUS = frozenset({408, 429})
"""Statuses below 500 that are worth retrying."""

_HTML_DROP = re.compile(r"<(script|style|head)\b.*?</\1\s*>", re.IGNORECASE | re.DOTALL)
_HTML_TITLE = re.compile(r"<title\b[^>]*>(.*?)</title\s*>", re.IGNORECASE | re.DOTALL)
_HTML_TAG = re.compile(r"<[^>]*>")
_SPACES = re.compile(r"\s+")


@dataclass(frozen=True, kw_only=True)
class ErrorClass:
    """How a vendor-specific error body overrides the status-based classification.

    Attributes:
        kind: One of `PROVIDER_ERROR_KINDS`.
        retryable: Whether trying again can help.
        retry_after: A delay the body asks for, used when no Retry-After header is present.
    """

    kind: str
    retryable: bool
    retry_after: float | None = None


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


def redact(text: str, secret: str | None) -> str:
    """`text` with every occurrence of `secret` replaced by ``[redacted]``."""
    return text.replace(secret, "[redacted]") if secret else text


def excerpt(text: str) -> str:
    """A one-line summary of a body for an error message (not yet redacted or truncated).

    HTML pages (gateways, proxies, captive portals) become their title and visible text, so that
    the first characters quoted say something instead of being ``<!DOCTYPE html><html><head>``.
    """
    stripped = text.strip()
    if stripped.startswith("<") and re.search(r"<html|<!doctype|<body", stripped[:500], re.IGNORECASE):
        title_match = _HTML_TITLE.search(stripped)
        title = _SPACES.sub(" ", html.unescape(title_match.group(1))).strip() if title_match else ""
        visible = _SPACES.sub(" ", html.unescape(_HTML_TAG.sub(" ", _HTML_DROP.sub(" ", stripped)))).strip()
        return f"HTML page {title!r}: {visible}" if title else f"HTML page: {visible}"
    return _SPACES.sub(" ", stripped)


def vendor_error_text(payload: Any) -> str | None:
    """The message of a vendor's JSON error body, or None when the body has no recognised shape.

    Understands OpenAI's ``{"error": {"message", "type"}}``, Anthropic's ``{"type": "error",
    "error": {"type", "message"}}``, Google's ``{"error": {"code", "message", "status"}}`` (also
    wrapped in a list), and the ``{"error": "..."}`` or ``{"message": "..."}`` of smaller servers.
    """
    if isinstance(payload, list) and len(payload) == 1:
        payload = payload[0]
    if not isinstance(payload, dict):
        return None
    error = payload.get("error")
    if isinstance(error, str) and error:
        return error
    if isinstance(error, dict) and error.get("message"):
        label = error.get("type") or error.get("status") or error.get("code")
        return f"{label}: {error['message']}" if label else str(error["message"])
    for key in ("message", "detail"):
        if isinstance(payload.get(key), str) and payload[key]:
            return str(payload[key])
    return None


def _error_code(payload: Any) -> int | None:
    """The HTTP-like status inside an error body (Google's ``error.code``), when there is one."""
    if isinstance(payload, list) and len(payload) == 1:
        payload = payload[0]
    error = payload.get("error") if isinstance(payload, dict) else None
    code = error.get("code") if isinstance(error, dict) else None
    return code if isinstance(code, int) and 400 <= code <= 599 else None


def _json_or_none(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        return None


def _http_timeout(timeouts: Timeouts) -> httpx.Timeout:
    # Writing the body and waiting for a pooled connection get the same limits as reading and
    # connecting: a request body is small, and a pool wait is a kind of connect.
    return httpx.Timeout(
        connect=timeouts.connect, read=timeouts.read, write=timeouts.read, pool=timeouts.connect
    )


class HTTPProvider(Provider):
    """Base of the adapters that call a vendor over HTTP with JSON bodies.

    Subclasses implement `_endpoint`, `_headers`, `_body`, `_parse` (one non-streamed reply) and
    `stream`. `complete` posts and parses, or, when the deployment is configured to stream,
    consumes `stream` into one response.

    Args:
        name: Provider name used in deployments (``name:model``) and errors.
        model: The vendor's model id.
        api_key: The key, redacted from every message; None when the server needs none.
        timeouts: Connect and read limits (`total` is enforced by the router, not here).
        client: An injected client; the caller keeps ownership of it. When omitted, the provider
            creates one and closes it in `aclose`.
        stream: Serve `complete` by streaming.
        extra_headers: Headers added to every request (they override the adapter's own).
    """

    def __init__(
        self,
        *,
        name: str,
        model: str,
        api_key: str | None,
        timeouts: Timeouts,
        client: httpx.AsyncClient | None,
        stream: bool,
        extra_headers: Mapping[str, str] | None,
    ) -> None:
        self.name = name
        self.model = model
        self.supports_tools = True
        self._api_key = api_key or None
        self._timeouts = timeouts
        self._http_timeout = _http_timeout(timeouts)
        self._owns_client = client is None
        self._client = client if client is not None else httpx.AsyncClient(timeout=self._http_timeout)
        self._stream_mode = stream
        self._extra_headers = dict(extra_headers or {})

    @property
    def streams(self) -> bool:
        """Whether `complete` is served by streaming."""
        return self._stream_mode

    @abc.abstractmethod
    def _endpoint(self, *, stream: bool) -> str:
        """The URL of a call."""

    @abc.abstractmethod
    def _headers(self, *, stream: bool) -> dict[str, str]:
        """The vendor's headers, credentials included."""

    @abc.abstractmethod
    def _body(self, request: ChatRequest, *, stream: bool) -> dict[str, Any]:
        """The JSON body of a call."""

    @abc.abstractmethod
    def _parse(self, payload: dict[str, Any], request: ChatRequest, *, latency: float) -> ChatResponse:
        """Build the response; raise KeyError/IndexError/TypeError/ValueError on a malformed body."""

    @abc.abstractmethod
    def stream(self, request: ChatRequest) -> AsyncIterator[StreamEvent]:
        """Stream one chat completion (an async generator in every subclass).

        Raises:
            ProviderError: As `complete`; also when the stream is cut off before the vendor's end
                marker, or carries an error event.
        """

    def _classify_error(self, payload: Any) -> ErrorClass | None:
        """A vendor-specific classification of an error body; None keeps the status-based one."""
        return None

    async def complete(self, request: ChatRequest) -> ChatResponse:
        """Run one chat completion.

        Raises:
            ProviderError: On transport failures, error statuses and malformed bodies; `retryable`
                says whether trying again (here or on another deployment) can help.
        """
        started = time.perf_counter()
        if self._stream_mode:
            return await response_from_stream(
                self.stream(request),
                provider=self.name,
                model=self.model,
                started=started,
                deployment=self.deployment,
            )
        try:
            response = await self._client.post(
                self._endpoint(stream=False),
                json=self._body(request, stream=False),
                headers=self._all_headers(stream=False),
                timeout=self._http_timeout,
            )
        except httpx.HTTPError as exc:
            raise self._transport_error(exc) from exc
        latency = time.perf_counter() - started
        if response.status_code >= 300:
            raise self._status_error(response)
        payload = _json_or_none(response.text)
        if not isinstance(payload, dict):
            reason = "body is not JSON" if payload is None else "body is not a JSON object"
            raise self._bad_response(reason, body=response.text, status_code=response.status_code)
        try:
            return self._parse(payload, request, latency=latency)
        except (KeyError, IndexError, TypeError, ValueError, AttributeError) as exc:
            reason = f"missing field {exc.args[0]!r}" if isinstance(exc, KeyError) else str(exc)
            raise self._bad_response(reason, body=response.text, status_code=response.status_code) from exc

    async def _sse(self, request: ChatRequest) -> AsyncGenerator[SSEMessage, None]:
        """Open a streamed call and yield its events; close it with `contextlib.aclosing`."""
        try:
            async with self._client.stream(
                "POST",
                self._endpoint(stream=True),
                json=self._body(request, stream=True),
                headers=self._all_headers(stream=True),
                timeout=self._http_timeout,
            ) as response:
                if response.status_code >= 300:
                    await response.aread()
                    raise self._status_error(response)
                content_type = response.headers.get("content-type", "")
                if "json" in content_type or "html" in content_type:
                    await response.aread()
                    raise self._bad_response(
                        f"expected an event stream, got {content_type}",
                        body=response.text,
                        status_code=response.status_code,
                    )
                async with aclosing(aiter_sse(response)) as messages:
                    async for message in messages:
                        yield message
        except httpx.HTTPError as exc:
            raise self._transport_error(exc) from exc

    def _event_json(self, data: str) -> dict[str, Any]:
        """The JSON object an SSE event carries; a retryable "bad_response" error when it is not one."""
        payload = _json_or_none(data)
        if not isinstance(payload, dict):
            raise self._bad_response("a stream event is not a JSON object", body=data)
        return payload

    def _all_headers(self, *, stream: bool) -> dict[str, str]:
        return {**self._headers(stream=stream), **self._extra_headers}

    def _redact(self, text: str) -> str:
        # Some servers echo the credentials back in error bodies; never let them reach an error
        # message or a log line.
        return redact(text, self._api_key)

    def _quote(self, text: str) -> str:
        return self._redact(excerpt(text))[:BODY_EXCERPT_CHARS]

    def _status_error(self, response: httpx.Response) -> ProviderError:
        status = response.status_code
        if status < 400:
            # httpx does not follow redirects; a vendor API never redirects a POST it accepts.
            location = self._redact(response.headers.get("location", "nowhere"))[:BODY_EXCERPT_CHARS]
            return ProviderError(
                f"{self.deployment}: HTTP {status}: redirected to {location}; check the base URL",
                provider=self.name,
                status_code=status,
                kind="error",
            )
        payload = _json_or_none(response.text)
        override = self._classify_error(payload)
        retryable = override.retryable if override else status in RETRYABLE_STATUS or status >= 500
        retry_after = None
        if retryable:
            retry_after = parse_retry_after(response.headers.get("Retry-After"))
            if retry_after is None and override is not None:
                retry_after = override.retry_after
        detail = vendor_error_text(payload) or excerpt(response.text)
        logger.warning(
            "provider call failed",
            extra={"deployment": self.deployment, "status_code": status, "retryable": retryable},
        )
        return ProviderError(
            f"{self.deployment}: HTTP {status}: {self._redact(detail)[:BODY_EXCERPT_CHARS]}",
            provider=self.name,
            retryable=retryable,
            status_code=status,
            retry_after=retry_after,
            kind=override.kind if override else None,
        )

    def _error_event(self, payload: Any, *, context: str = "error event mid-stream") -> ProviderError:
        """An error object received where an answer was expected: mid-stream, or with HTTP 200.

        The vendor's classification wins; then the status code the object carries; an error
        without either is taken for a transient server error, since the call itself was accepted.
        """
        override = self._classify_error(payload)
        code = _error_code(payload)
        kind: str | None
        if override is not None:
            retryable, kind, retry_after = override.retryable, override.kind, override.retry_after
        else:
            retryable = code is None or code in RETRYABLE_STATUS or code >= 500
            # With a code, ProviderError derives the kind from it.
            kind, retry_after = ("server_error" if code is None else None), None
        detail = vendor_error_text(payload) or json.dumps(payload)
        return ProviderError(
            f"{self.deployment}: {context}: {self._redact(detail)[:BODY_EXCERPT_CHARS]}",
            provider=self.name,
            retryable=retryable,
            status_code=code,
            retry_after=retry_after,
            kind=kind,
        )

    def _transport_error(self, exc: httpx.HTTPError) -> ProviderError:
        if isinstance(exc, httpx.TimeoutException):
            kind, retryable = "timeout", True
        elif isinstance(exc, httpx.NetworkError | httpx.RemoteProtocolError | httpx.ProxyError):
            kind, retryable = "transport", True
        elif isinstance(exc, httpx.DecodingError):
            kind, retryable = "bad_response", True
        else:
            # A local protocol error, an unsupported URL scheme, too many redirects: our side.
            kind, retryable = "error", False
        detail = self._redact(str(exc))[:BODY_EXCERPT_CHARS] or "no detail"
        if kind == "timeout":
            detail += f" (limits: connect {self._timeouts.connect:g}s, read {self._timeouts.read:g}s)"
        return ProviderError(
            f"{self.deployment}: {type(exc).__name__}: {detail}",
            provider=self.name,
            retryable=retryable,
            kind=kind,
        )

    def _bad_response(
        self, reason: str, *, body: str | None = None, status_code: int | None = None
    ) -> ProviderError:
        """A retryable "bad_response" error: the vendor answered, but not with what it should."""
        where = f" (HTTP {status_code})" if status_code is not None else ""
        quoted = f": {self._quote(body)}" if body else ""
        return ProviderError(
            f"{self.deployment}: malformed response{where}: {self._redact(reason)}{quoted}",
            provider=self.name,
            retryable=True,
            status_code=status_code,
            kind="bad_response",
        )

    def _cut_off(self, missing: str) -> ProviderError:
        """A retryable "bad_response" error for a stream that ended without its end marker."""
        return ProviderError(
            f"{self.deployment}: stream cut off: it ended without {missing}",
            provider=self.name,
            retryable=True,
            kind="bad_response",
        )

    async def aclose(self) -> None:
        """Close the HTTP client when this provider created it."""
        if self._owns_client:
            await self._client.aclose()
