from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest

from orchestrion.exceptions import ProviderError
from orchestrion.providers.base import ChatRequest, Message, StreamEvent, ToolSpec, ToolUse, Usage
from orchestrion.providers.gemini import GeminiProvider

SECRET = "AIzaSyD-secret-0123456789abcdef"
SCHEMA = {"type": "object", "properties": {"summary": {"type": "string"}}, "required": ["summary"]}
WEATHER = ToolSpec(
    name="get_weather",
    description="Get the weather.",
    parameters={"type": "object", "properties": {"location": {"type": "string"}}, "required": ["location"]},
)
BASE = "https://generativelanguage.googleapis.com/v1beta/models/gemini-2.5-flash"

Handler = Callable[[httpx.Request], httpx.Response]
MakeProvider = Callable[..., GeminiProvider]


def _request(**kwargs: Any) -> ChatRequest:
    return ChatRequest(messages=(Message(role="user", content="Hi Gemini"),), **kwargs)


def _reply(parts: list[dict[str, Any]], finish: str | None = "STOP", **usage: int) -> dict[str, Any]:
    candidate: dict[str, Any] = {"content": {"parts": parts, "role": "model"}, "index": 0}
    if finish is not None:
        candidate["finishReason"] = finish
    return {
        "candidates": [candidate],
        "usageMetadata": {"promptTokenCount": 8, "candidatesTokenCount": 2, "totalTokenCount": 10, **usage},
        "modelVersion": "gemini-2.5-flash",
        "responseId": "mB1saLa7J4ie1PIPtqzHsAo",
    }


def _sse(*chunks: dict[str, Any]) -> bytes:
    # Gemini ends its lines with CRLF.
    return "".join(f"data: {json.dumps(chunk)}\r\n\r\n" for chunk in chunks).encode()


def _sse_response(body: bytes) -> httpx.Response:
    return httpx.Response(200, headers={"content-type": "text/event-stream"}, content=body)


def _google_error(code: int, status: str, message: str, *details: dict[str, Any]) -> dict[str, Any]:
    return {"error": {"code": code, "message": message, "status": status, "details": list(details)}}


@pytest.fixture
async def make_provider() -> AsyncIterator[MakeProvider]:
    clients: list[httpx.AsyncClient] = []

    def make(handler: Handler, **kwargs: Any) -> GeminiProvider:
        client = httpx.AsyncClient(transport=httpx.MockTransport(handler))
        clients.append(client)
        return GeminiProvider(model="gemini-2.5-flash", api_key=SECRET, client=client, **kwargs)

    yield make
    for client in clients:
        await client.aclose()


def _capture(reply: dict[str, Any]) -> tuple[list[httpx.Request], Handler]:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json=reply)

    return seen, handler


async def _collect(provider: GeminiProvider, request: ChatRequest) -> list[StreamEvent]:
    return [event async for event in provider.stream(request)]


# --- Requests -------------------------------------------------------------------------------------


async def test_request_goes_to_generate_content_with_the_key_header_and_generation_config(
    make_provider: MakeProvider,
) -> None:
    seen, handler = _capture(_reply([{"text": "hi"}]))

    await make_provider(handler).complete(_request(max_tokens=64, temperature=0.5, seed=11))

    sent = seen[0]
    assert str(sent.url) == f"{BASE}:generateContent"
    assert sent.headers["x-goog-api-key"] == SECRET
    assert SECRET not in str(sent.url)
    assert json.loads(sent.content) == {
        "contents": [{"role": "user", "parts": [{"text": "Hi Gemini"}]}],
        "generationConfig": {"maxOutputTokens": 64, "temperature": 0.5, "seed": 11},
    }


