from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest

from orchestrion.exceptions import ProviderError
from orchestrion.providers.anthropic import AnthropicProvider
from orchestrion.providers.base import ChatRequest, Message, StreamEvent, ToolSpec, ToolUse, Usage
from orchestrion.providers.options import Timeouts

SECRET = "sk-ant-api03-secret-0123456789"
SCHEMA = {"type": "object", "properties": {"summary": {"type": "string"}}, "required": ["summary"]}
WEATHER = ToolSpec(
    name="get_weather",
    description="Get the current weather in a given location",
    parameters={"type": "object", "properties": {"location": {"type": "string"}}, "required": ["location"]},
)

Handler = Callable[[httpx.Request], httpx.Response]
MakeProvider = Callable[..., AnthropicProvider]


def _request(**kwargs: Any) -> ChatRequest:
    return ChatRequest(messages=(Message(role="user", content="Hello, Claude"),), **kwargs)


def _message(content: list[dict[str, Any]], stop_reason: str = "end_turn", **usage: int) -> dict[str, Any]:
    return {
        "id": "msg_01XFDUDYJgAACzvnptvVoYEL",
        "type": "message",
        "role": "assistant",
        "model": "claude-sonnet-4-5",
        "content": content,
        "stop_reason": stop_reason,
        "stop_sequence": None,
        "usage": {"input_tokens": 12, "output_tokens": 6, **usage},
    }


def _sse(*events: dict[str, Any]) -> bytes:
    return "".join(f"event: {event['type']}\ndata: {json.dumps(event)}\n\n" for event in events).encode()


def _sse_response(body: bytes) -> httpx.Response:
    return httpx.Response(200, headers={"content-type": "text/event-stream; charset=utf-8"}, content=body)


MESSAGE_START = {
    "type": "message_start",
    "message": {
        "id": "msg_1nZdL29xx5MUA1yADyHTEsnR8uuvGzszyY",
        "type": "message",
        "role": "assistant",
        "content": [],
        "model": "claude-sonnet-4-5",
        "stop_reason": None,
        "stop_sequence": None,
        "usage": {"input_tokens": 25, "cache_read_input_tokens": 5, "output_tokens": 1},
    },
}
TEXT_EVENTS = (
    MESSAGE_START,
    {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}},
    {"type": "ping"},
    {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "Hello"}},
    {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "!"}},
    {"type": "content_block_stop", "index": 0},
    {
        "type": "message_delta",
        "delta": {"stop_reason": "end_turn", "stop_sequence": None},
        "usage": {"output_tokens": 15},
    },
)
MESSAGE_STOP = {"type": "message_stop"}


def _tool_events(index: int, tool_id: str, name: str, *fragments: str) -> list[dict[str, Any]]:
    start = {
        "type": "content_block_start",
        "index": index,
        "content_block": {"type": "tool_use", "id": tool_id, "name": name, "input": {}},
    }
    deltas = [
        {
            "type": "content_block_delta",
            "index": index,
            "delta": {"type": "input_json_delta", "partial_json": f},
        }
        for f in fragments
    ]
    return [start, *deltas, {"type": "content_block_stop", "index": index}]


class _BrokenStream(httpx.AsyncByteStream):
    def __init__(self, body: bytes, error: Exception) -> None:
        self._body = body
        self._error = error

    async def __aiter__(self) -> AsyncIterator[bytes]:
        yield self._body
        raise self._error


@pytest.fixture
async def make_provider() -> AsyncIterator[MakeProvider]:
    clients: list[httpx.AsyncClient] = []

    def make(handler: Handler, **kwargs: Any) -> AnthropicProvider:
        client = httpx.AsyncClient(transport=httpx.MockTransport(handler))
        clients.append(client)
        return AnthropicProvider(model="claude-sonnet-4-5", api_key=SECRET, client=client, **kwargs)

    yield make
    for client in clients:
        await client.aclose()


def _capture(response: dict[str, Any]) -> tuple[list[httpx.Request], Handler]:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json=response)

    return seen, handler


async def _collect(provider: AnthropicProvider, request: ChatRequest) -> list[StreamEvent]:
    return [event async for event in provider.stream(request)]


# --- Requests -------------------------------------------------------------------------------------


