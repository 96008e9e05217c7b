from __future__ import annotations

import time

import pytest

from orchestrion.exceptions import ProviderError
from orchestrion.providers.base import ChatRequest, Message
from orchestrion.testing import ScriptedProvider


def _request(text: str = "three word prompt") -> ChatRequest:
    return ChatRequest(
        messages=(Message(role="system", content="be brief"), Message(role="user", content=text))
    )


async def test_replays_text_json_and_callable_items_in_order() -> None:
    provider = ScriptedProvider(
        ["plain text", {"severity": "high"}, lambda request: request.messages[-1].content]
    )

    first = await provider.complete(_request())
    second = await provider.complete(_request())
    third = await provider.complete(_request("echo me"))

    assert first.content == "plain text"
    assert second.json() == {"severity": "high"}
    assert third.content == "echo me"
    assert provider.remaining == 0


async def test_callable_returning_dict_becomes_json_content() -> None:
    provider = ScriptedProvider([lambda request: {"n": len(request.messages)}])

    assert (await provider.complete(_request())).json() == {"n": 2}


async def test_exception_items_are_raised() -> None:
    error = ProviderError("rate limited", provider="scripted", retryable=True, status_code=429)
    provider = ScriptedProvider([error, "after"])

    with pytest.raises(ProviderError) as caught:
        await provider.complete(_request())

    assert caught.value is error
    assert (await provider.complete(_request())).content == "after"


async def test_default_answers_once_the_script_runs_out() -> None:
    provider = ScriptedProvider(["once"], default={"fallback": True})

    await provider.complete(_request())

    assert (await provider.complete(_request())).json() == {"fallback": True}
    assert (await provider.complete(_request())).json() == {"fallback": True}


async def test_exhausted_script_without_default_raises_provider_error() -> None:
    provider = ScriptedProvider(["once"])
    await provider.complete(_request())

    with pytest.raises(ProviderError, match="script exhausted") as caught:
        await provider.complete(_request())

    assert caught.value.retryable is False


async def test_records_every_request_including_failed_ones() -> None:
    provider = ScriptedProvider([ValueError("x"), "ok"])
    requests = [_request("a"), _request("b")]

    with pytest.raises(ValueError):
        await provider.complete(requests[0])
    await provider.complete(requests[1])

    assert provider.requests == requests


async def test_reports_word_count_usage_and_identity() -> None:
    provider = ScriptedProvider(["one two three four"])

    response = await provider.complete(_request("three word prompt"))

    assert response.usage.input_tokens == 5
    assert response.usage.output_tokens == 4
    assert (response.provider, response.model, provider.deployment) == (
        "scripted",
        "scripted",
        "scripted:scripted",
    )


async def test_delay_sleeps_before_answering() -> None:
    provider = ScriptedProvider(["slow"], delay=0.05)

    started = time.perf_counter()
    response = await provider.complete(_request())

    assert time.perf_counter() - started >= 0.05
    assert response.latency_seconds == 0.05
