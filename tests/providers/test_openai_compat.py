from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import httpx
import pytest

from orchestrion.exceptions import ConfigurationError, ProviderError
from orchestrion.providers.base import ChatRequest, Message, StreamEvent, ToolSpec, ToolUse, Usage
from orchestrion.providers.openai_compat import OpenAICompatProvider, chat_completion_body, parse_retry_after
from orchestrion.providers.options import Timeouts
from orchestrion.testing import OpenAITestServer, VendorTestServer

SECRET = "sk-test-0123456789abcdef"
SCHEMA = {
    "type": "object",
    "properties": {
        "summary": {"type": "string"},
        "severity": {"type": "string", "enum": ["low", "medium", "high"]},
        "count": {"type": "integer"},
    },
    "required": ["summary", "severity", "count"],
}

Handler = Callable[[httpx.Request], httpx.Response]
MakeProvider = Callable[[Handler], OpenAICompatProvider]


def _request(**kwargs: object) -> ChatRequest:
    return ChatRequest(messages=(Message(role="user", content="hello there"),), **kwargs)  # type: ignore[arg-type]


def _ok_body(content: str = "hi", finish_reason: str = "stop") -> dict[str, object]:
    return {
        "choices": [
            {"index": 0, "message": {"role": "assistant", "content": content}, "finish_reason": finish_reason}
        ],
        "usage": {"prompt_tokens": 11, "completion_tokens": 3},
    }


@pytest.fixture
async def make_provider() -> AsyncIterator[MakeProvider]:
    clients: list[httpx.AsyncClient] = []

    def make(handler: Handler) -> OpenAICompatProvider:
        client = httpx.AsyncClient(transport=httpx.MockTransport(handler))
        clients.append(client)
        return OpenAICompatProvider(
            base_url="https://llm.example/v1/", model="gpt-test", api_key=SECRET, timeout=5, client=client
        )

    yield make
    for client in clients:
        await client.aclose()


async def test_complete_parses_content_usage_and_finish_reason(make_provider: MakeProvider) -> None:
    provider = make_provider(lambda request: httpx.Response(200, json=_ok_body("the answer", "length")))

    response = await provider.complete(_request())

    assert response.content == "the answer"
    assert response.finish_reason == "length"
    assert (response.usage.input_tokens, response.usage.output_tokens) == (11, 3)
    assert response.provider == "openai_compat"
    assert response.model == "gpt-test"
    assert response.latency_seconds >= 0


async def test_request_posts_to_chat_completions_with_bearer_and_json_schema(
    make_provider: MakeProvider,
) -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json=_ok_body())

    provider = make_provider(handler)
    await provider.complete(_request(json_schema=SCHEMA, max_tokens=77, temperature=0.0, seed=7))

    sent = seen[0]
    body = json.loads(sent.content)
    assert str(sent.url) == "https://llm.example/v1/chat/completions"
    assert sent.headers["Authorization"] == f"Bearer {SECRET}"
    assert body["model"] == "gpt-test"
    assert body["messages"] == [{"role": "user", "content": "hello there"}]
    assert (body["max_tokens"], body["temperature"], body["seed"]) == (77, 0.0, 7)
    assert body["response_format"] == {
        "type": "json_schema",
        "json_schema": {"name": "output", "schema": SCHEMA, "strict": False},
    }


async def test_request_without_schema_or_seed_omits_them(make_provider: MakeProvider) -> None:
    bodies: list[dict[str, object]] = []

    def handler(request: httpx.Request) -> httpx.Response:
        bodies.append(json.loads(request.content))
        return httpx.Response(200, json=_ok_body())

    await make_provider(handler).complete(_request())

    assert "response_format" not in bodies[0]
    assert "seed" not in bodies[0]


async def test_missing_api_key_sends_no_authorization_header() -> None:
    headers: list[httpx.Headers] = []

    def handler(request: httpx.Request) -> httpx.Response:
        headers.append(request.headers)
        return httpx.Response(200, json=_ok_body())

    async with httpx.AsyncClient(transport=httpx.MockTransport(handler)) as client:
        provider = OpenAICompatProvider(base_url="http://local/v1", model="m", api_key=None, client=client)
        await provider.complete(_request())

    assert "Authorization" not in headers[0]


