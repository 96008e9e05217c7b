"""The vendor test server's three wire formats, seen by a plain httpx client on 127.0.0.1."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

from orchestrion.testing import OpenAITestServer, VendorTestServer, example_for_schema
from tests.testing.helpers import ANTHROPIC_HEADERS, GEMINI_HEADERS, parse_sse, sse_json

WEATHER = {
    "type": "object",
    "properties": {"city": {"type": "string"}, "days": {"type": "integer"}},
    "required": ["city", "days"],
}
TIME = {"type": "object", "properties": {"zone": {"type": "string"}}, "required": ["zone"]}
REPORT = {
    "type": "object",
    "properties": {"summary": {"type": "string"}, "severity": {"enum": ["low", "high"]}},
    "required": ["summary", "severity"],
}
OPENAI_TOOLS = [
    {"type": "function", "function": {"name": "weather", "description": "Forecast", "parameters": WEATHER}},
    {"type": "function", "function": {"name": "clock", "description": "Time", "parameters": TIME}},
]
ANTHROPIC_TOOLS = [
    {"name": "weather", "description": "Forecast", "input_schema": WEATHER},
    {"name": "clock", "description": "Time", "input_schema": TIME},
]
GEMINI_TOOLS = [
    {
        "functionDeclarations": [
            {"name": "weather", "description": "Forecast", "parameters": WEATHER},
            {"name": "clock", "description": "Time", "parameters": TIME},
        ]
    }
]
USER = [{"role": "user", "content": "hello there"}]


def _openai(client: httpx.Client, **body: Any) -> httpx.Response:
    return client.post("/v1/chat/completions", json={"model": "gpt-x", "messages": USER, **body})


def _anthropic(client: httpx.Client, **body: Any) -> httpx.Response:
    payload = {"model": "claude-x", "max_tokens": 100, "messages": USER, **body}
    return client.post("/anthropic/v1/messages", json=payload, headers=ANTHROPIC_HEADERS)


def _gemini(client: httpx.Client, method: str = "generateContent", **body: Any) -> httpx.Response:
    payload = {"contents": [{"role": "user", "parts": [{"text": "hello there"}]}], **body}
    params = {"alt": "sse"} if method == "streamGenerateContent" else {}
    return client.post(
        f"/gemini/v1beta/models/gemini-x:{method}", json=payload, params=params, headers=GEMINI_HEADERS
    )


# -- OpenAI -----------------------------------------------------------------------------------


def test_openai_answers_text_with_usage(client: httpx.Client, server: VendorTestServer) -> None:
    response = _openai(client)

    body = response.json()
    assert response.status_code == 200
    assert body["object"] == "chat.completion"
    assert body["model"] == "gpt-x"
    assert body["choices"][0]["message"] == {"role": "assistant", "content": "ok: hello there"}
    assert body["choices"][0]["finish_reason"] == "stop"
    assert body["usage"] == {"prompt_tokens": 2, "completion_tokens": 3, "total_tokens": 5}
    assert server.base_url == f"{server.url}/v1"


def test_openai_stream_sends_chunks_usage_and_done(client: httpx.Client) -> None:
    response = _openai(client, stream=True, stream_options={"include_usage": True})

    events = parse_sse(response.text)
    chunks = sse_json(response.text)
    assert response.headers["content-type"].startswith("text/event-stream")
    assert events[-1] == (None, "[DONE]")
    assert chunks[0]["choices"][0]["delta"]["role"] == "assistant"
    text = "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks if c["choices"])
    assert text == "ok: hello there"
    assert sum(1 for c in chunks if c["choices"] and c["choices"][0]["delta"].get("content")) > 1
    assert [c["choices"][0]["finish_reason"] for c in chunks if c["choices"]][-1] == "stop"
    assert chunks[-1]["choices"] == []
    assert chunks[-1]["usage"] == {"prompt_tokens": 2, "completion_tokens": 3, "total_tokens": 5}


def test_openai_stream_without_include_usage_has_no_usage_chunk(client: httpx.Client) -> None:
    chunks = sse_json(_openai(client, stream=True).text)

    assert all(chunk["choices"] for chunk in chunks)
    assert all("usage" not in chunk for chunk in chunks)


def test_openai_calls_the_first_tool_with_example_arguments(client: httpx.Client) -> None:
    message = _openai(client, tools=OPENAI_TOOLS).json()["choices"][0]

    call = message["message"]["tool_calls"][0]
    assert message["finish_reason"] == "tool_calls"
    assert message["message"]["content"] is None
    assert call["id"].startswith("call_")
    assert call["type"] == "function"
    assert call["function"]["name"] == "weather"
    assert json.loads(call["function"]["arguments"]) == {"city": "ok", "days": 0}


def test_openai_forced_tool_wins_and_streams_arguments_in_fragments(client: httpx.Client) -> None:
    choice = {"type": "function", "function": {"name": "clock"}}
    chunks = sse_json(_openai(client, tools=OPENAI_TOOLS, tool_choice=choice, stream=True).text)

    calls = [
        c["choices"][0]["delta"]["tool_calls"][0] for c in chunks if "tool_calls" in c["choices"][0]["delta"]
    ]
    assert calls[0]["id"].startswith("call_")
    assert calls[0]["function"]["name"] == "clock"
    assert len(calls) > 2
    assert all(call["index"] == 0 for call in calls)
    assert json.loads("".join(call["function"]["arguments"] for call in calls)) == {"zone": "ok"}
    assert chunks[-1]["choices"][0]["finish_reason"] == "tool_calls"


@pytest.mark.parametrize(
    "extra",
    [
        {"tool_choice": "none"},
        {
            "messages": [
                *USER,
                {"role": "assistant", "content": None, "tool_calls": []},
                {"role": "tool", "tool_call_id": "call_1", "content": "sunny"},
            ]
        },
    ],
    ids=["tool-choice-none", "after-tool-result"],
)
def test_openai_answers_text_when_tools_are_forbidden_or_done(
    client: httpx.Client, extra: dict[str, Any]
) -> None:
    message = _openai(client, tools=OPENAI_TOOLS, **extra).json()["choices"][0]["message"]

    assert message["content"] == "ok: hello there"
    assert "tool_calls" not in message


def test_openai_structured_output_follows_the_schema(client: httpx.Client) -> None:
    schema_format = {"type": "json_schema", "json_schema": {"name": "report", "schema": REPORT}}
    structured = _openai(client, response_format=schema_format).json()
    any_object = _openai(client, response_format={"type": "json_object"}).json()

    assert json.loads(structured["choices"][0]["message"]["content"]) == {"summary": "ok", "severity": "low"}
    assert any_object["choices"][0]["message"]["content"] == "{}"


def test_openai_lists_models_and_serves_azure_v1_path(client: httpx.Client, server: VendorTestServer) -> None:
    models = client.get("/v1/models").json()
    azure = client.post("/openai/v1/chat/completions", json={"messages": USER}).json()

    assert models["data"][0]["id"] == "test-model"
    assert azure["choices"][0]["message"]["content"] == "ok: hello there"
    assert azure["model"] == "test-model"
    assert server.azure_base_url == f"{server.url}/openai/v1"


def test_invalid_openai_body_is_a_400_in_openai_shape(client: httpx.Client) -> None:
    response = client.post("/v1/chat/completions", content=b"not json")

    assert response.status_code == 400
    assert response.json()["error"]["type"] == "invalid_request_error"


def test_unknown_path_is_a_404(client: httpx.Client) -> None:
    assert client.post("/v2/anything", json={}).status_code == 404


# -- Anthropic --------------------------------------------------------------------------------


@pytest.mark.parametrize("missing", ["x-api-key", "anthropic-version"])
def test_anthropic_requires_key_and_version_headers(client: httpx.Client, missing: str) -> None:
    headers = {name: value for name, value in ANTHROPIC_HEADERS.items() if name != missing}
    response = client.post("/anthropic/v1/messages", json={"messages": USER}, headers=headers)

    assert response.status_code == 401
    body = response.json()
    assert body["type"] == "error"
    assert body["error"]["type"] == "authentication_error"
    assert missing in body["error"]["message"]


def test_anthropic_answers_a_text_message(client: httpx.Client, server: VendorTestServer) -> None:
    body = _anthropic(client, system="be brief please").json()

    assert body["id"].startswith("msg_")
    assert (body["type"], body["role"], body["model"]) == ("message", "assistant", "claude-x")
    assert body["content"] == [{"type": "text", "text": "ok: hello there"}]
    assert (body["stop_reason"], body["stop_sequence"]) == ("end_turn", None)
    assert body["usage"] == {"input_tokens": 5, "output_tokens": 3}
    assert server.anthropic_base_url == f"{server.url}/anthropic"


def test_anthropic_stream_follows_the_messages_event_sequence(client: httpx.Client) -> None:
    events = parse_sse(_anthropic(client, stream=True).text)

    names = [name for name, _ in events]
    data = [json.loads(payload) for _, payload in events]
    assert names[:3] == ["message_start", "content_block_start", "ping"]
    assert names[-3:] == ["content_block_stop", "message_delta", "message_stop"]
    assert set(names[3:-3]) == {"content_block_delta"}
    assert [d["type"] for d in data] == names
    assert data[0]["message"]["usage"]["input_tokens"] == 2
    assert data[1]["content_block"] == {"type": "text", "text": ""}
    assert "".join(d["delta"]["text"] for d in data[3:-3]) == "ok: hello there"
    assert data[-2]["delta"]["stop_reason"] == "end_turn"
    assert data[-2]["usage"]["output_tokens"] == 3


def test_anthropic_forced_tool_is_a_tool_use_block(client: httpx.Client) -> None:
    body = _anthropic(client, tools=ANTHROPIC_TOOLS, tool_choice={"type": "tool", "name": "clock"}).json()

    block = body["content"][0]
    assert body["stop_reason"] == "tool_use"
    assert block["type"] == "tool_use"
    assert block["id"].startswith("toolu_")
    assert (block["name"], block["input"]) == ("clock", {"zone": "ok"})


def test_anthropic_streams_tool_input_as_json_fragments(client: httpx.Client) -> None:
    events = parse_sse(_anthropic(client, tools=ANTHROPIC_TOOLS, stream=True).text)

    data = [json.loads(payload) for _, payload in events]
    start = data[1]["content_block"]
    fragments = [d["delta"]["partial_json"] for d in data if d["type"] == "content_block_delta"]
    assert (start["type"], start["name"], start["input"]) == ("tool_use", "weather", {})
    assert all(d["delta"]["type"] == "input_json_delta" for d in data if d["type"] == "content_block_delta")
    assert len(fragments) > 1
    assert json.loads("".join(fragments)) == {"city": "ok", "days": 0}
    assert data[-2]["delta"]["stop_reason"] == "tool_use"


def test_anthropic_answers_text_after_a_tool_result(client: httpx.Client) -> None:
    messages = [
        *USER,
        {
            "role": "assistant",
            "content": [{"type": "tool_use", "id": "toolu_1", "name": "weather", "input": {}}],
        },
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "toolu_1", "content": "sunny"}]},
    ]
    body = _anthropic(client, tools=ANTHROPIC_TOOLS, messages=messages).json()

    assert body["content"] == [{"type": "text", "text": "ok: sunny"}]
    assert body["stop_reason"] == "end_turn"


def test_anthropic_tool_choice_none_answers_text(client: httpx.Client) -> None:
    body = _anthropic(client, tools=ANTHROPIC_TOOLS, tool_choice={"type": "none"}).json()

    assert body["content"][0]["type"] == "text"


# -- Gemini -----------------------------------------------------------------------------------


def test_gemini_requires_an_api_key(client: httpx.Client) -> None:
    response = client.post("/gemini/v1beta/models/gemini-x:generateContent", json={"contents": []})

    assert response.status_code == 403
    assert response.json()["error"]["code"] == 403
    assert response.json()["error"]["status"] == "PERMISSION_DENIED"


def test_gemini_answers_text_with_usage_metadata(client: httpx.Client, server: VendorTestServer) -> None:
    body = _gemini(client, systemInstruction={"parts": [{"text": "be brief"}]}).json()

    candidate = body["candidates"][0]
    assert candidate["content"] == {"role": "model", "parts": [{"text": "ok: hello there"}]}
    assert (candidate["finishReason"], candidate["index"]) == ("STOP", 0)
    assert body["usageMetadata"] == {"promptTokenCount": 4, "candidatesTokenCount": 3, "totalTokenCount": 7}
    assert body["modelVersion"] == "gemini-x"
    assert server.gemini_base_url == f"{server.url}/gemini"


def test_gemini_stream_splits_text_and_finishes_only_at_the_end(client: httpx.Client) -> None:
    response = _gemini(client, "streamGenerateContent")

    events = sse_json(response.text)
    assert response.headers["content-type"].startswith("text/event-stream")
    assert len(events) > 1
    assert "".join(e["candidates"][0]["content"]["parts"][0]["text"] for e in events) == "ok: hello there"
    assert ["finishReason" in e["candidates"][0] for e in events] == [False] * (len(events) - 1) + [True]
    assert events[-1]["usageMetadata"]["candidatesTokenCount"] == 3
    assert "candidatesTokenCount" not in events[0]["usageMetadata"]


def test_gemini_stream_needs_alt_sse(client: httpx.Client) -> None:
    response = client.post(
        "/gemini/v1beta/models/gemini-x:streamGenerateContent",
        json={"contents": [{"parts": [{"text": "hi"}]}]},
        headers=GEMINI_HEADERS,
    )

    assert response.status_code == 400
    assert response.json()["error"]["status"] == "INVALID_ARGUMENT"


def test_gemini_calls_the_allowed_function(client: httpx.Client) -> None:
    config = {"functionCallingConfig": {"mode": "ANY", "allowedFunctionNames": ["clock"]}}
    body = _gemini(client, tools=GEMINI_TOOLS, toolConfig=config).json()

    candidate = body["candidates"][0]
    assert candidate["content"]["parts"] == [{"functionCall": {"name": "clock", "args": {"zone": "ok"}}}]
    assert candidate["finishReason"] == "STOP"


def test_gemini_streams_a_function_call_then_the_finish(client: httpx.Client) -> None:
    events = sse_json(_gemini(client, "streamGenerateContent", tools=GEMINI_TOOLS).text)

    call = events[0]["candidates"][0]["content"]["parts"][0]["functionCall"]
    assert call == {"name": "weather", "args": {"city": "ok", "days": 0}}
    assert "finishReason" not in events[0]["candidates"][0]
    assert events[-1]["candidates"][0]["finishReason"] == "STOP"


@pytest.mark.parametrize(
    "extra",
    [
        {"toolConfig": {"functionCallingConfig": {"mode": "NONE"}}},
        {
            "contents": [
                {"role": "user", "parts": [{"text": "hello there"}]},
                {"role": "model", "parts": [{"functionCall": {"name": "weather", "args": {}}}]},
                {"role": "user", "parts": [{"functionResponse": {"name": "weather", "response": {"t": 1}}}]},
            ]
        },
    ],
    ids=["mode-none", "after-function-response"],
)
def test_gemini_answers_text_when_functions_are_off_or_done(
    client: httpx.Client, extra: dict[str, Any]
) -> None:
    parts = _gemini(client, tools=GEMINI_TOOLS, **extra).json()["candidates"][0]["content"]["parts"]

    assert "text" in parts[0]


def test_gemini_structured_output_accepts_openapi_schemas(client: httpx.Client) -> None:
    schema = {
        "type": "OBJECT",
        "properties": {"title": {"type": "STRING"}, "tags": {"type": "ARRAY", "items": {"type": "STRING"}}},
        "required": ["title", "tags"],
    }
    config = {"responseMimeType": "application/json", "responseSchema": schema}
    json_config = {"responseMimeType": "application/json", "responseJsonSchema": REPORT}
    text = _gemini(client, generationConfig=config).json()["candidates"][0]["content"]["parts"][0]["text"]
    json_text = _gemini(client, generationConfig=json_config).json()["candidates"][0]["content"]["parts"][0]

    assert json.loads(text) == {"title": "ok", "tags": []}
    assert json.loads(json_text["text"]) == {"summary": "ok", "severity": "low"}


# -- recording and compatibility --------------------------------------------------------------


def test_every_chat_request_is_recorded_and_counted(client: httpx.Client, server: VendorTestServer) -> None:
    before = {api: server.count(api) for api in ("openai", "anthropic", "gemini")}
    total, calls, bodies = server.request_count, len(server.calls), len(server.requests)

    _openai(client)
    _anthropic(client)
    client.post("/anthropic/v1/messages", json={"messages": USER})  # rejected: no credentials
    _gemini(client)
    client.get("/v1/models")

    assert server.request_count == total + 4
    assert {api: server.count(api) - before[api] for api in before} == {
        "openai": 1,
        "anthropic": 2,
        "gemini": 1,
    }
    recorded = server.calls[calls:]
    assert [call.api for call in recorded] == ["openai", "anthropic", "anthropic", "gemini"]
    assert recorded[1].headers["x-api-key"] == "test-key"
    assert recorded[1].path == "/anthropic/v1/messages"
    assert recorded[3].path == "/gemini/v1beta/models/gemini-x:generateContent"
    assert server.requests[bodies:] == [recorded[0].body]
    with pytest.raises(ValueError, match="api must be"):
        server.count("cohere")


def test_example_for_schema_reads_upper_case_types_and_picks_first_branches() -> None:
    schema = {
        "type": "OBJECT",
        "properties": {
            "n": {"type": "INTEGER", "minimum": 3},
            "flag": {"type": "BOOLEAN"},
            "pick": {"anyOf": [{"const": "a"}, {"type": "string"}]},
            "items": {"type": "array", "minItems": 2, "items": {"type": ["null", "number"]}},
        },
        "required": ["n", "flag", "pick", "items"],
    }

    assert example_for_schema(schema) == {"n": 3, "flag": False, "pick": "a", "items": [0, 0]}


async def test_openai_test_server_is_the_same_server_as_an_async_context_manager() -> None:
    assert OpenAITestServer is VendorTestServer
    async with OpenAITestServer(model="m", latency_seconds=0.01) as server:
        async with httpx.AsyncClient(base_url=server.base_url, trust_env=False) as client:
            response = await client.post("/chat/completions", json={"messages": USER})

    assert response.json()["choices"][0]["message"]["content"] == "ok: hello there"
    assert server.request_count == 1
    assert server.requests == [{"messages": USER}]