async def test_system_tools_and_tool_history_are_sent_in_gemini_shape(make_provider: MakeProvider) -> None:
    seen, handler = _capture(_reply([{"text": "ok"}]))
    uses = (
        ToolUse(id="call_0", name="get_weather", arguments={"location": "Paris"}),
        ToolUse(id="call_1", name="read_file", arguments={"path": "a.txt"}),
    )
    request = ChatRequest(
        messages=(
            Message(role="system", content="Be terse."),
            Message(role="user", content="Weather and file?"),
            Message(role="assistant", content="", tool_uses=uses),
            Message(role="tool", content='{"temp": 18}', tool_use_id="call_0", name="get_weather"),
            # No name: it is found from the call this result answers.
            Message(role="tool", content="plain text", tool_use_id="call_1"),
        ),
        tools=(WEATHER,),
    )

    await make_provider(handler).complete(request)

    body = json.loads(seen[0].content)
    assert body["systemInstruction"] == {"parts": [{"text": "Be terse."}]}
    assert body["contents"] == [
        {"role": "user", "parts": [{"text": "Weather and file?"}]},
        {
            "role": "model",
            "parts": [
                {"functionCall": {"name": "get_weather", "args": {"location": "Paris"}}},
                {"functionCall": {"name": "read_file", "args": {"path": "a.txt"}}},
            ],
        },
        {
            "role": "user",
            "parts": [
                {"functionResponse": {"name": "get_weather", "response": {"result": {"temp": 18}}}},
                {"functionResponse": {"name": "read_file", "response": {"result": "plain text"}}},
            ],
        },
    ]
    assert body["tools"] == [
        {
            "functionDeclarations": [
                {"name": "get_weather", "description": "Get the weather.", "parameters": WEATHER.parameters}
            ]
        }
    ]
    assert body["toolConfig"] == {"functionCallingConfig": {"mode": "AUTO"}}


@pytest.mark.parametrize(
    ("choice", "expected"),
    [
        ("auto", {"mode": "AUTO"}),
        ("none", {"mode": "NONE"}),
        ("required", {"mode": "ANY"}),
        ("get_weather", {"mode": "ANY", "allowedFunctionNames": ["get_weather"]}),
    ],
)
async def test_tool_choice_maps_to_function_calling_config(
    make_provider: MakeProvider, choice: str, expected: dict[str, Any]
) -> None:
    seen, handler = _capture(_reply([{"text": "ok"}]))

    await make_provider(handler).complete(_request(tools=(WEATHER,), tool_choice=choice))

    assert json.loads(seen[0].content)["toolConfig"] == {"functionCallingConfig": expected}


async def test_structured_output_sets_the_json_mime_type_and_schema(make_provider: MakeProvider) -> None:
    seen, handler = _capture(_reply([{"text": '{"summary": "ok"}'}]))

    response = await make_provider(handler).complete(_request(json_schema=SCHEMA))

    config = json.loads(seen[0].content)["generationConfig"]
    assert config["responseMimeType"] == "application/json"
    assert config["responseJsonSchema"] == SCHEMA
    assert "tools" not in json.loads(seen[0].content)
    assert response.json() == {"summary": "ok"}


async def test_a_models_prefix_and_a_custom_base_url_are_accepted() -> None:
    seen, handler = _capture(_reply([{"text": "ok"}]))
    async with httpx.AsyncClient(transport=httpx.MockTransport(handler)) as client:
        provider = GeminiProvider(
            base_url="http://127.0.0.1:5/gemini/", model="models/gemini-2.5-pro", api_key=None, client=client
        )
        await provider.complete(_request())

    assert str(seen[0].url) == "http://127.0.0.1:5/gemini/v1beta/models/gemini-2.5-pro:generateContent"
    assert "x-goog-api-key" not in seen[0].headers
    assert provider.deployment == "gemini:gemini-2.5-pro"


# --- Responses ------------------------------------------------------------------------------------


async def test_text_skips_thoughts_and_usage_counts_thinking_as_output(make_provider: MakeProvider) -> None:
    reply = _reply(
        [{"text": "Let me think", "thought": True}, {"text": "Hello"}, {"text": " world"}],
        thoughtsTokenCount=20,
    )

    response = await make_provider(lambda request: httpx.Response(200, json=reply)).complete(_request())

    assert response.content == "Hello world"
    assert response.usage == Usage(input_tokens=8, output_tokens=22)
    assert response.finish_reason == "STOP"
    assert response.deployment == "gemini:gemini-2.5-flash"