@pytest.mark.parametrize("status", [408, 429, 500, 502, 503, 504])
async def test_transient_statuses_are_retryable(make_provider: MakeProvider, status: int) -> None:
    provider = make_provider(lambda request: httpx.Response(status, text="busy"))

    with pytest.raises(ProviderError) as caught:
        await provider.complete(_request())

    assert caught.value.retryable is True
    assert caught.value.status_code == status
    assert str(status) in caught.value.message


@pytest.mark.parametrize("status", [400, 401, 403, 404, 422])
async def test_client_errors_fail_fast(make_provider: MakeProvider, status: int) -> None:
    provider = make_provider(lambda request: httpx.Response(status, json={"error": {"message": "no"}}))

    with pytest.raises(ProviderError) as caught:
        await provider.complete(_request())

    assert caught.value.retryable is False
    assert caught.value.status_code == status
    assert caught.value.retry_after is None


async def test_retry_after_seconds_header_is_parsed(make_provider: MakeProvider) -> None:
    provider = make_provider(lambda request: httpx.Response(429, headers={"Retry-After": "7"}))

    with pytest.raises(ProviderError) as caught:
        await provider.complete(_request())

    assert caught.value.retry_after == 7.0


async def test_retry_after_http_date_header_is_parsed(make_provider: MakeProvider) -> None:
    when = format_datetime(datetime.now(UTC) + timedelta(seconds=30), usegmt=True)
    provider = make_provider(lambda request: httpx.Response(503, headers={"Retry-After": when}))

    with pytest.raises(ProviderError) as caught:
        await provider.complete(_request())

    assert caught.value.retry_after is not None
    assert 25 <= caught.value.retry_after <= 30


def test_parse_retry_after_handles_past_dates_garbage_and_absence() -> None:
    now = datetime(2025, 1, 1, tzinfo=UTC)
    assert parse_retry_after("Tue, 31 Dec 2024 23:59:00 GMT", now=now) == 0.0
    assert parse_retry_after("Wed, 01 Jan 2025 00:00:10 GMT", now=now) == 10.0
    assert parse_retry_after("1.5") == 1.5
    assert parse_retry_after("-3") == 0.0
    assert parse_retry_after("soon") is None
    assert parse_retry_after("") is None
    assert parse_retry_after(None) is None


@pytest.mark.parametrize(
    "error",
    [
        httpx.ReadTimeout("read timed out"),
        httpx.ConnectTimeout("connect timed out"),
        httpx.ConnectError("connection refused"),
        httpx.RemoteProtocolError("server disconnected"),
        httpx.ReadError("connection reset"),
    ],
)
async def test_transport_failures_are_retryable(make_provider: MakeProvider, error: httpx.HTTPError) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        raise error

    with pytest.raises(ProviderError) as caught:
        await make_provider(handler).complete(_request())

    assert caught.value.retryable is True
    assert caught.value.status_code is None
    assert type(error).__name__ in caught.value.message


@pytest.mark.parametrize(
    "body",
    [
        b"<html>gateway</html>",
        b'{"choices": []}',
        b'{"result": "no choices key"}',
        b'{"choices": [{"message": {"content": 42}}]}',
        b"[1, 2, 3]",
    ],
)
async def test_malformed_success_body_is_retryable_provider_error(
    make_provider: MakeProvider, body: bytes
) -> None:
    provider = make_provider(lambda request: httpx.Response(200, content=body))

    with pytest.raises(ProviderError, match="malformed response") as caught:
        await provider.complete(_request())

    assert caught.value.retryable is True


