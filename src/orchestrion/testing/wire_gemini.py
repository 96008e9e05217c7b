"""The Gemini ``generateContent`` wire format, as spoken by the vendor test server."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from typing import Any

from orchestrion.testing.vendor_wire import (
    Answer,
    Conversation,
    ToolSpec,
    WireFormat,
    split_pieces,
    sse_event,
    text_of,
)

_STATUS_NAMES = {
    400: "INVALID_ARGUMENT",
    401: "UNAUTHENTICATED",
    403: "PERMISSION_DENIED",
    404: "NOT_FOUND",
    409: "ABORTED",
    429: "RESOURCE_EXHAUSTED",
    499: "CANCELLED",
    500: "INTERNAL",
    501: "NOT_IMPLEMENTED",
    503: "UNAVAILABLE",
    504: "DEADLINE_EXCEEDED",
}
_METHODS = {"generateContent": False, "streamGenerateContent": True}
# Google's SSE separates events with CRLF pairs; clients must cope with that, so the fake does too.
_NEWLINE = "\r\n"


def gemini_route(tail: str) -> tuple[str | None, bool]:
    """Model and streaming flag from ``v1beta/models/{model}:{method}``; (None, False) if no such route."""
    version, _, rest = tail.partition("/")
    if version not in ("v1beta", "v1") or not rest.startswith("models/"):
        return None, False
    model, _, method = rest[len("models/") :].rpartition(":")
    if not model or method not in _METHODS:
        return None, False
    return model, _METHODS[method]


def _field(value: Mapping[str, Any], camel: str, snake: str) -> Any:
    """A field under its JSON (camelCase) name or its proto (snake_case) name; the API takes both."""
    return value.get(camel, value.get(snake))


def _parts(content: Any) -> list[dict[str, Any]]:
    parts = content.get("parts") if isinstance(content, dict) else None
    return [part for part in parts or () if isinstance(part, dict)]


class GeminiWire(WireFormat):
    """``POST /gemini/v1beta/models/{model}:generateContent`` and ``:streamGenerateContent?alt=sse``."""

    api = "gemini"

    def auth_error(self, headers: Mapping[str, str], query: Mapping[str, str]) -> tuple[int, Any] | None:
        # The API also takes the key as a `key` query parameter, which older clients use.
        if headers.get("x-goog-api-key") or query.get("key"):
            return None
        message = "Method doesn't allow unregistered callers. Please use an API key (x-goog-api-key)."
        return 403, self.error_body(403, message)

    def parse(self, body: dict[str, Any], *, model: str, stream: bool) -> Conversation:
        contents = body["contents"]
        if not isinstance(contents, list) or not all(isinstance(c, dict) for c in contents):
            raise TypeError("contents must be a list of objects")
        system = text_of(_parts(_field(body, "systemInstruction", "system_instruction")))
        texts = (system, *(text_of(_parts(c)) for c in contents))
        last_user = next(
            (text_of(_parts(c)) for c in reversed(contents) if c.get("role", "user") == "user"), ""
        )
        tools = tuple(
            ToolSpec(
                name=declaration["name"],
                parameters=declaration.get("parameters")
                or _field(declaration, "parametersJsonSchema", "parameters_json_schema")
                or {},
            )
            for tool in body.get("tools") or ()
            for declaration in _field(tool, "functionDeclarations", "function_declarations") or ()
        )
        tool_config = _field(body, "toolConfig", "tool_config") or {}
        calling = _field(tool_config, "functionCallingConfig", "function_calling_config") or {}
        mode = str(calling.get("mode", "AUTO")).upper()
        allowed = _field(calling, "allowedFunctionNames", "allowed_function_names") or []
        generation = _field(body, "generationConfig", "generation_config") or {}
        wants_json = _field(generation, "responseMimeType", "response_mime_type") == "application/json"
        schema = _field(generation, "responseJsonSchema", "response_json_schema") or _field(
            generation, "responseSchema", "response_schema"
        )
        return Conversation(
            model=model,
            stream=stream,
            texts=texts,
            last_user_text=last_user,
            tools=tools,
            forced_tool=allowed[0] if mode == "ANY" and allowed else None,
            tools_forbidden=mode == "NONE",
            has_tool_result=any(
                "functionResponse" in part or "function_response" in part
                for content in contents
                for part in _parts(content)
            ),
            wants_json=wants_json,
            json_schema=schema if wants_json else None,
        )

    @staticmethod
    def _response(
        conversation: Conversation, candidates: list[dict[str, Any]], usage: dict[str, int]
    ) -> dict[str, Any]:
        return {
            "candidates": candidates,
            "usageMetadata": usage,
            "modelVersion": conversation.model,
            "responseId": uuid.uuid4().hex[:22],
        }

    @staticmethod
    def _candidate(parts: list[dict[str, Any]], *, final: bool) -> dict[str, Any]:
        candidate: dict[str, Any] = {"content": {"role": "model", "parts": parts}}
        if final:
            candidate["finishReason"] = "STOP"
        candidate["index"] = 0
        return candidate

    @staticmethod
    def _usage(answer: Answer) -> dict[str, int]:
        return {
            "promptTokenCount": answer.input_tokens,
            "candidatesTokenCount": answer.output_tokens,
            "totalTokenCount": answer.input_tokens + answer.output_tokens,
        }

    @staticmethod
    def _answer_parts(answer: Answer) -> list[dict[str, Any]]:
        if answer.tool_call is None:
            return [{"text": answer.text}]
        return [{"functionCall": {"name": answer.tool_call.name, "args": answer.tool_call.arguments}}]

    def reply(self, conversation: Conversation, answer: Answer) -> dict[str, Any]:
        candidate = self._candidate(self._answer_parts(answer), final=True)
        return self._response(conversation, [candidate], self._usage(answer))

    def stream_events(self, conversation: Conversation, answer: Answer) -> list[bytes]:
        if answer.tool_call is None:
            pieces = [[{"text": piece}] for piece in split_pieces(answer.text)]
        else:
            # Gemini sends a function call whole; the closing event then carries only the finish.
            pieces = [self._answer_parts(answer), [{"text": ""}]]
        partial_usage = {"promptTokenCount": answer.input_tokens, "totalTokenCount": answer.input_tokens}
        events = []
        for position, parts in enumerate(pieces):
            final = position == len(pieces) - 1
            candidate = self._candidate(parts, final=final)
            usage = self._usage(answer) if final else partial_usage
            events.append(sse_event(self._response(conversation, [candidate], usage), newline=_NEWLINE))
        return events

    def empty_reply(self, conversation: Conversation) -> dict[str, Any]:
        return self._response(conversation, [], {"promptTokenCount": 1, "totalTokenCount": 1})

    def empty_events(self, conversation: Conversation) -> list[bytes]:
        return [sse_event(self.empty_reply(conversation), newline=_NEWLINE)]

    def malformed_body(self) -> bytes:
        return b'{"candidates": ['

    def malformed_events(self) -> list[bytes]:
        return [f'data: {{"candidates": [{_NEWLINE}{_NEWLINE}'.encode()]

    def error_body(self, status: int, message: str) -> dict[str, Any]:
        name = _STATUS_NAMES.get(status, "INTERNAL" if status >= 500 else "FAILED_PRECONDITION")
        return {"error": {"code": status, "message": message, "status": name}}
