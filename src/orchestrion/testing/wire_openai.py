"""The OpenAI Chat Completions wire format, as spoken by the vendor test server."""

from __future__ import annotations

import time
import uuid
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

_DONE = b"data: [DONE]\n\n"


def models_body(model: str) -> dict[str, Any]:
    """The `GET /v1/models` listing for the server's single model."""
    return {
        "object": "list",
        "data": [{"id": model, "object": "model", "created": 0, "owned_by": "orchestrion"}],
    }


def _error_type(status: int) -> tuple[str, str | None]:
    if status == 429:
        return "requests", "rate_limit_exceeded"
    if status == 401:
        return "invalid_request_error", "invalid_api_key"
    if status >= 500:
        return "server_error", None
    return "invalid_request_error", None


class OpenAIWire(WireFormat):
    """``POST /v1/chat/completions``: JSON answers, or SSE ``data:`` chunks ending in ``[DONE]``."""

    api = "openai"

    def parse(self, body: dict[str, Any], *, model: str, stream: bool) -> Conversation:
        messages = body["messages"]
        if not isinstance(messages, list) or not all(isinstance(m, dict) for m in messages):
            raise TypeError("messages must be a list of objects")
        texts = tuple(text_of(m.get("content")) for m in messages)
        last_user = next(
            (text_of(m.get("content")) for m in reversed(messages) if m.get("role") == "user"), ""
        )
        tools = tuple(
            ToolSpec(name=t["function"]["name"], parameters=t["function"].get("parameters") or {})
            for t in body.get("tools") or ()
            if t.get("type") == "function"
        )
        choice = body.get("tool_choice")
        forced = choice["function"]["name"] if isinstance(choice, dict) and "function" in choice else None
        response_format = body.get("response_format") or {}
        format_type = response_format.get("type")
        stream_options = body.get("stream_options") or {}
        return Conversation(
            model=str(body.get("model") or model),
            stream=stream or body.get("stream") is True,
            texts=texts,
            last_user_text=last_user,
            tools=tools,
            forced_tool=forced,
            tools_forbidden=choice == "none",
            has_tool_result=any(m.get("role") in ("tool", "function") for m in messages),
            wants_json=format_type in ("json_schema", "json_object"),
            json_schema=(
                (response_format.get("json_schema") or {}).get("schema", {})
                if format_type == "json_schema"
                else None
            ),
            stream_usage=stream_options.get("include_usage") is True,
        )

    @staticmethod
    def _usage(answer: Answer) -> dict[str, int]:
        return {
            "prompt_tokens": answer.input_tokens,
            "completion_tokens": answer.output_tokens,
            "total_tokens": answer.input_tokens + answer.output_tokens,
        }

    @staticmethod
    def _envelope(conversation: Conversation, kind: str) -> dict[str, Any]:
        return {
            "id": f"chatcmpl-{uuid.uuid4().hex[:24]}",
            "object": kind,
            "created": int(time.time()),
            "model": conversation.model,
        }

    def reply(self, conversation: Conversation, answer: Answer) -> dict[str, Any]:
        message: dict[str, Any] = {"role": "assistant", "content": answer.text}
        finish_reason = "stop"
        if answer.tool_call is not None:
            call = answer.tool_call
            message["content"] = None
            message["tool_calls"] = [
                {
                    "id": f"call_{uuid.uuid4().hex[:24]}",
                    "type": "function",
                    "function": {"name": call.name, "arguments": call.arguments_json},
                }
            ]
            finish_reason = "tool_calls"
        return {
            **self._envelope(conversation, "chat.completion"),
            "choices": [{"index": 0, "message": message, "logprobs": None, "finish_reason": finish_reason}],
            "usage": self._usage(answer),
        }

    def stream_events(self, conversation: Conversation, answer: Answer) -> list[bytes]:
        envelope = self._envelope(conversation, "chat.completion.chunk")
        if conversation.stream_usage:
            # OpenAI sends `"usage": null` on every chunk once usage is requested.
            envelope["usage"] = None

        def chunk(delta: dict[str, Any], finish_reason: str | None = None) -> bytes:
            choice = {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish_reason}
            return sse_event({**envelope, "choices": [choice]})

        events: list[bytes] = []
        if answer.tool_call is None:
            events.append(chunk({"role": "assistant", "content": ""}))
            events.extend(chunk({"content": piece}) for piece in split_pieces(answer.text))
            events.append(chunk({}, "stop"))
        else:
            call = answer.tool_call
            head = {
                "index": 0,
                "id": f"call_{uuid.uuid4().hex[:24]}",
                "type": "function",
                "function": {"name": call.name, "arguments": ""},
            }
            events.append(chunk({"role": "assistant", "content": None, "tool_calls": [head]}))
            events.extend(
                chunk({"tool_calls": [{"index": 0, "function": {"arguments": piece}}]})
                for piece in split_pieces(call.arguments_json)
            )
            events.append(chunk({}, "tool_calls"))
        if conversation.stream_usage:
            events.append(sse_event({**envelope, "choices": [], "usage": self._usage(answer)}))
        events.append(_DONE)
        return events

    def empty_reply(self, conversation: Conversation) -> dict[str, Any]:
        return {
            **self._envelope(conversation, "chat.completion"),
            "choices": [],
            "usage": {"prompt_tokens": 1, "completion_tokens": 0, "total_tokens": 1},
        }

    def empty_events(self, conversation: Conversation) -> list[bytes]:
        return [sse_event({**self._envelope(conversation, "chat.completion.chunk"), "choices": []}), _DONE]

    def malformed_body(self) -> bytes:
        return b'{"choices": ['

    def malformed_events(self) -> list[bytes]:
        return [b'data: {"choices": [\n\n']

    def error_body(self, status: int, message: str) -> dict[str, Any]:
        error_type, code = _error_type(status)
        return {"error": {"message": message, "type": error_type, "param": None, "code": code}}
