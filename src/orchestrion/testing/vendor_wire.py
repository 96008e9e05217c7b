"""What the fake vendors have in common: a neutral view of a chat request, the answer, and the wire ABC.

Each vendor module (`wire_openai`, `wire_anthropic`, `wire_gemini`) reads its request format into a
`Conversation`, and writes an `Answer` back in its own response and streaming formats. The answer is
decided once, here, so the three formats always agree.
"""

from __future__ import annotations

import json
from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

from orchestrion.testing.schema_example import example_for_schema

_ECHO_CHARS = 40
_STREAM_PIECES = 3


@dataclass(frozen=True, kw_only=True)
class ToolSpec:
    """A tool the request offers: its name and JSON-schema parameters."""

    name: str
    parameters: Any


@dataclass(frozen=True, kw_only=True)
class Conversation:
    """The parts of a chat request, in any wire format, that decide the answer.

    Attributes:
        model: The model the request names.
        stream: Whether the client asked for a streamed answer.
        texts: Every text in the request (system, messages, tool results), for token counts.
        last_user_text: The text of the last user turn.
        tools: Tools offered.
        forced_tool: The tool the client forces, if any.
        tools_forbidden: The client forbids tool calls.
        has_tool_result: The conversation already contains a tool result.
        wants_json: Structured output is requested.
        json_schema: The schema of the structured output (None for "any JSON object").
        stream_usage: Send usage in a final stream chunk (OpenAI's ``stream_options.include_usage``).
    """

    model: str
    stream: bool
    texts: tuple[str, ...]
    last_user_text: str
    tools: tuple[ToolSpec, ...] = ()
    forced_tool: str | None = None
    tools_forbidden: bool = False
    has_tool_result: bool = False
    wants_json: bool = False
    json_schema: Any = None
    stream_usage: bool = False


@dataclass(frozen=True, kw_only=True)
class ToolCall:
    """A tool call the fake model makes; `arguments_json` is `arguments` serialised."""

    name: str
    arguments: dict[str, Any]
    arguments_json: str


@dataclass(frozen=True, kw_only=True)
class Answer:
    """The fake model's reply: text, or one tool call (then `text` is empty), and token counts."""

    text: str
    tool_call: ToolCall | None
    input_tokens: int
    output_tokens: int


def count_words(texts: tuple[str, ...] | list[str]) -> int:
    """Whitespace-separated words over `texts`, at least 1 (the fake tokenizer)."""
    return max(1, sum(len(text.split()) for text in texts))


def answer_conversation(conversation: Conversation) -> Answer:
    """Decide the deterministic answer: a tool call, a structured JSON text, or an echo."""
    input_tokens = count_words(conversation.texts)
    if conversation.tools and not conversation.has_tool_result and not conversation.tools_forbidden:
        tool = conversation.tools[0]
        if conversation.forced_tool is not None:
            tool = next(
                (t for t in conversation.tools if t.name == conversation.forced_tool),
                ToolSpec(name=conversation.forced_tool, parameters={}),
            )
        # A tool without parameters, or with a non-object schema, still takes an arguments object.
        example = example_for_schema(tool.parameters) if tool.parameters else {}
        arguments = example if isinstance(example, dict) else {}
        arguments_json = json.dumps(arguments)
        call = ToolCall(name=tool.name, arguments=arguments, arguments_json=arguments_json)
        return Answer(
            text="", tool_call=call, input_tokens=input_tokens, output_tokens=count_words([arguments_json])
        )
    if conversation.wants_json:
        schema = conversation.json_schema
        text = "{}" if schema is None else json.dumps(example_for_schema(schema))
    else:
        text = f"ok: {conversation.last_user_text[:_ECHO_CHARS]}"
    return Answer(text=text, tool_call=None, input_tokens=input_tokens, output_tokens=count_words([text]))


def split_pieces(text: str, pieces: int = _STREAM_PIECES) -> list[str]:
    """Split `text` into up to `pieces` non-empty consecutive fragments (one empty piece for "")."""
    count = max(1, min(pieces, len(text)))
    return [text[i * len(text) // count : (i + 1) * len(text) // count] for i in range(count)]


def dump_json(value: Any) -> bytes:
    """Compact JSON bytes, as vendors send them."""
    return json.dumps(value, separators=(",", ":")).encode()


def sse_event(data: Any, *, event: str | None = None, newline: str = "\n") -> bytes:
    """One server-sent event: an optional `event:` line and a `data:` line of JSON (or a raw string)."""
    payload = data if isinstance(data, str) else json.dumps(data, separators=(",", ":"))
    head = f"event: {event}{newline}" if event is not None else ""
    return f"{head}data: {payload}{newline}{newline}".encode()


def text_of(value: Any) -> str:
    """The text in a string or a list of content blocks/parts carrying ``text`` (other blocks ignored)."""
    if isinstance(value, str):
        return value
    if isinstance(value, list):
        return " ".join(
            block["text"] for block in value if isinstance(block, dict) and isinstance(block.get("text"), str)
        )
    return ""


class WireFormat(ABC):
    """One vendor's request and response formats, streaming included.

    Attributes:
        api: The vendor's name in `RecordedCall.api` and `Fault` targeting.
        stream_content_type: The content type of a streamed answer.
    """

    api: ClassVar[str]
    stream_content_type: ClassVar[bytes] = b"text/event-stream; charset=utf-8"

    def auth_error(self, headers: Mapping[str, str], query: Mapping[str, str]) -> tuple[int, Any] | None:
        """The (status, error body) to answer a request without valid credentials, or None."""
        return None

    @abstractmethod
    def parse(self, body: dict[str, Any], *, model: str, stream: bool) -> Conversation:
        """Read a request body (raises KeyError/TypeError/ValueError/AttributeError when invalid)."""

    @abstractmethod
    def reply(self, conversation: Conversation, answer: Answer) -> dict[str, Any]:
        """The non-streaming response body."""

    @abstractmethod
    def stream_events(self, conversation: Conversation, answer: Answer) -> list[bytes]:
        """The streamed response, one encoded SSE event per item, end marker included."""

    def cut_events(self, conversation: Conversation, answer: Answer) -> list[bytes]:
        """A couple of valid leading events of the stream, without anything that ends it.

        Every format puts its end marker (``[DONE]``, ``message_stop``, the ``finishReason`` event)
        last and streams at least two events, so the leading ones never end the stream.
        """
        events = self.stream_events(conversation, answer)
        return events[: min(2, len(events) - 1)]

    @abstractmethod
    def empty_reply(self, conversation: Conversation) -> dict[str, Any]:
        """A well-formed response with nothing in it (empty choices/content/candidates)."""

    @abstractmethod
    def empty_events(self, conversation: Conversation) -> list[bytes]:
        """A well-formed stream with nothing in it."""

    @abstractmethod
    def malformed_body(self) -> bytes:
        """A response body that starts like the vendor's JSON but is not JSON."""

    @abstractmethod
    def malformed_events(self) -> list[bytes]:
        """A stream whose event data is not JSON."""

    @abstractmethod
    def error_body(self, status: int, message: str) -> dict[str, Any]:
        """The vendor's error JSON for `status`."""
