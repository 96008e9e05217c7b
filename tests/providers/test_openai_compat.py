from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import httpx
import pytest

from orchestrion.exceptions import ProviderError
from orchestrion.providers.base import ChatRequest, Message
from orchestrion.providers.openai_compat import OpenAICompatProvider, parse_retry_after
from orchestrion.testing import OpenAITestServer

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
