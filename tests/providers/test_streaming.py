from __future__ import annotations

import time
from collections.abc import AsyncIterator

import pytest

from orchestrion.exceptions import ProviderError
from orchestrion.providers.base import StreamEvent, ToolUse, Usage
from orchestrion.providers.streaming import ToolCallBuffer, decode_tool_arguments, response_from_stream


async def _events(*events: StreamEvent, error: Exception | None = None) -> AsyncIterator[StreamEvent]:
    for event in events:
        yield event
    if error is not None:
        raise error


async def test_response_from_stream_joins_deltas_and_takes_the_final_event() -> None:
    use = ToolUse(id="call_1", name="grep", arguments={"pattern": "x"})
    events = _events(
        StreamEvent(delta="Hel"),
        StreamEvent(delta="lo"),
        StreamEvent(
            done=True, usage=Usage(input_tokens=5, output_tokens=2), finish_reason="stop", tool_uses=(use,)
        ),
    )

    response = await response_from_stream(
        events, provider="groq", model="llama", started=time.perf_counter(), deployment="groq:llama"
    )

    assert response.content == "Hello"
    assert response.usage == Usage(input_tokens=5, output_tokens=2)
    assert response.finish_reason == "stop"
    assert response.tool_uses == (use,)
    assert (response.provider, response.model, response.deployment) == ("groq", "llama", "groq:llama")
    assert response.latency_seconds >= 0


async def test_response_from_stream_without_usage_reports_zero_tokens() -> None:
    response = await response_from_stream(
        _events(StreamEvent(delta="x"), StreamEvent(done=True)), provider="p", model="m", started=0.0
    )

    assert response.usage == Usage()
    assert response.latency_seconds > 0


async def test_a_stream_without_final_event_is_a_retryable_bad_response() -> None:
    with pytest.raises(ProviderError, match="p:m: stream cut off") as caught:
        await response_from_stream(_events(StreamEvent(delta="par")), provider="p", model="m", started=0.0)

    assert caught.value.retryable is True
    assert caught.value.kind == "bad_response"


async def test_errors_raised_by_the_stream_propagate_unchanged() -> None:
    error = ProviderError("boom", provider="p", retryable=True, kind="transport")

    with pytest.raises(ProviderError) as caught:
        await response_from_stream(
            _events(StreamEvent(delta="a"), error=error), provider="p", model="m", started=0.0
        )

    assert caught.value is error


def test_tool_call_buffer_assembles_fragments_by_index_in_index_order() -> None:
    buffer = ToolCallBuffer()
    buffer.add(1, call_id="call_b", name="read_file")
    buffer.add(0, call_id="call_a", name="grep", arguments='{"pat')
    buffer.add(1, arguments='{"path": "a.py"}')
    buffer.add(0, arguments='tern": "TODO"}')

    assert buffer.tool_uses() == (
        ToolUse(id="call_a", name="grep", arguments={"pattern": "TODO"}),
        ToolUse(id="call_b", name="read_file", arguments={"path": "a.py"}),
    )


def test_tool_call_buffer_treats_no_arguments_as_an_empty_object() -> None:
    buffer = ToolCallBuffer()
    buffer.add(1, call_id="toolu_2", name="list_files")

    assert buffer.tool_uses() == (ToolUse(id="toolu_2", name="list_files", arguments={}),)


def test_tool_call_buffer_rejects_a_call_without_name_and_names_one_without_id() -> None:
    buffer = ToolCallBuffer()
    buffer.add(3, name="grep")

    assert buffer.tool_uses() == (ToolUse(id="call_3", name="grep", arguments={}),)
    buffer.add(0, arguments="{}")
    with pytest.raises(ValueError, match="#0 has no name"):
        buffer.tool_uses()


def test_tool_call_buffer_rejects_truncated_arguments() -> None:
    buffer = ToolCallBuffer()
    buffer.add(0, call_id="c", name="grep", arguments='{"pattern": "unterminated')

    with pytest.raises(ValueError, match="not valid JSON"):
        buffer.tool_uses()


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ('{"a": 1}', {"a": 1}),
        ("", {}),
        ("  ", {}),
        (None, {}),
        ({"already": "parsed"}, {"already": "parsed"}),
    ],
)
def test_decode_tool_arguments_accepts_objects_and_empty_text(
    raw: str | dict[str, object] | None, expected: dict[str, object]
) -> None:
    assert decode_tool_arguments(raw, tool="t") == expected


@pytest.mark.parametrize(("raw", "message"), [("{nope", "not valid JSON"), ("[1, 2]", "not a JSON object")])
def test_decode_tool_arguments_rejects_what_is_not_a_json_object(raw: str, message: str) -> None:
    with pytest.raises(ValueError, match=message) as caught:
        decode_tool_arguments(raw, tool="grep")

    assert "'grep'" in str(caught.value)