async def test_error_message_never_contains_the_api_key(make_provider: MakeProvider) -> None:
    echo = json.dumps({"error": f"invalid key {SECRET}", "headers": {"authorization": f"Bearer {SECRET}"}})
    provider = make_provider(lambda request: httpx.Response(401, text=echo))

    with pytest.raises(ProviderError) as caught:
        await provider.complete(_request())

    assert SECRET not in str(caught.value)
    assert SECRET not in json.dumps(caught.value.details)
    assert "401" in caught.value.message


async def test_error_message_keeps_at_most_200_chars_of_the_body(make_provider: MakeProvider) -> None:
    provider = make_provider(lambda request: httpx.Response(500, text="x" * 5000))

    with pytest.raises(ProviderError) as caught:
        await provider.complete(_request())

    assert caught.value.message.count("x") == 200


async def test_aclose_leaves_an_injected_client_open(make_provider: MakeProvider) -> None:
    provider = make_provider(lambda request: httpx.Response(200, json=_ok_body()))

    await provider.aclose()

    assert (await provider.complete(_request())).content == "hi"


async def test_aclose_closes_the_client_it_created() -> None:
    provider = OpenAICompatProvider(base_url="http://127.0.0.1:9/v1", model="m")

    await provider.aclose()

    assert provider._client.is_closed


async def test_real_local_server_round_trip_with_schema_and_scripted_failure() -> None:
    async with OpenAITestServer(model="test-model") as server:
        provider = OpenAICompatProvider(base_url=server.base_url, model="test-model", timeout=5)
        try:
            server.fail_next(503, count=1, retry_after=2)
            with pytest.raises(ProviderError) as caught:
                await provider.complete(_request(json_schema=SCHEMA))
            structured = await provider.complete(_request(json_schema=SCHEMA))
            text = await provider.complete(_request())
        finally:
            await provider.aclose()

    assert caught.value.retryable is True
    assert caught.value.status_code == 503
    assert caught.value.retry_after == 2.0
    assert structured.json() == {"summary": "ok", "severity": "low", "count": 0}
    assert structured.usage.input_tokens == 2
    assert text.content == "ok: hello there"
    assert server.request_count == 3


# --- Helpers of the tests below ------------------------------------------------------------------


def _tool_call(call_id: str, name: str, arguments: str) -> dict[str, object]:
    return {"id": call_id, "type": "function", "function": {"name": name, "arguments": arguments}}


def _sse(*events: object, done: bool = True) -> bytes:
    lines = [f"data: {json.dumps(event)}\n\n" for event in events]
    if done:
        lines.append("data: [DONE]\n\n")
    return "".join(lines).encode()


def _sse_response(body: bytes) -> httpx.Response:
    return httpx.Response(200, headers={"content-type": "text/event-stream"}, content=body)


class _BrokenStream(httpx.AsyncByteStream):
    """A body that delivers some chunks, then fails the way a dropped connection does."""

    def __init__(self, chunks: list[bytes], error: Exception) -> None:
        self._chunks = chunks
        self._error = error

    async def __aiter__(self) -> AsyncIterator[bytes]:
        for chunk in self._chunks:
            yield chunk
        raise self._error


def _chunk(delta: dict[str, object], finish_reason: str | None = None) -> dict[str, object]:
    return {
        "id": "chatcmpl-1",
        "object": "chat.completion.chunk",
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish_reason}],
    }


async def _collect(provider: OpenAICompatProvider, request: ChatRequest) -> list[StreamEvent]:
    return [event async for event in provider.stream(request)]


def _recorder(
    reply: Callable[[], httpx.Response] = lambda: httpx.Response(200, json=_ok_body()),
) -> tuple[list[httpx.Request], Handler]:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return reply()

    return seen, handler


# --- Construction, auth and headers ---------------------------------------------------------------


async def test_timeouts_are_sent_as_the_httpx_request_timeout() -> None:
    seen, handler = _recorder()
    async with httpx.AsyncClient(transport=httpx.MockTransport(handler)) as client:
        provider = OpenAICompatProvider(
            base_url="http://local/v1", model="m", timeouts=Timeouts(connect=1.5, read=9.0), client=client
        )
        await provider.complete(_request())

    assert seen[0].extensions["timeout"] == {"connect": 1.5, "read": 9.0, "write": 9.0, "pool": 1.5}