async def test_request_goes_to_messages_api_with_key_version_and_required_max_tokens(
    make_provider: MakeProvider,
) -> None:
    seen, handler = _capture(_message([{"type": "text", "text": "hi"}]))

    await make_provider(handler).complete(_request(max_tokens=99, temperature=1.7, seed=3))

    sent = seen[0]
    body = json.loads(sent.content)
    assert str(sent.url) == "https://api.anthropic.com/v1/messages"
    assert sent.headers["x-api-key"] == SECRET
    assert sent.headers["anthropic-version"] == "2023-06-01"
    assert sent.headers["content-type"] == "application/json"
    assert "authorization" not in sent.headers
    assert body == {
        "model": "claude-sonnet-4-5",
        "max_tokens": 99,
        "temperature": 1.0,
        "messages": [{"role": "user", "content": [{"type": "text", "text": "Hello, Claude"}]}],
    }


async def test_system_goes_top_level_and_same_role_turns_are_merged_with_tool_history(
    make_provider: MakeProvider,
) -> None:
    seen, handler = _capture(_message([{"type": "text", "text": "ok"}]))
    uses = (
        ToolUse(id="toolu_1", name="get_weather", arguments={"location": "Paris"}),
        ToolUse(id="toolu_2", name="get_weather", arguments={"location": "Oslo"}),
    )
    request = ChatRequest(
        messages=(
            Message(role="system", content="You are terse."),
            Message(role="system", content="Use tools."),
            Message(role="user", content="Weather?"),
            Message(role="user", content="Paris and Oslo."),
            Message(role="assistant", content="Checking.", tool_uses=uses),
            Message(role="tool", content="18C", tool_use_id="toolu_1", name="get_weather"),
            Message(role="tool", content="4C", tool_use_id="toolu_2", name="get_weather"),
            Message(role="user", content="And tomorrow?"),
        ),
        tools=(WEATHER,),
    )

    await make_provider(handler).complete(request)

    body = json.loads(seen[0].content)
    assert body["system"] == "You are terse.\n\nUse tools."
    assert body["messages"] == [
        {
            "role": "user",
            "content": [{"type": "text", "text": "Weather?"}, {"type": "text", "text": "Paris and Oslo."}],
        },
        {
            "role": "assistant",
            "content": [
                {"type": "text", "text": "Checking."},
                {"type": "tool_use", "id": "toolu_1", "name": "get_weather", "input": {"location": "Paris"}},
                {"type": "tool_use", "id": "toolu_2", "name": "get_weather", "input": {"location": "Oslo"}},
            ],
        },
        {
            "role": "user",
            "content": [
                {"type": "tool_result", "tool_use_id": "toolu_1", "content": "18C"},
                {"type": "tool_result", "tool_use_id": "toolu_2", "content": "4C"},
                {"type": "text", "text": "And tomorrow?"},
            ],
        },
    ]
    assert body["tools"] == [
        {
            "name": "get_weather",
            "description": "Get the current weather in a given location",
            "input_schema": WEATHER.parameters,
        }
    ]
    assert body["tool_choice"] == {"type": "auto"}


@pytest.mark.parametrize(
    ("choice", "expected"),
    [
        ("auto", {"type": "auto"}),
        ("none", {"type": "none"}),
        ("required", {"type": "any"}),
        ("get_weather", {"type": "tool", "name": "get_weather"}),
    ],
)
async def test_tool_choice_is_mapped(
    make_provider: MakeProvider, choice: str, expected: dict[str, str]
) -> None:
    seen, handler = _capture(_message([{"type": "text", "text": "ok"}]))

    await make_provider(handler).complete(_request(tools=(WEATHER,), tool_choice=choice))

    assert json.loads(seen[0].content)["tool_choice"] == expected


async def test_an_assistant_turn_with_only_tool_calls_has_no_empty_text_block(
    make_provider: MakeProvider,
) -> None:
    seen, handler = _capture(_message([{"type": "text", "text": "ok"}]))
    use = ToolUse(id="toolu_1", name="get_weather", arguments={})
    messages = (Message(role="user", content="go"), Message(role="assistant", content="", tool_uses=(use,)))

    await make_provider(handler).complete(ChatRequest(messages=messages))

    body = json.loads(seen[0].content)
    assert body["messages"][1]["content"] == [
        {"type": "tool_use", "id": "toolu_1", "name": "get_weather", "input": {}}
    ]
    assert "tools" not in body
    assert "tool_choice" not in body