async def test_function_calls_become_tool_uses_with_generated_ids(make_provider: MakeProvider) -> None:
    reply = _reply(
        [
            {"functionCall": {"name": "get_weather", "args": {"location": "Paris"}}},
            {"functionCall": {"name": "list_files"}},
        ]
    )
    provider = make_provider(lambda request: httpx.Response(200, json=reply))

    first = await provider.complete(_request(tools=(WEATHER,)))
    second = await provider.complete(_request(tools=(WEATHER,)))

    assert first.tool_uses == (
        ToolUse(id="call_0", name="get_weather", arguments={"location": "Paris"}),
        ToolUse(id="call_1", name="list_files", arguments={}),
    )
    # Ids stay unique across calls, since a conversation may carry several rounds of them.
    assert [use.id for use in second.tool_uses] == ["call_2", "call_3"]


async def test_a_candidate_without_content_is_an_empty_answer(make_provider: MakeProvider) -> None:
    reply = {
        "candidates": [{"finishReason": "MAX_TOKENS", "index": 0}],
        "usageMetadata": {"promptTokenCount": 3},
    }

    response = await make_provider(lambda request: httpx.Response(200, json=reply)).complete(_request())

    assert (response.content, response.finish_reason) == ("", "MAX_TOKENS")


async def test_a_blocked_prompt_is_a_non_retryable_bad_request(make_provider: MakeProvider) -> None:
    reply = {
        "promptFeedback": {
            "blockReason": "SAFETY",
            "safetyRatings": [{"category": "HARM_CATEGORY_DANGEROUS_CONTENT", "probability": "HIGH"}],
        },
        "usageMetadata": {"promptTokenCount": 9, "totalTokenCount": 9},
    }
    provider = make_provider(lambda request: httpx.Response(200, json=reply))

    with pytest.raises(ProviderError, match=r"prompt blocked \(SAFETY\)") as caught:
        await provider.complete(_request())

    assert (caught.value.retryable, caught.value.kind) == (False, "bad_request")


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b'{"candidates": [], "usageMetadata": {"promptTokenCount": 4}}', "no candidates"),
        (b'{"usageMetadata": {"promptTokenCount": 4}}', "no candidates"),
        (
            b'{"candidates": [{"content": {"parts": [{"functionCall": {"args": {}}}]}}]}',
            "missing field 'name'",
        ),
        (
            b"<!DOCTYPE html><html><title>Error 404 (Not Found)</title></html>",
            "HTML page 'Error 404 (Not Found)'",
        ),
        (b"[]", "not a JSON object"),
    ],
)
async def test_malformed_or_empty_bodies_are_retryable_bad_responses(
    make_provider: MakeProvider, body: bytes, reason: str
) -> None:
    provider = make_provider(lambda request: httpx.Response(200, content=body))

    with pytest.raises(ProviderError) as caught:
        await provider.complete(_request())

    assert (caught.value.retryable, caught.value.kind) == (True, "bad_response")
    assert reason in caught.value.message


# --- Errors ---------------------------------------------------------------------------------------