def test_timeout_and_timeouts_together_are_a_configuration_error() -> None:
    with pytest.raises(ConfigurationError, match="either"):
        OpenAICompatProvider(base_url="http://local/v1", model="m", timeout=3, timeouts=Timeouts())


async def test_api_key_auth_sends_the_azure_header_and_extra_headers() -> None:
    seen, handler = _recorder()
    async with httpx.AsyncClient(transport=httpx.MockTransport(handler)) as client:
        provider = OpenAICompatProvider(
            base_url="https://res.openai.azure.com/openai/v1",
            model="my-deployment",
            api_key=SECRET,
            auth="api-key",
            name="azure",
            extra_headers={"X-Title": "orchestrion"},
            client=client,
        )
        response = await provider.complete(_request())

    assert seen[0].headers["api-key"] == SECRET
    assert "Authorization" not in seen[0].headers
    assert seen[0].headers["X-Title"] == "orchestrion"
    assert (response.provider, response.deployment) == ("azure", "azure:my-deployment")


async def test_errors_name_the_preset_deployment() -> None:
    async with httpx.AsyncClient(transport=httpx.MockTransport(lambda r: httpx.Response(500))) as client:
        provider = OpenAICompatProvider(base_url="http://x/v1", model="llama", name="groq", client=client)
        with pytest.raises(ProviderError, match=r"^groq:llama: HTTP 500") as caught:
            await provider.complete(_request())

    assert caught.value.provider == "groq"


# --- Tools ----------------------------------------------------------------------------------------

GREP = ToolSpec(
    name="grep",
    description="Search files.",
    parameters={"type": "object", "properties": {"pattern": {"type": "string"}}, "required": ["pattern"]},
)


async def test_tools_tool_choice_and_tool_history_are_sent_in_openai_shape(
    make_provider: MakeProvider,
) -> None:
    seen, handler = _recorder()
    use = ToolUse(id="call_1", name="grep", arguments={"pattern": "TODO"})
    request = ChatRequest(
        messages=(
            Message(role="system", content="be brief"),
            Message(role="user", content="find todos"),
            Message(role="assistant", content="", tool_uses=(use,)),
            Message(role="tool", content='["a.py:3"]', tool_use_id="call_1", name="grep"),
        ),
        tools=(GREP,),
        tool_choice="grep",
    )
    await make_provider(handler).complete(request)

    body = json.loads(seen[0].content)
    assert body["tools"] == [
        {
            "type": "function",
            "function": {"name": "grep", "description": "Search files.", "parameters": GREP.parameters},
        }
    ]
    assert body["tool_choice"] == {"type": "function", "function": {"name": "grep"}}
    assert body["messages"] == [
        {"role": "system", "content": "be brief"},
        {"role": "user", "content": "find todos"},
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [_tool_call("call_1", "grep", '{"pattern": "TODO"}')],
        },
        {"role": "tool", "tool_call_id": "call_1", "content": '["a.py:3"]'},
    ]


@pytest.mark.parametrize("choice", ["auto", "none", "required"])
async def test_builtin_tool_choices_are_sent_as_strings_and_only_with_tools(
    make_provider: MakeProvider, choice: str
) -> None:
    seen, handler = _recorder()
    provider = make_provider(handler)

    await provider.complete(_request(tools=(GREP,), tool_choice=choice))
    await provider.complete(_request(tool_choice=choice))

    assert json.loads(seen[0].content)["tool_choice"] == choice
    assert "tools" not in json.loads(seen[1].content)
    assert "tool_choice" not in json.loads(seen[1].content)


