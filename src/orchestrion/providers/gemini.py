"""An adapter for the Gemini API's `generateContent` and `streamGenerateContent` (SSE) methods.

Gemini calls the assistant ``model``, takes system prompts as `systemInstruction`, matches tool
results to calls by function name (it gives calls no ids, so this adapter makes them up as
``call_<n>``), and constrains JSON output with `responseJsonSchema`. A prompt it refuses comes back
as HTTP 200 with `promptFeedback.blockReason` and no candidates: a non-retryable "bad_request"
error. ``RESOURCE_EXHAUSTED`` (429) and 5xx are retryable, with the delay of Google's
``RetryInfo`` when there is no Retry-After header; other failures follow
`orchestrion.providers.http`.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import AsyncIterator, Mapping
from contextlib import aclosing
from typing import Any

import httpx

from orchestrion.exceptions import ProviderError
from orchestrion.providers.base import ChatRequest, ChatResponse, Message, StreamEvent, ToolUse, Usage
from orchestrion.providers.http import ErrorClass, HTTPProvider
from orchestrion.providers.options import Timeouts

DEFAULT_BASE_URL = "https://generativelanguage.googleapis.com"

_MODES = {"auto": "AUTO", "none": "NONE", "required": "ANY"}
_RETRY_INFO = "type.googleapis.com/google.rpc.RetryInfo"
# google.rpc status codes -> (kind, retryable).
_STATUS_CLASSES: dict[str, tuple[str, bool]] = {
    "RESOURCE_EXHAUSTED": ("rate_limited", True),
    "UNAVAILABLE": ("server_error", True),
    "INTERNAL": ("server_error", True),
    "DEADLINE_EXCEEDED": ("timeout", True),
    "UNAUTHENTICATED": ("auth", False),
    "PERMISSION_DENIED": ("auth", False),
    "NOT_FOUND": ("not_found", False),
}


def _tool_result(content: str) -> Any:
    try:
        return json.loads(content)
    except ValueError:
        return content


def gemini_contents(messages: tuple[Message, ...]) -> list[dict[str, Any]]:
    """The `contents` of a request: ``user``/``model`` turns, same-role turns merged."""
    names: dict[str, str] = {}
    turns: list[dict[str, Any]] = []
    for message in messages:
        if message.role == "system":
            continue
        parts: list[dict[str, Any]] = [{"text": message.content}] if message.content else []
        role = "user"
        if message.role == "assistant":
            role = "model"
            for use in message.tool_uses:
                names[use.id] = use.name
                parts.append({"functionCall": {"name": use.name, "args": use.arguments}})
        elif message.role == "tool":
            # Gemini matches results by name; fall back to the name of the call this answers.
            name = message.name or names.get(message.tool_use_id or "") or message.tool_use_id or ""
            response = {"result": _tool_result(message.content)}
            parts = [{"functionResponse": {"name": name, "response": response}}]
        if not parts:
            continue
        if turns and turns[-1]["role"] == role:
            turns[-1]["parts"].extend(parts)
        else:
            turns.append({"role": role, "parts": parts})
    return turns


def generate_content_body(request: ChatRequest) -> dict[str, Any]:
    """The JSON body of a `generateContent` request for `request` (the model is in the URL)."""
    body: dict[str, Any] = {"contents": gemini_contents(request.messages)}
    system = "\n\n".join(m.content for m in request.messages if m.role == "system" and m.content)
    if system:
        body["systemInstruction"] = {"parts": [{"text": system}]}
    if request.tools:
        declarations = [
            {"name": spec.name, "description": spec.description, "parameters": spec.parameters}
            for spec in request.tools
        ]
        body["tools"] = [{"functionDeclarations": declarations}]
        mode = _MODES.get(request.tool_choice)
        config: dict[str, Any] = {"mode": mode}
        if mode is None:
            config = {"mode": "ANY", "allowedFunctionNames": [request.tool_choice]}
        body["toolConfig"] = {"functionCallingConfig": config}
    generation: dict[str, Any] = {"maxOutputTokens": request.max_tokens, "temperature": request.temperature}
    if request.seed is not None:
        generation["seed"] = request.seed
    if request.json_schema is not None:
        generation["responseMimeType"] = "application/json"
        generation["responseJsonSchema"] = request.json_schema
    body["generationConfig"] = generation
    return body


def _usage(metadata: Any) -> Usage | None:
    if not isinstance(metadata, dict):
        return None
    return Usage(
        input_tokens=int(metadata.get("promptTokenCount") or 0)
        + int(metadata.get("toolUsePromptTokenCount") or 0),
        # Thinking tokens are billed as output.
        output_tokens=int(metadata.get("candidatesTokenCount") or 0)
        + int(metadata.get("thoughtsTokenCount") or 0),
    )


def _retry_delay(details: Any) -> float | None:
    for detail in details if isinstance(details, list) else ():
        if isinstance(detail, dict) and detail.get("@type") == _RETRY_INFO:
            try:
                return max(0.0, float(str(detail.get("retryDelay", "")).removesuffix("s")))
            except ValueError:
                return None
    return None


class GeminiProvider(HTTPProvider):
    """A provider for the Gemini API (Google AI Studio keys).

    Args:
        base_url: The API root without the version (default
            ``https://generativelanguage.googleapis.com``).
        model: The model id (``gemini-2.5-flash``; a ``models/`` prefix is accepted).
        api_key: Sent as ``x-goog-api-key``; None for servers that need none.
        timeouts: Connect and read limits (`total` is enforced by the router).
        name: The preset name used in deployments and errors.
        client: An injected client; the caller keeps ownership of it.
        stream: Serve `complete` by streaming.
        extra_headers: Headers added to every request.
    """

    def __init__(
        self,
        *,
        base_url: str | None = None,
        model: str,
        api_key: str | None,
        timeouts: Timeouts | None = None,
        name: str = "gemini",
        client: httpx.AsyncClient | None = None,
        stream: bool = False,
        extra_headers: Mapping[str, str] | None = None,
    ) -> None:
        model = model.removeprefix("models/")
        super().__init__(
            name=name,
            model=model,
            api_key=api_key,
            timeouts=timeouts or Timeouts(),
            client=client,
            stream=stream,
            extra_headers=extra_headers,
        )
        self._model_url = f"{(base_url or DEFAULT_BASE_URL).rstrip('/')}/v1beta/models/{model}"
        self._call_ids = itertools.count()

    def _endpoint(self, *, stream: bool) -> str:
        if stream:
            return f"{self._model_url}:streamGenerateContent?alt=sse"
        return f"{self._model_url}:generateContent"

    def _headers(self, *, stream: bool) -> dict[str, str]:
        headers = {"Content-Type": "application/json"}
        if self._api_key:
            headers["x-goog-api-key"] = self._api_key
        return headers

    def _body(self, request: ChatRequest, *, stream: bool) -> dict[str, Any]:
        return generate_content_body(request)

    def _classify_error(self, payload: Any) -> ErrorClass | None:
        if isinstance(payload, list) and len(payload) == 1:
            payload = payload[0]
        error = payload.get("error") if isinstance(payload, dict) else None
        if not isinstance(error, dict):
            return None
        details = error.get("details")
        reasons = (
            {d.get("reason") for d in details if isinstance(d, dict)} if isinstance(details, list) else set()
        )
        if "API_KEY_INVALID" in reasons:
            # Google reports a bad key as 400 INVALID_ARGUMENT.
            return ErrorClass(kind="auth", retryable=False)
        found = _STATUS_CLASSES.get(str(error.get("status", "")))
        if found is None:
            return None
        return ErrorClass(kind=found[0], retryable=found[1], retry_after=_retry_delay(details))

    def _candidate(self, payload: dict[str, Any]) -> dict[str, Any] | None:
        """The first candidate, None when there is none; raises for a blocked prompt."""
        feedback = payload.get("promptFeedback")
        reason = feedback.get("blockReason") if isinstance(feedback, dict) else None
        if reason:
            raise ProviderError(
                f"{self.deployment}: prompt blocked ({reason})",
                provider=self.name,
                retryable=False,
                kind="bad_request",
            )
        candidates = payload.get("candidates") or []
        if not isinstance(candidates, list):
            raise TypeError("candidates is not a list")
        if not candidates:
            return None
        candidate = candidates[0]
        if not isinstance(candidate, dict):
            raise TypeError("candidate is not an object")
        return candidate

    def _read_parts(self, candidate: dict[str, Any]) -> tuple[str, list[ToolUse]]:
        # A candidate stopped for safety or length may come without content.
        parts = (candidate.get("content") or {}).get("parts") or []
        texts: list[str] = []
        uses: list[ToolUse] = []
        for part in parts:
            if part.get("thought"):
                continue
            if "text" in part:
                texts.append(str(part["text"]))
            elif "functionCall" in part:
                call = part["functionCall"]
                arguments = call.get("args") or {}
                if not isinstance(arguments, dict):
                    raise TypeError(f"functionCall {call.get('name')!r} args is not an object")
                call_id = call.get("id") or f"call_{next(self._call_ids)}"
                uses.append(ToolUse(id=str(call_id), name=str(call["name"]), arguments=arguments))
        return "".join(texts), uses

    def _parse(self, payload: dict[str, Any], request: ChatRequest, *, latency: float) -> ChatResponse:
        candidate = self._candidate(payload)
        if candidate is None:
            raise ValueError("no candidates and no blockReason")
        text, uses = self._read_parts(candidate)
        finish_reason = candidate.get("finishReason")
        return ChatResponse(
            content=text,
            provider=self.name,
            model=self.model,
            usage=_usage(payload.get("usageMetadata")) or Usage(),
            latency_seconds=latency,
            finish_reason=str(finish_reason) if finish_reason is not None else None,
            tool_uses=tuple(uses),
            deployment=self.deployment,
        )

    async def stream(self, request: ChatRequest) -> AsyncIterator[StreamEvent]:
        """Stream one generation: text deltas, then one final event.

        Raises:
            ProviderError: As `complete`; a retryable "bad_response" one when no chunk carried a
                `finishReason` (the stream was cut off), and a retryable "transport" one when the
                connection breaks mid-way.
        """
        uses: list[ToolUse] = []
        usage: Usage | None = None
        finish_reason: str | None = None
        async with aclosing(self._sse(request)) as messages:
            async for message in messages:
                chunk = self._event_json(message.data)
                if "error" in chunk:
                    raise self._error_event(chunk)
                try:
                    candidate = self._candidate(chunk)
                    text, chunk_uses = self._read_parts(candidate) if candidate else ("", [])
                except (KeyError, IndexError, TypeError, ValueError, AttributeError) as exc:
                    raise self._bad_response(f"malformed stream chunk ({exc})", body=message.data) from exc
                uses += chunk_uses
                usage = _usage(chunk.get("usageMetadata")) or usage
                if candidate and candidate.get("finishReason"):
                    finish_reason = str(candidate["finishReason"])
                if text:
                    yield StreamEvent(delta=text)
        if finish_reason is None:
            raise self._cut_off("a chunk carrying a finishReason")
        yield StreamEvent(done=True, usage=usage, finish_reason=finish_reason, tool_uses=tuple(uses))
