"""The Anthropic Messages wire format, as spoken by the vendor test server."""

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

_ERROR_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    413: "request_too_large",
    429: "rate_limit_error",
    500: "api_error",
    529: "overloaded_error",
}


def _blocks(content: Any) -> list[dict[str, Any]]:
    if isinstance(content, list):
        return [block for block in content if isinstance(block, dict)]
    return []


def _content_text(content: Any) -> str:
    """Text of a message's content, tool results included (they count as input tokens)."""
    if isinstance(content, str):
        return content
    parts = [text_of(content)]
    parts.extend(text_of(b.get("content")) for b in _blocks(content) if b.get("type") == "tool_result")
    return " ".join(part for part in parts if part)


class AnthropicWire(WireFormat):
    """``POST /anthropic/v1/messages``: JSON messages, or ``event:``/``data:`` SSE like Anthropic's."""

    api = "anthropic"

    def auth_error(self, headers: Mapping[str, str], query: Mapping[str, str]) -> tuple[int, Any] | None:
        for name in ("x-api-key", "anthropic-version"):
            if not headers.get(name):
                return 401, self.error_body(401, f"{name} header is required")
        return None

    def parse(self, body: dict[str, Any], *, model: str, stream: bool) -> Conversation:
        messages = body["messages"]
        if not isinstance(messages, list) or not all(isinstance(m, dict) for m in messages):
            raise TypeError("messages must be a list of objects")
        system = text_of(body.get("system"))
        texts = (system, *(_content_text(m.get("content")) for m in messages))
        last_user = next(
            (_content_text(m.get("content")) for m in reversed(messages) if m.get("role") == "user"), ""
        )
        tools = tuple(
            ToolSpec(name=t["name"], parameters=t.get("input_schema") or {})
            for t in body.get("tools") or ()
            if "input_schema" in t
        )
        choice = body.get("tool_choice") or {}
        output_format = body.get("output_format") or {}
        return Conversation(
            model=str(body.get("model") or model),
            stream=stream or body.get("stream") is True,
            texts=texts,
            last_user_text=last_user,
            tools=tools,
            forced_tool=choice.get("name") if choice.get("type") == "tool" else None,
            tools_forbidden=choice.get("type") == "none",
            has_tool_result=any(
                b.get("type") == "tool_result" for m in messages for b in _blocks(m.get("content"))
            ),
            wants_json=output_format.get("type") == "json_schema",
            json_schema=output_format.get("schema", {})
            if output_format.get("type") == "json_schema"
            else None,
        )

    @staticmethod
    def _message(conversation: Conversation, **fields: Any) -> dict[str, Any]:
        return {
            "id": f"msg_{uuid.uuid4().hex[:24]}",
            "type": "message",
            "role": "assistant",
            "model": conversation.model,
            **fields,
        }

    def reply(self, conversation: Conversation, answer: Answer) -> dict[str, Any]:
        if answer.tool_call is None:
            block: dict[str, Any] = {"type": "text", "text": answer.text}
            stop_reason = "end_turn"
        else:
            call = answer.tool_call
            block = {
                "type": "tool_use",
                "id": f"toolu_{uuid.uuid4().hex[:24]}",
                "name": call.name,
                "input": call.arguments,
            }
            stop_reason = "tool_use"
        return self._message(
            conversation,
            content=[block],
            stop_reason=stop_reason,
            stop_sequence=None,
            usage={"input_tokens": answer.input_tokens, "output_tokens": answer.output_tokens},
        )

    def _start(self, conversation: Conversation, input_tokens: int) -> bytes:
        message = self._message(
            conversation,
            content=[],
            stop_reason=None,
            stop_sequence=None,
            usage={"input_tokens": input_tokens, "output_tokens": 1},
        )
        return sse_event({"type": "message_start", "message": message}, event="message_start")

    @staticmethod
    def _finish(stop_reason: str, output_tokens: int) -> list[bytes]:
        delta = {
            "type": "message_delta",
            "delta": {"stop_reason": stop_reason, "stop_sequence": None},
            "usage": {"output_tokens": output_tokens},
        }
        return [
            sse_event(delta, event="message_delta"),
            sse_event({"type": "message_stop"}, event="message_stop"),
        ]

    def stream_events(self, conversation: Conversation, answer: Answer) -> list[bytes]:
        if answer.tool_call is None:
            block: dict[str, Any] = {"type": "text", "text": ""}
            deltas = [{"type": "text_delta", "text": piece} for piece in split_pieces(answer.text)]
            stop_reason = "end_turn"
        else:
            call = answer.tool_call
            block = {
                "type": "tool_use",
                "id": f"toolu_{uuid.uuid4().hex[:24]}",
                "name": call.name,
                "input": {},
            }
            deltas = [
                {"type": "input_json_delta", "partial_json": piece}
                for piece in split_pieces(call.arguments_json)
            ]
            stop_reason = "tool_use"
        return [
            self._start(conversation, answer.input_tokens),
            sse_event(
                {"type": "content_block_start", "index": 0, "content_block": block},
                event="content_block_start",
            ),
            sse_event({"type": "ping"}, event="ping"),
            *(
                sse_event(
                    {"type": "content_block_delta", "index": 0, "delta": d}, event="content_block_delta"
                )
                for d in deltas
            ),
            sse_event({"type": "content_block_stop", "index": 0}, event="content_block_stop"),
            *self._finish(stop_reason, answer.output_tokens),
        ]

    def empty_reply(self, conversation: Conversation) -> dict[str, Any]:
        return self._message(
            conversation,
            content=[],
            stop_reason="end_turn",
            stop_sequence=None,
            usage={"input_tokens": 1, "output_tokens": 0},
        )

    def empty_events(self, conversation: Conversation) -> list[bytes]:
        return [self._start(conversation, 1), *self._finish("end_turn", 0)]

    def malformed_body(self) -> bytes:
        return b'{"type": "message", "content": ['

    def malformed_events(self) -> list[bytes]:
        return [b'event: message_start\ndata: {"type": "message_start", "message": {\n\n']

    def error_body(self, status: int, message: str) -> dict[str, Any]:
        error_type = _ERROR_TYPES.get(status, "api_error" if status >= 500 else "invalid_request_error")
        return {"type": "error", "error": {"type": error_type, "message": message}}