async def test_tool_calls_are_parsed_into_tool_uses(make_provider: MakeProvider) -> None:
    calls = [_tool_call("call_a", "grep", '{"pattern": "x"}'), _tool_call("call_b", "list_files", "")]
    message = {"role": "assistant", "content": None, "tool_calls": calls}
    body = {
        "id": "chatcmpl-9",
        "choices": [{"index": 0, "message": message, "finish_reason": "tool_calls"}],
        "usage": {"prompt_tokens": 40, "completion_tokens": 12, "total_tokens": 52},
    }
    provider = make_provider(lambda request: httpx.Response(200, json=body))

    response = await provider.complete(_request(tools=(GREP,)))

    assert response.content == ""
    assert response.finish_reason == "tool_calls"
    assert response.tool_uses == (
        ToolUse(id="call_a", name="grep", arguments={"pattern": "x"}),
        ToolUse(id="call_b", name="list_files", arguments={}),
    )
    assert response.deployment == "openai_compat:gpt-test"


async def test_unparseable_tool_arguments_are_a_retryable_bad_response(make_provider: MakeProvider) -> None:
    call = _tool_call("call_a", "grep", '{"pattern": ')
    body = {"choices": [{"message": {"role": "assistant", "content": None, "tool_calls": [call]}}]}
    provider = make_provider(lambda request: httpx.Response(200, json=body))

    with pytest.raises(ProviderError, match="'grep' has arguments that are not valid JSON") as caught:
        await provider.complete(_request())

    assert caught.value.retryable is True
    assert caught.value.kind == "bad_response"


# --- Failure classes ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b'{"id": "x", "choices": []}', "no choices"),
        (b'{"object": "chat.completion"}', "missing field 'choices'"),
        (b'{"choices": [{"index": 0}]}', "missing field 'message'"),
        (b"", "body is not JSON"),
        (b'"just a string"', "not a JSON object"),
    ],
)
async def test_malformed_bodies_are_retryable_bad_responses_naming_the_deployment(
    make_provider: MakeProvider, body: bytes, reason: str
) -> None:
    provider = make_provider(lambda request: httpx.Response(200, content=body))

    with pytest.raises(ProviderError) as caught:
        await provider.complete(_request())

    assert caught.value.message.startswith("openai_compat:gpt-test: malformed response (HTTP 200)")
    assert reason in caught.value.message
    assert (caught.value.retryable, caught.value.kind) == (True, "bad_response")


HTML_PAGE = (
    "<!DOCTYPE html><html><head><title>502 Bad Gateway</title><style>body{color:red}</style></head>"
    "<body><h1>Bad   Gateway</h1><p>cloudflare</p></body></html>"
)


async def test_an_html_page_with_status_200_is_a_bad_response_with_its_text(
    make_provider: MakeProvider,
) -> None:
    provider = make_provider(
        lambda request: httpx.Response(200, headers={"content-type": "text/html"}, text=HTML_PAGE)
    )

    with pytest.raises(ProviderError) as caught:
        await provider.complete(_request())

    assert caught.value.kind == "bad_response"
    assert "HTML page '502 Bad Gateway': Bad Gateway cloudflare" in caught.value.message
    assert "<" not in caught.value.message


async def test_an_html_error_page_is_a_status_error_with_a_short_excerpt(make_provider: MakeProvider) -> None:
    page = HTML_PAGE.replace("cloudflare", "x" * 1000 + SECRET)
    provider = make_provider(lambda request: httpx.Response(502, text=page))

    with pytest.raises(ProviderError) as caught:
        await provider.complete(_request())

    error = caught.value
    assert (error.retryable, error.kind, error.status_code) == (True, "server_error", 502)
    assert caught.value.message.startswith("openai_compat:gpt-test: HTTP 502: HTML page '502 Bad Gateway'")
    assert len(caught.value.message) < 300


async def test_vendor_error_bodies_are_quoted_by_their_message(make_provider: MakeProvider) -> None:
    error = {"error": {"message": "Rate limit reached", "type": "requests", "code": "rate_limit_exceeded"}}
    provider = make_provider(lambda request: httpx.Response(429, json=error))

    with pytest.raises(ProviderError) as caught:
        await provider.complete(_request())

    assert caught.value.message == "openai_compat:gpt-test: HTTP 429: requests: Rate limit reached"
    assert caught.value.kind == "rate_limited"