async def test_structured_output_forces_the_json_output_tool_and_returns_its_input(
    make_provider: MakeProvider,
) -> None:
    reply = _message(
        [{"type": "tool_use", "id": "toolu_9", "name": "json_output", "input": {"summary": "fine"}}],
        stop_reason="tool_use",
    )
    seen, handler = _capture(reply)

    response = await make_provider(handler).complete(_request(json_schema=SCHEMA))

    body = json.loads(seen[0].content)
    assert body["tools"] == [
        {
            "name": "json_output",
            "description": "Give the answer as a JSON object matching this schema.",
            "input_schema": SCHEMA,
        }
    ]
    assert body["tool_choice"] == {"type": "tool", "name": "json_output"}
    assert response.json() == {"summary": "fine"}
    assert response.tool_uses == ()
    assert response.finish_reason == "end_turn"


# --- Responses ------------------------------------------------------------------------------------


async def test_text_tool_uses_stop_reason_and_usage_with_cache_are_parsed(
    make_provider: MakeProvider,
) -> None:
    reply = _message(
        [
            {"type": "thinking", "thinking": "hmm", "signature": "abc"},
            {"type": "text", "text": "I'll check "},
            {"type": "text", "text": "the weather."},
            {"type": "tool_use", "id": "toolu_01A", "name": "get_weather", "input": {"location": "Paris"}},
        ],
        stop_reason="tool_use",
        cache_creation_input_tokens=100,
        cache_read_input_tokens=50,
    )
    provider = make_provider(lambda request: httpx.Response(200, json=reply))

    response = await provider.complete(_request(tools=(WEATHER,)))

    assert response.content == "I'll check the weather."
    assert response.tool_uses == (
        ToolUse(id="toolu_01A", name="get_weather", arguments={"location": "Paris"}),
    )
    assert response.finish_reason == "tool_use"
    assert response.usage == Usage(input_tokens=162, output_tokens=6)
    assert (response.provider, response.deployment) == ("anthropic", "anthropic:claude-sonnet-4-5")


async def test_max_tokens_stop_is_returned_not_raised(make_provider: MakeProvider) -> None:
    reply = _message([{"type": "text", "text": "cut"}], stop_reason="max_tokens")

    response = await make_provider(lambda request: httpx.Response(200, json=reply)).complete(_request())

    assert (response.content, response.finish_reason) == ("cut", "max_tokens")


# --- Errors ---------------------------------------------------------------------------------------


def _error(kind: str, message: str) -> dict[str, Any]:
    return {
        "type": "error",
        "error": {"type": kind, "message": message},
        "request_id": "req_011CSHoEeqs5C35K2UUqR7Fy",
    }


@pytest.mark.parametrize(
    ("status", "error_type", "kind"),
    [
        (529, "overloaded_error", "server_error"),
        (429, "rate_limit_error", "rate_limited"),
        (500, "api_error", "server_error"),
        (504, "timeout_error", "timeout"),
        (408, "timeout_error", "timeout"),
    ],
)
async def test_transient_errors_are_retryable_and_honour_retry_after(
    make_provider: MakeProvider, status: int, error_type: str, kind: str
) -> None:
    provider = make_provider(
        lambda request: httpx.Response(
            status, headers={"retry-after": "12"}, json=_error(error_type, "Overloaded")
        )
    )

    with pytest.raises(ProviderError) as caught:
        await provider.complete(_request())

    error = caught.value
    assert (error.retryable, error.kind, error.status_code, error.retry_after) == (True, kind, status, 12.0)
    assert error.message == f"anthropic:claude-sonnet-4-5: HTTP {status}: {error_type}: Overloaded"


@pytest.mark.parametrize(
    ("status", "error_type", "kind"),
    [
        (400, "invalid_request_error", "bad_request"),
        (401, "authentication_error", "auth"),
        (403, "permission_error", "auth"),
        (404, "not_found_error", "not_found"),
        (413, "request_too_large", "bad_request"),
    ],
)
async def test_client_errors_are_not_retryable(
    make_provider: MakeProvider, status: int, error_type: str, kind: str
) -> None:
    provider = make_provider(
        lambda request: httpx.Response(status, headers={"retry-after": "5"}, json=_error(error_type, "no"))
    )

    with pytest.raises(ProviderError) as caught:
        await provider.complete(_request())

    assert (caught.value.retryable, caught.value.kind, caught.value.retry_after) == (False, kind, None)


async def test_error_messages_never_contain_the_api_key(make_provider: MakeProvider) -> None:
    body = _error("authentication_error", f"invalid x-api-key {SECRET}")
    provider = make_provider(lambda request: httpx.Response(401, json=body))

    with pytest.raises(ProviderError) as caught:
        await provider.complete(_request())

    assert SECRET not in caught.value.message
    assert "[redacted]" in caught.value.message