RETRY_INFO = {"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "17s"}
QUOTA = {
    "@type": "type.googleapis.com/google.rpc.QuotaFailure",
    "violations": [{"quotaMetric": "generativelanguage.googleapis.com/generate_content_free_tier_requests"}],
}


async def test_resource_exhausted_is_retryable_with_the_retry_info_delay(make_provider: MakeProvider) -> None:
    body = _google_error(429, "RESOURCE_EXHAUSTED", "You exceeded your current quota.", QUOTA, RETRY_INFO)
    provider = make_provider(lambda request: httpx.Response(429, json=body))

    with pytest.raises(ProviderError) as caught:
        await provider.complete(_request())

    error = caught.value
    assert (error.retryable, error.kind, error.retry_after, error.status_code) == (
        True,
        "rate_limited",
        17.0,
        429,
    )
    assert (
        error.message
        == "gemini:gemini-2.5-flash: HTTP 429: RESOURCE_EXHAUSTED: You exceeded your current quota."
    )


async def test_a_retry_after_header_wins_over_retry_info(make_provider: MakeProvider) -> None:
    body = _google_error(429, "RESOURCE_EXHAUSTED", "quota", RETRY_INFO)
    provider = make_provider(lambda request: httpx.Response(429, headers={"Retry-After": "2"}, json=body))

    with pytest.raises(ProviderError) as caught:
        await provider.complete(_request())

    assert caught.value.retry_after == 2.0


@pytest.mark.parametrize(
    ("status", "google_status", "kind"),
    [
        (500, "INTERNAL", "server_error"),
        (503, "UNAVAILABLE", "server_error"),
        (504, "DEADLINE_EXCEEDED", "timeout"),
    ],
)
async def test_server_errors_are_retryable(
    make_provider: MakeProvider, status: int, google_status: str, kind: str
) -> None:
    body = _google_error(status, google_status, "The model is overloaded. Please try again later.")
    provider = make_provider(lambda request: httpx.Response(status, json=body))

    with pytest.raises(ProviderError) as caught:
        await provider.complete(_request())

    assert (caught.value.retryable, caught.value.kind) == (True, kind)


@pytest.mark.parametrize(
    ("status", "google_status", "details", "kind"),
    [
        (400, "INVALID_ARGUMENT", [], "bad_request"),
        (
            400,
            "INVALID_ARGUMENT",
            [{"@type": "type.googleapis.com/google.rpc.ErrorInfo", "reason": "API_KEY_INVALID"}],
            "auth",
        ),
        (403, "PERMISSION_DENIED", [], "auth"),
        (404, "NOT_FOUND", [], "not_found"),
    ],
)
async def test_client_errors_are_not_retryable(
    make_provider: MakeProvider, status: int, google_status: str, details: list[dict[str, Any]], kind: str
) -> None:
    body = _google_error(status, google_status, f"API key not valid: {SECRET}", *details)
    provider = make_provider(lambda request: httpx.Response(status, json=body))

    with pytest.raises(ProviderError) as caught:
        await provider.complete(_request())

    assert (caught.value.retryable, caught.value.kind, caught.value.status_code) == (False, kind, status)
    assert SECRET not in caught.value.message


async def test_connection_refused_is_a_retryable_transport_error(make_provider: MakeProvider) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("[Errno 111] Connection refused")

    with pytest.raises(ProviderError, match="ConnectError") as caught:
        await make_provider(handler).complete(_request())

    assert (caught.value.retryable, caught.value.kind) == (True, "transport")


# --- Streaming ------------------------------------------------------------------------------------


def _chunk(
    parts: list[dict[str, Any]], finish: str | None = None, usage: dict[str, int] | None = None
) -> dict[str, Any]:
    candidate: dict[str, Any] = {"content": {"parts": parts, "role": "model"}, "index": 0}
    if finish:
        candidate["finishReason"] = finish
    chunk: dict[str, Any] = {"candidates": [candidate], "modelVersion": "gemini-2.5-flash"}
    if usage:
        chunk["usageMetadata"] = usage
    return chunk


async def test_stream_uses_sse_and_yields_text_then_usage_and_function_calls(
    make_provider: MakeProvider,
) -> None:
    seen: list[httpx.Request] = []
    body = _sse(
        _chunk([{"text": "pondering", "thought": True}], usage={"promptTokenCount": 8}),
        _chunk([{"text": "The weather"}], usage={"promptTokenCount": 8, "candidatesTokenCount": 2}),
        _chunk([{"text": " is:"}, {"functionCall": {"name": "get_weather", "args": {"location": "Paris"}}}]),
        _chunk(
            [],
            finish="STOP",
            usage={"promptTokenCount": 8, "candidatesTokenCount": 6, "thoughtsTokenCount": 4},
        ),
    )

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return _sse_response(body)

    events = await _collect(make_provider(handler), _request(tools=(WEATHER,)))

    assert str(seen[0].url) == f"{BASE}:streamGenerateContent?alt=sse"
    assert "stream" not in json.loads(seen[0].content)
    assert [e.delta for e in events[:-1]] == ["The weather", " is:"]
    assert events[-1] == StreamEvent(
        done=True,
        usage=Usage(input_tokens=8, output_tokens=10),
        finish_reason="STOP",
        tool_uses=(ToolUse(id="call_0", name="get_weather", arguments={"location": "Paris"}),),
    )


async def test_a_stream_without_finish_reason_is_a_retryable_cut_off(make_provider: MakeProvider) -> None:
    provider = make_provider(lambda request: _sse_response(_sse(_chunk([{"text": "half"}]))))

    with pytest.raises(ProviderError, match=r"cut off.*finishReason") as caught:
        await _collect(provider, _request())

    assert (caught.value.retryable, caught.value.kind) == (True, "bad_response")


async def test_a_blocked_prompt_in_a_stream_is_a_bad_request(make_provider: MakeProvider) -> None:
    body = _sse(
        {"promptFeedback": {"blockReason": "PROHIBITED_CONTENT"}, "usageMetadata": {"promptTokenCount": 4}}
    )
    provider = make_provider(lambda request: _sse_response(body))

    with pytest.raises(ProviderError, match="PROHIBITED_CONTENT") as caught:
        await _collect(provider, _request())

    assert (caught.value.retryable, caught.value.kind) == (False, "bad_request")


async def test_an_error_chunk_mid_stream_is_classified_by_its_status(make_provider: MakeProvider) -> None:
    body = _sse(_chunk([{"text": "a"}]), _google_error(503, "UNAVAILABLE", "The model is overloaded."))
    provider = make_provider(lambda request: _sse_response(body))

    with pytest.raises(ProviderError, match="UNAVAILABLE: The model is overloaded") as caught:
        await _collect(provider, _request())

    assert (caught.value.retryable, caught.value.kind) == (True, "server_error")


async def test_a_stream_refused_at_start_raises_the_status_error(make_provider: MakeProvider) -> None:
    body = [_google_error(429, "RESOURCE_EXHAUSTED", "quota", RETRY_INFO)]
    provider = make_provider(lambda request: httpx.Response(429, json=body))

    with pytest.raises(ProviderError) as caught:
        await _collect(provider, _request())

    assert (caught.value.kind, caught.value.retry_after) == ("rate_limited", 17.0)
    assert "RESOURCE_EXHAUSTED: quota" in caught.value.message


async def test_stream_mode_serves_complete_with_structured_output() -> None:
    body = _sse(
        _chunk([{"text": '{"summary": '}]),
        _chunk([{"text": '"ok"}'}], finish="STOP", usage={"promptTokenCount": 5, "candidatesTokenCount": 4}),
    )
    async with httpx.AsyncClient(transport=httpx.MockTransport(lambda r: _sse_response(body))) as client:
        provider = GeminiProvider(model="gemini-2.5-flash", api_key=SECRET, client=client, stream=True)
        response = await provider.complete(_request(json_schema=SCHEMA))

    assert response.json() == {"summary": "ok"}
    assert response.usage == Usage(input_tokens=5, output_tokens=4)
    assert response.finish_reason == "STOP"


async def test_aclose_closes_the_client_it_created() -> None:
    provider = GeminiProvider(model="gemini-2.5-flash", api_key=SECRET)

    await provider.aclose()

    assert provider._client.is_closed


async def test_an_error_chunk_with_a_client_error_code_is_not_retryable(make_provider: MakeProvider) -> None:
    body = _sse(_google_error(400, "FAILED_PRECONDITION", "User location is not supported."))
    provider = make_provider(lambda request: _sse_response(body))

    with pytest.raises(ProviderError) as caught:
        await _collect(provider, _request())

    assert (caught.value.retryable, caught.value.kind, caught.value.status_code) == (
        False,
        "bad_request",
        400,
    )