@pytest.mark.parametrize(
    ("error", "kind", "retryable"),
    [
        (httpx.ReadTimeout("read timed out"), "timeout", True),
        (httpx.ConnectTimeout("connect timed out"), "timeout", True),
        (httpx.PoolTimeout("no connection"), "timeout", True),
        (httpx.ConnectError("connection refused"), "transport", True),
        (httpx.ReadError("connection reset by peer"), "transport", True),
        (httpx.RemoteProtocolError("server disconnected"), "transport", True),
        (httpx.ProxyError(f"proxy refused key {SECRET}"), "transport", True),
        (httpx.UnsupportedProtocol("unsupported scheme"), "error", False),
    ],
)
async def test_transport_failures_have_their_kind_and_never_show_the_key(
    make_provider: MakeProvider, error: httpx.HTTPError, kind: str, retryable: bool
) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        raise error

    with pytest.raises(ProviderError) as caught:
        await make_provider(handler).complete(_request())

    assert (caught.value.retryable, caught.value.kind) == (retryable, kind)
    assert caught.value.message.startswith(f"openai_compat:gpt-test: {type(error).__name__}: ")
    assert SECRET not in caught.value.message


# --- Streaming ------------------------------------------------------------------------------------


def _call_delta(
    index: int, arguments: str, call_id: str | None = None, name: str | None = None
) -> dict[str, object]:
    fragment: dict[str, object] = {"index": index, "function": {"arguments": arguments}}
    if call_id and name:
        fragment.update(id=call_id, type="function", function={"name": name, "arguments": arguments})
    return {"tool_calls": [fragment]}


async def test_stream_yields_deltas_then_usage_finish_reason_and_tool_calls(
    make_provider: MakeProvider,
) -> None:
    body = _sse(
        _chunk({"role": "assistant", "content": ""}),
        _chunk({"content": "Let me "}),
        _chunk({"content": "look."}),
        _chunk(_call_delta(0, "", "call_a", "grep")),
        _chunk(_call_delta(0, '{"pat')),
        _chunk(_call_delta(1, "{}", "call_b", "list_files")),
        _chunk(_call_delta(0, 'tern": "x"}')),
        _chunk({}, finish_reason="tool_calls"),
        {"id": "chatcmpl-1", "choices": [], "usage": {"prompt_tokens": 30, "completion_tokens": 9}},
    )
    seen, handler = _recorder(lambda: _sse_response(body))

    events = await _collect(make_provider(handler), _request(tools=(GREP,)))

    sent = json.loads(seen[0].content)
    assert sent["stream"] is True
    assert sent["stream_options"] == {"include_usage": True}
    assert seen[0].headers["Accept"] == "text/event-stream"
    assert [e.delta for e in events[:-1]] == ["Let me ", "look."]
    final = events[-1]
    assert final.done is True
    assert final.usage == Usage(input_tokens=30, output_tokens=9)
    assert final.finish_reason == "tool_calls"
    assert final.tool_uses == (
        ToolUse(id="call_a", name="grep", arguments={"pattern": "x"}),
        ToolUse(id="call_b", name="list_files", arguments={}),
    )


async def test_stream_with_length_finish_is_not_an_error(make_provider: MakeProvider) -> None:
    body = _sse(_chunk({"content": "trunc"}), _chunk({}, finish_reason="length"))
    events = await _collect(make_provider(lambda request: _sse_response(body)), _request())

    assert events[-1].finish_reason == "length"
    assert events[-1].usage is None


async def test_stream_reads_groq_usage_from_x_groq(make_provider: MakeProvider) -> None:
    last = {
        **_chunk({}, finish_reason="stop"),
        "x_groq": {"usage": {"prompt_tokens": 5, "completion_tokens": 2}},
    }
    events = await _collect(make_provider(lambda request: _sse_response(_sse(last))), _request())

    assert events[-1].usage == Usage(input_tokens=5, output_tokens=2)