@pytest.mark.parametrize(
    ("response", "reason"),
    [
        (httpx.Response(200, json={"id": "msg_1", "type": "message"}), "missing field 'content'"),
        (
            httpx.Response(200, json=_message([{"type": "tool_use", "id": "t", "name": "x", "input": "no"}])),
            "input",
        ),
        (httpx.Response(200, text="<html><body>Sign in to the proxy</body></html>"), "HTML page: Sign in"),
        (httpx.Response(200, content=b""), "body is not JSON"),
    ],
)
async def test_malformed_bodies_are_retryable_bad_responses(
    make_provider: MakeProvider, response: httpx.Response, reason: str
) -> None:
    provider = make_provider(lambda request: response)

    with pytest.raises(ProviderError) as caught:
        await provider.complete(_request())

    assert (caught.value.retryable, caught.value.kind) == (True, "bad_response")
    assert reason in caught.value.message


async def test_an_error_object_with_status_200_is_raised_by_its_type(make_provider: MakeProvider) -> None:
    provider = make_provider(
        lambda request: httpx.Response(200, json=_error("overloaded_error", "Overloaded"))
    )

    with pytest.raises(ProviderError, match="error object with HTTP 200: overloaded_error") as caught:
        await provider.complete(_request())

    assert (caught.value.retryable, caught.value.kind) == (True, "server_error")


async def test_read_timeout_is_a_retryable_timeout(make_provider: MakeProvider) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        raise httpx.ReadTimeout("timed out")

    with pytest.raises(ProviderError, match="read 7s") as caught:
        await make_provider(handler, timeouts=Timeouts(connect=2, read=7)).complete(_request())

    assert (caught.value.retryable, caught.value.kind) == (True, "timeout")


async def test_a_redirect_is_a_non_retryable_configuration_error(make_provider: MakeProvider) -> None:
    provider = make_provider(
        lambda request: httpx.Response(308, headers={"location": "https://new.example/v1"})
    )

    with pytest.raises(
        ProviderError, match=r"redirected to https://new\.example/v1; check the base URL"
    ) as caught:
        await provider.complete(_request())

    assert (caught.value.retryable, caught.value.kind, caught.value.status_code) == (False, "error", 308)


# --- Streaming ------------------------------------------------------------------------------------


async def test_stream_yields_text_deltas_and_usage(make_provider: MakeProvider) -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return _sse_response(_sse(*TEXT_EVENTS, MESSAGE_STOP))

    events = await _collect(make_provider(handler), _request())

    assert json.loads(seen[0].content)["stream"] is True
    assert [e.delta for e in events[:-1]] == ["Hello", "!"]
    assert events[-1] == StreamEvent(
        done=True, usage=Usage(input_tokens=30, output_tokens=15), finish_reason="end_turn", tool_uses=()
    )


async def test_stream_assembles_tool_input_fragments_per_block(make_provider: MakeProvider) -> None:
    events = [
        MESSAGE_START,
        *_tool_events(1, "toolu_A", "get_weather", "", '{"location":', ' "Paris"}'),
        *_tool_events(2, "toolu_B", "get_weather", '{"location": "Oslo"}'),
        {"type": "message_delta", "delta": {"stop_reason": "tool_use"}, "usage": {"output_tokens": 40}},
        MESSAGE_STOP,
    ]
    provider = make_provider(lambda request: _sse_response(_sse(*events)))

    final = (await _collect(provider, _request(tools=(WEATHER,))))[-1]

    assert final.tool_uses == (
        ToolUse(id="toolu_A", name="get_weather", arguments={"location": "Paris"}),
        ToolUse(id="toolu_B", name="get_weather", arguments={"location": "Oslo"}),
    )
    assert final.finish_reason == "tool_use"


async def test_structured_stream_yields_the_json_output_input_as_text(make_provider: MakeProvider) -> None:
    events = [
        MESSAGE_START,
        *_tool_events(0, "toolu_J", "json_output", '{"summ', 'ary": "ok"}'),
        {"type": "message_delta", "delta": {"stop_reason": "tool_use"}, "usage": {"output_tokens": 9}},
        MESSAGE_STOP,
    ]
    async with httpx.AsyncClient(
        transport=httpx.MockTransport(lambda r: _sse_response(_sse(*events)))
    ) as client:
        provider = AnthropicProvider(model="claude-haiku-4-5", api_key=SECRET, client=client, stream=True)
        response = await provider.complete(_request(json_schema=SCHEMA))

    assert response.json() == {"summary": "ok"}
    assert response.tool_uses == ()
    assert response.finish_reason == "end_turn"
    assert response.usage == Usage(input_tokens=30, output_tokens=9)