async def test_stream_without_done_marker_is_a_retryable_cut_off(make_provider: MakeProvider) -> None:
    body = _sse(_chunk({"content": "half"}), _chunk({}, finish_reason="stop"), done=False)
    provider = make_provider(lambda request: _sse_response(body))
    deltas: list[str] = []

    with pytest.raises(ProviderError, match=r"stream cut off.*\[DONE\]") as caught:
        async for event in provider.stream(_request()):
            deltas.append(event.delta)

    assert deltas == ["half"]
    assert (caught.value.retryable, caught.value.kind) == (True, "bad_response")


@pytest.mark.parametrize(
    ("error", "kind"),
    [
        (
            httpx.RemoteProtocolError("peer closed connection without sending complete message body"),
            "transport",
        ),
        (httpx.ReadError("connection reset"), "transport"),
        (httpx.ReadTimeout("timed out"), "timeout"),
    ],
)
async def test_stream_breaking_mid_way_is_retryable(
    make_provider: MakeProvider, error: httpx.HTTPError, kind: str
) -> None:
    stream = _BrokenStream([_sse(_chunk({"content": "par"}), done=False)], error)
    provider = make_provider(
        lambda request: httpx.Response(200, headers={"content-type": "text/event-stream"}, stream=stream)
    )

    with pytest.raises(ProviderError) as caught:
        await _collect(provider, _request())

    assert (caught.value.retryable, caught.value.kind) == (True, kind)
    assert type(error).__name__ in caught.value.message


async def test_stream_status_error_reads_the_body_and_honours_retry_after(
    make_provider: MakeProvider,
) -> None:
    error = {"error": {"message": f"slow down {SECRET}", "type": "rate_limit"}}
    provider = make_provider(lambda request: httpx.Response(429, headers={"Retry-After": "4"}, json=error))

    with pytest.raises(ProviderError) as caught:
        await _collect(provider, _request())

    assert (caught.value.status_code, caught.value.retry_after, caught.value.kind) == (
        429,
        4.0,
        "rate_limited",
    )
    assert "rate_limit: slow down [redacted]" in caught.value.message


async def test_stream_answered_with_json_instead_of_events_is_a_bad_response(
    make_provider: MakeProvider,
) -> None:
    provider = make_provider(lambda request: httpx.Response(200, json=_ok_body()))

    with pytest.raises(ProviderError, match="expected an event stream") as caught:
        await _collect(provider, _request())

    assert caught.value.kind == "bad_response"


@pytest.mark.parametrize(
    ("event", "reason"),
    [
        ("data: {not json\n\n", "not a JSON object"),
        (
            'data: {"choices": [{"index": 0, "delta": {"tool_calls": [{"index": "x"}]}}]}\n\n',
            "malformed stream",
        ),
    ],
)
async def test_malformed_stream_chunks_are_retryable_bad_responses(
    make_provider: MakeProvider, event: str, reason: str
) -> None:
    provider = make_provider(lambda request: _sse_response(event.encode() + b"data: [DONE]\n\n"))

    with pytest.raises(ProviderError, match=reason) as caught:
        await _collect(provider, _request())

    assert (caught.value.retryable, caught.value.kind) == (True, "bad_response")


async def test_streamed_tool_call_with_broken_arguments_is_a_bad_response(
    make_provider: MakeProvider,
) -> None:
    fragment = {"index": 0, "id": "c", "function": {"name": "grep", "arguments": '{"pattern"'}}
    body = _sse(_chunk({"tool_calls": [fragment]}), _chunk({}, finish_reason="tool_calls"))
    provider = make_provider(lambda request: _sse_response(body))

    with pytest.raises(ProviderError, match="not valid JSON") as caught:
        await _collect(provider, _request())

    assert caught.value.kind == "bad_response"


async def test_an_error_chunk_mid_stream_is_retryable_and_redacted(make_provider: MakeProvider) -> None:
    body = _sse(
        _chunk({"content": "a"}),
        {"error": {"message": f"server overloaded {SECRET}", "type": "server_error"}},
    )
    provider = make_provider(lambda request: _sse_response(body))

    with pytest.raises(ProviderError, match="error event mid-stream") as caught:
        await _collect(provider, _request())

    assert caught.value.retryable is True
    assert SECRET not in caught.value.message


async def test_stream_mode_serves_complete_by_streaming() -> None:
    events = _sse(
        _chunk({"content": '{"summary": '}),
        _chunk({"content": '"ok"}'}, finish_reason="stop"),
        {"choices": [], "usage": {"prompt_tokens": 7, "completion_tokens": 4}},
    )
    seen, handler = _recorder(lambda: _sse_response(events))

    async with httpx.AsyncClient(transport=httpx.MockTransport(handler)) as client:
        provider = OpenAICompatProvider(
            base_url="http://x/v1", model="m", name="groq", stream=True, client=client
        )
        response = await provider.complete(_request(json_schema=SCHEMA))

    assert provider.streams is True
    assert json.loads(seen[0].content)["stream"] is True
    assert response.json() == {"summary": "ok"}
    assert (response.usage.input_tokens, response.usage.output_tokens) == (7, 4)
    assert (response.finish_reason, response.deployment) == ("stop", "groq:m")


async def test_stream_mode_complete_raises_the_cut_off_error() -> None:
    body = _sse(_chunk({"content": "half"}), done=False)
    async with httpx.AsyncClient(transport=httpx.MockTransport(lambda r: _sse_response(body))) as client:
        provider = OpenAICompatProvider(base_url="http://x/v1", model="m", stream=True, client=client)
        with pytest.raises(ProviderError, match="cut off") as caught:
            await provider.complete(_request())

    assert caught.value.kind == "bad_response"


async def test_a_stream_that_never_carries_a_choice_is_a_bad_response(make_provider: MakeProvider) -> None:
    body = _sse({"id": "chatcmpl-1", "object": "chat.completion.chunk", "choices": []})
    provider = make_provider(lambda request: _sse_response(body))

    with pytest.raises(ProviderError, match="no chunk carried a choice") as caught:
        await _collect(provider, _request())

    assert (caught.value.retryable, caught.value.kind) == (True, "bad_response")


async def test_content_given_as_typed_parts_keeps_the_text_parts(make_provider: MakeProvider) -> None:
    parts = [
        {"type": "thinking", "thinking": [{"type": "text", "text": "hmm"}]},
        {"type": "text", "text": "4"},
    ]
    body = {"choices": [{"message": {"role": "assistant", "content": parts}, "finish_reason": "stop"}]}

    response = await make_provider(lambda request: httpx.Response(200, json=body)).complete(_request())

    assert response.content == "4"


def test_json_mode_asks_for_a_json_object_and_gives_the_schema_in_a_system_message() -> None:
    request = ChatRequest(messages=(Message(role="user", content="hi"),), json_schema=SCHEMA)
    body = chat_completion_body(request, model="m", structured="json_object")
    assert body["response_format"] == {"type": "json_object"}
    first = body["messages"][0]
    assert first["role"] == "system" and json.loads(first["content"].split(": ", 1)[1]) == SCHEMA
    assert body["messages"][1] == {"role": "user", "content": "hi"}


def test_stream_usage_can_be_left_out_for_servers_that_reject_it() -> None:
    request = ChatRequest(messages=(Message(role="user", content="hi"),))
    assert "stream_options" not in chat_completion_body(request, model="m", stream=True, stream_usage=False)
    assert chat_completion_body(request, model="m", stream=True)["stream_options"] == {"include_usage": True}


async def test_json_mode_round_trip_against_the_vendor_server() -> None:
    async with VendorTestServer() as server:
        provider = OpenAICompatProvider(base_url=server.base_url, model="m", structured="json_object")
        try:
            response = await provider.complete(
                ChatRequest(messages=(Message(role="user", content="hi"),), json_schema=SCHEMA)
            )
        finally:
            await provider.aclose()
        assert response.json() == {}
        assert server.requests[-1]["response_format"] == {"type": "json_object"}