async def test_an_error_event_mid_stream_is_retryable(make_provider: MakeProvider) -> None:
    body = _sse(*TEXT_EVENTS[:4], _error("overloaded_error", "Overloaded"))
    provider = make_provider(lambda request: _sse_response(body))
    deltas: list[str] = []

    with pytest.raises(ProviderError, match="overloaded_error: Overloaded") as caught:
        async for event in provider.stream(_request()):
            deltas.append(event.delta)

    assert deltas == ["Hello"]
    assert (caught.value.retryable, caught.value.kind) == (True, "server_error")


async def test_a_stream_without_message_stop_is_a_retryable_cut_off(make_provider: MakeProvider) -> None:
    provider = make_provider(lambda request: _sse_response(_sse(*TEXT_EVENTS)))

    with pytest.raises(ProviderError, match=r"cut off.*message_stop") as caught:
        await _collect(provider, _request())

    assert (caught.value.retryable, caught.value.kind) == (True, "bad_response")


async def test_a_stream_dropped_mid_way_is_a_retryable_transport_error(make_provider: MakeProvider) -> None:
    stream = _BrokenStream(_sse(*TEXT_EVENTS[:3]), httpx.RemoteProtocolError("incomplete chunked read"))
    provider = make_provider(
        lambda request: httpx.Response(200, headers={"content-type": "text/event-stream"}, stream=stream)
    )

    with pytest.raises(ProviderError) as caught:
        await _collect(provider, _request())

    assert (caught.value.retryable, caught.value.kind) == (True, "transport")


async def test_a_stream_refused_at_start_raises_the_status_error(make_provider: MakeProvider) -> None:
    provider = make_provider(
        lambda request: httpx.Response(
            529, headers={"retry-after": "3"}, json=_error("overloaded_error", "Overloaded")
        )
    )

    with pytest.raises(ProviderError) as caught:
        await _collect(provider, _request())

    assert (caught.value.status_code, caught.value.retry_after, caught.value.retryable) == (529, 3.0, True)


async def test_a_malformed_stream_event_is_a_bad_response(make_provider: MakeProvider) -> None:
    bad = {"type": "content_block_delta", "delta": {"type": "text_delta", "text": "x"}}
    provider = make_provider(lambda request: _sse_response(_sse(MESSAGE_START, bad, MESSAGE_STOP)))

    with pytest.raises(ProviderError, match="malformed content_block_delta event") as caught:
        await _collect(provider, _request())

    assert caught.value.kind == "bad_response"


# --- Client ownership -----------------------------------------------------------------------------


async def test_aclose_closes_only_a_client_it_created() -> None:
    own = AnthropicProvider(model="m", api_key=SECRET, base_url="http://127.0.0.1:9/anthropic/")
    async with httpx.AsyncClient() as injected:
        borrowed = AnthropicProvider(model="m", api_key=SECRET, client=injected)
        await borrowed.aclose()
        assert not injected.is_closed
    await own.aclose()

    assert own._client.is_closed
    assert own._url == "http://127.0.0.1:9/anthropic/v1/messages"


async def test_an_empty_end_turn_answer_is_a_retryable_bad_response(make_provider: MakeProvider) -> None:
    provider = make_provider(lambda request: httpx.Response(200, json=_message([])))

    with pytest.raises(ProviderError, match="no content blocks") as caught:
        await provider.complete(_request())

    assert (caught.value.retryable, caught.value.kind) == (True, "bad_response")


async def test_an_empty_max_tokens_answer_is_returned(make_provider: MakeProvider) -> None:
    provider = make_provider(lambda request: httpx.Response(200, json=_message([], stop_reason="max_tokens")))

    response = await provider.complete(_request())

    assert (response.content, response.finish_reason) == ("", "max_tokens")


async def test_an_empty_streamed_answer_is_a_retryable_bad_response(make_provider: MakeProvider) -> None:
    events = (MESSAGE_START, {"type": "message_delta", "delta": {"stop_reason": "end_turn"}}, MESSAGE_STOP)
    provider = make_provider(lambda request: _sse_response(_sse(*events)))

    with pytest.raises(ProviderError, match="no content blocks") as caught:
        await _collect(provider, _request())

    assert caught.value.kind == "bad_response"
